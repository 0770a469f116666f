"""Admin type and the AdminRole enum."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.access import sees_all_customers
from app.domain.admins import get_admin
from app.domain.ids import encode_global_id
from app.models.admins import Admin as AdminModel
from app.models.enums import AdminRole as AdminRoleValue
from schema.context import Info
from schema.node import Node, node_loader

AdminRole = strawberry.enum(
    AdminRoleValue,
    name="AdminRole",
    description="What a partner admin sees and may change (SPEC.md: roles).",
)


@strawberry.type(name="Admin", description="An admin of the viewer's partner organization.")
class Admin(Node):
    email: str
    display_name: str
    role: AdminRole
    access_all_customers: bool = strawberry.field(
        description="True for roles that see every customer of the partner organization."
    )
    last_login_at: datetime | None
    created_at: datetime

    @classmethod
    def from_model(cls, admin: AdminModel) -> Admin:
        role = AdminRoleValue(admin.role)
        return cls(
            id=strawberry.ID(encode_global_id("Admin", admin.id)),
            email=admin.email,
            display_name=admin.display_name,
            role=role,
            access_all_customers=sees_all_customers(role),
            last_login_at=admin.last_login_at,
            created_at=admin.created_at,
        )


@node_loader("Admin")
async def load_admin(info: Info, pk: int) -> Admin | None:
    admin = await get_admin(info.context.viewer, pk)
    return Admin.from_model(admin) if admin else None


def resolve_viewer(info: Info) -> Admin:
    return Admin.from_model(info.context.viewer.admin)
