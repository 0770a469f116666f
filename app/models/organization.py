"""Partner organizations: the tenant every admin and customer belongs to."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class PartnerOrganization(Model):
    """A partner that resells and manages Webex for its customers (Account page)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    org_id = fields.UUIDField(unique=True)
    domain = fields.CharField(max_length=200, unique=True)
    industry = fields.CharField(max_length=100, null=True)
    planned_users = fields.IntField(null=True)
    terms_accepted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "partner_organization"

    @property
    def setup_completed(self) -> bool:
        return self.terms_accepted_at is not None
