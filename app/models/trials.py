"""Webex trials started by partner admins for their customers."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import Product, TrialStatus


class Trial(Model):
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="trials", on_delete=fields.CASCADE
    )
    trial_id = fields.CharField(max_length=40, unique=True, description="Enterprise Trial id, ET-…")
    status = fields.CharEnumField(TrialStatus, max_length=10)
    start_date = fields.DateField()
    end_date = fields.DateField()
    started_by = fields.ForeignKeyField(
        "models.Admin", related_name="started_trials", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "trial"
        indexes = (("customer_id", "status"), ("status", "end_date"), ("started_by_id",))


class TrialProduct(Model):
    id = fields.IntField(primary_key=True)
    trial = fields.ForeignKeyField(
        "models.Trial", related_name="products", on_delete=fields.CASCADE
    )
    product = fields.CharEnumField(Product, max_length=24)
    licenses = fields.IntField()

    class Meta:
        table = "trial_product"
        unique_together = (("trial", "product"),)
