"""Customer organizations, their users, locations and admin sign-ins."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import Region


class Customer(Model):
    """A customer organization managed by one partner organization."""

    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="customers", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    org_id = fields.UUIDField(unique=True, description="Control Hub organization UUID")
    external_id = fields.CharField(max_length=100, null=True, description="wholesale external id")
    region = fields.CharEnumField(Region, max_length=3)
    location = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField()
    created_by = fields.ForeignKeyField(
        "models.Admin",
        related_name="created_customers",
        null=True,
        on_delete=fields.SET_NULL,
        description="the admin whose trial created this customer",
    )
    last_admin_activity_at = fields.DatetimeField(null=True)
    # Kept columns (app/domain/customer_columns.py): what the customer list sorts
    # and filters by, rewritten in the transaction of every write that changes
    # them. "Holding" is a subscription or trial in ACTIVE, SUSPENDED or
    # PENDING_SETUP; "subscription" alone means kind SUBSCRIPTION.
    total_licenses = fields.BigIntField(
        default=0, description="licenses of its holding subscriptions and trials"
    )
    next_end_date = fields.DateField(
        null=True, description="soonest end date, on or after the day kept, of a holding one"
    )
    expiring_end_date = fields.DateField(
        null=True,
        description="soonest end date, on or after the day kept, of an ACTIVE subscription"
        " without auto-renew or an ACTIVE trial",
    )
    trial_end_date = fields.DateField(null=True, description="latest end date of an ACTIVE trial")
    has_active = fields.BooleanField(default=False, description="an ACTIVE subscription")
    has_suspended = fields.BooleanField(default=False, description="a SUSPENDED subscription")
    has_pending_setup = fields.BooleanField(
        default=False, description="a PENDING_SETUP subscription"
    )
    has_overage = fields.BooleanField(
        default=False, description="a license line of a holding one with assigned > quantity"
    )
    holds_licenses = fields.BooleanField(default=False, description="a holding subscription")
    attention_flags = fields.IntField(
        null=True,
        description="the attention states last announced (app/domain/attention.py, a bit each),"
        " NULL: none taken yet (the first evaluation records them without events)",
    )

    class Meta:
        table = "customer"
        indexes = (
            ("partner_id", "name"),
            ("partner_id", "created_at"),
            ("partner_id", "region"),
            ("partner_id", "last_admin_activity_at"),
            ("external_id",),
            ("created_by_id",),
        )


class CustomerUser(Model):
    """A user of a customer organization (found by the email search)."""

    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="users", on_delete=fields.CASCADE
    )
    uuid = fields.UUIDField(unique=True)
    email = fields.CharField(max_length=254, description="lower-cased")
    display_name = fields.CharField(max_length=200)
    verified = fields.BooleanField(default=False)
    is_admin = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()

    class Meta:
        table = "customer_user"
        indexes = (("email",), ("customer_id", "is_admin"))


class Location(Model):
    """A location (site) inside a customer organization."""

    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="locations", on_delete=fields.CASCADE
    )
    uuid = fields.UUIDField(unique=True)
    name = fields.CharField(max_length=200)
    country = fields.CharField(max_length=2, description="ISO 3166-1 alpha-2")

    class Meta:
        table = "location"
        indexes = (("customer_id",),)


class CustomerAdminSignIn(Model):
    """A sign-in of a customer's own admin to Control Hub (drives NO_RECENT_ACTIVITY)."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="admin_sign_ins", on_delete=fields.CASCADE
    )
    user_email = fields.CharField(max_length=254)
    signed_in_at = fields.DatetimeField()

    class Meta:
        table = "customer_admin_sign_in"
        unique_together = (("customer", "user_email", "signed_in_at"),)
