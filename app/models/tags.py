"""Custom tags of a partner and their assignment to customers."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Tag(Model):
    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="tags", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=40)
    name_key = fields.CharField(max_length=40, description="lower-cased name, unique per partner")
    description = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    created_by = fields.ForeignKeyField(
        "models.Admin", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "tag"
        unique_together = (("partner", "name_key"),)


class CustomerTag(Model):
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="customer_tags", on_delete=fields.CASCADE
    )
    tag = fields.ForeignKeyField(
        "models.Tag", related_name="customer_tags", on_delete=fields.CASCADE
    )
    tagged_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customer_tag"
        unique_together = (("customer", "tag"),)
        indexes = (("tag_id", "customer_id"),)
