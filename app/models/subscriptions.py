"""Subscriptions (and trials as subscriptions of kind TRIAL), license lines,
weekly license snapshots, invoices and orders."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import LicenseType, OrderAction, Product, SubscriptionKind, SubscriptionStatus


class Subscription(Model):
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="subscriptions", on_delete=fields.CASCADE
    )
    subscription_id = fields.CharField(
        max_length=40, unique=True, description="Sub-… id, or the Enterprise Trial id (ET-…)"
    )
    kind = fields.CharEnumField(SubscriptionKind, max_length=12)
    status = fields.CharEnumField(SubscriptionStatus, max_length=13)
    start_date = fields.DateField()
    end_date = fields.DateField(null=True, description="expiry, or renewal when auto_renew")
    auto_renew = fields.BooleanField(default=False)
    added_at = fields.DatetimeField(description="when it was added to the customer")
    trial = fields.OneToOneField(
        "models.Trial", related_name="subscription", null=True, on_delete=fields.CASCADE
    )

    class Meta:
        table = "subscription"
        indexes = (
            ("customer_id", "kind", "status"),
            ("status", "end_date"),
            ("added_at",),
        )


class LicenseCountsFields(Model):
    """The columns of a license line, on a customer's subscription or the partner's own."""

    id = fields.IntField(primary_key=True)
    license_type = fields.CharEnumField(LicenseType, max_length=24)
    product = fields.CharEnumField(Product, max_length=24)
    quantity = fields.IntField()
    assigned = fields.IntField(default=0)
    used = fields.IntField(default=0, description="used at least once in the last 7 days")

    class Meta:
        abstract = True


class LicenseLine(LicenseCountsFields):
    """Licenses of one type on a subscription: purchased, assigned and used."""

    subscription = fields.ForeignKeyField(
        "models.Subscription", related_name="licenses", on_delete=fields.CASCADE
    )

    class Meta:
        table = "license_line"
        unique_together = (("subscription", "license_type"),)
        indexes = (("product",),)


class LicenseSnapshot(Model):
    """Weekly snapshot of a license line (Monday of the week it was taken in)."""

    id = fields.BigIntField(primary_key=True)
    subscription = fields.ForeignKeyField(
        "models.Subscription", related_name="snapshots", on_delete=fields.CASCADE
    )
    license_type = fields.CharEnumField(LicenseType, max_length=24)
    week_start = fields.DateField()
    quantity = fields.IntField()
    assigned = fields.IntField()
    used_7d = fields.IntField()
    used_90d = fields.IntField()

    class Meta:
        table = "license_snapshot"
        unique_together = (("subscription", "license_type", "week_start"),)
        indexes = (("week_start",),)


class Invoice(Model):
    id = fields.IntField(primary_key=True)
    subscription = fields.ForeignKeyField(
        "models.Subscription", related_name="invoices", on_delete=fields.CASCADE
    )
    number = fields.CharField(max_length=40, unique=True)
    issued_on = fields.DateField()
    amount = fields.DecimalField(max_digits=14, decimal_places=2)
    currency = fields.CharField(max_length=3)
    paid = fields.BooleanField(default=False)

    class Meta:
        table = "invoice"
        indexes = (("subscription_id", "issued_on"),)


class Order(Model):
    id = fields.IntField(primary_key=True)
    subscription = fields.ForeignKeyField(
        "models.Subscription", related_name="orders", on_delete=fields.CASCADE
    )
    order_number = fields.CharField(max_length=40, unique=True)
    placed_at = fields.DatetimeField()
    action = fields.CharEnumField(OrderAction, max_length=8)
    description = fields.CharField(max_length=500, null=True)

    class Meta:
        table = "purchase_order"
        indexes = (("subscription_id", "placed_at"),)
