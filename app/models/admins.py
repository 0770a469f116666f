"""Partner admins, their API tokens and their customer assignments."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import AdminRole


class Admin(Model):
    """A person (or integration) acting for one partner organization with one role."""

    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="admins", on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=254, unique=True, description="lower-cased")
    display_name = fields.CharField(max_length=200)
    role = fields.CharEnumField(AdminRole, max_length=20)
    last_login_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    removed_at = fields.DatetimeField(
        null=True,
        description="set by removeAdmin: gone from the Admins list and unable to sign in, "
        "kept so that audit events and reports naming it still resolve",
    )

    class Meta:
        table = "admin"
        indexes = (("partner_id", "role"),)


class ApiToken(Model):
    """A bearer token of an admin. Only the sha256 of the token is stored."""

    id = fields.IntField(primary_key=True)
    admin = fields.ForeignKeyField("models.Admin", related_name="tokens", on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    label = fields.CharField(max_length=100, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_token"


class CustomerAssignment(Model):
    """An admin assigned to manage a customer (Partner admins tab)."""

    id = fields.IntField(primary_key=True)
    admin = fields.ForeignKeyField(
        "models.Admin", related_name="assignments", on_delete=fields.CASCADE
    )
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="assignments", on_delete=fields.CASCADE
    )
    assigned_at = fields.DatetimeField(auto_now_add=True)
    assigned_by = fields.ForeignKeyField(
        "models.Admin", related_name=False, null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "customer_assignment"
        unique_together = (("admin", "customer"),)
        indexes = (("customer_id",),)


class ExternalAdminGrant(Model):
    """An admin of another partner made an external admin of one customer by the
    managing partner's FULL_ADMIN (grantExternalAdmin): that admin sees the customer
    read-only (managed by EXTERNAL_ADMIN) until the grant is revoked."""

    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="external_admin_grants", on_delete=fields.CASCADE
    )
    admin = fields.ForeignKeyField(
        "models.Admin",
        related_name="external_admin_grants",
        on_delete=fields.CASCADE,
        description="the external admin (an admin of another partner organization)",
    )
    granted_by = fields.ForeignKeyField(
        "models.Admin",
        related_name=False,
        null=True,
        on_delete=fields.SET_NULL,
        description="the managing partner's FULL_ADMIN who made the grant",
    )
    granted_at = fields.DatetimeField()

    class Meta:
        table = "external_admin_grant"
        unique_together = (("customer", "admin"),)
        indexes = (("admin_id",),)
