"""The audit trail: one event per successful mutation."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="audit_events", on_delete=fields.CASCADE
    )
    at = fields.DatetimeField()
    actor = fields.ForeignKeyField(
        "models.Admin", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    action = fields.CharField(max_length=60, description="e.g. tag.create, trial.start")
    target_id = fields.CharField(
        max_length=200,
        null=True,
        description='what the event names: "Kind:key", e.g. "Admin:5" (NULL: nothing)',
    )
    summary = fields.CharField(max_length=500)

    class Meta:
        table = "audit_event"
        indexes = (("partner_id", "at"),)
