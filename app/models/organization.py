"""Partner organizations: the tenant every admin and customer belongs to."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import SubscriptionKind, SubscriptionStatus
from app.models.subscriptions import LicenseCountsFields


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


class PartnerSubscription(Model):
    """A subscription of the partner organization itself (its own plan, shown by the
    first-time setup wizard). Kept apart from customers' subscriptions: no customer
    list, count, KPI, analytics figure or report reads this table."""

    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="own_subscriptions", on_delete=fields.CASCADE
    )
    subscription_id = fields.CharField(max_length=40, unique=True, description="Sub-… id")
    kind = fields.CharEnumField(
        SubscriptionKind, max_length=12, default=SubscriptionKind.SUBSCRIPTION
    )
    status = fields.CharEnumField(SubscriptionStatus, max_length=13)
    start_date = fields.DateField()
    end_date = fields.DateField(null=True, description="expiry, or renewal when auto_renew")
    auto_renew = fields.BooleanField(default=False)
    added_at = fields.DatetimeField()

    class Meta:
        table = "partner_subscription"
        indexes = (("partner_id", "start_date"),)


class PartnerLicenseLine(LicenseCountsFields):
    """Licenses of one type on one of the partner's own subscriptions."""

    subscription = fields.ForeignKeyField(
        "models.PartnerSubscription", related_name="licenses", on_delete=fields.CASCADE
    )

    class Meta:
        table = "partner_license_line"
        unique_together = (("subscription", "license_type"),)
