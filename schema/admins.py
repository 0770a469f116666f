"""Admin, the Admins list and admin management (FULL_ADMIN)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import admins
from app.domain.access import sees_all_customers
from app.domain.admins import AssignmentValue, RemovedAdmin
from app.domain.customer_pages import AdminRow
from app.domain.customers import CustomerFilter, list_customers
from app.domain.ids import decode_id_of, encode_global_id
from app.models.enums import AdminRole as AdminRoleValue
from schema.context import Info
from schema.enums import describe_values
from schema.node import Node, node_loader
from schema.pagination import Connection
from schema.payloads import DeletePayload, UserError, mutate

if TYPE_CHECKING:
    from schema.customers import CustomerConnection

AdminRole = strawberry.enum(
    AdminRoleValue,
    name="AdminRole",
    description="What a partner admin sees and may change (SPEC.md: roles).",
)
describe_values(
    AdminRole,
    {
        "FULL_ADMIN": "Every customer; manages admins, tags, trials and reports.",
        "ADMIN": "Only assigned customers; edits tags, starts trials, runs reports for them.",
        "READ_ONLY_ADMIN": "Every customer, read only.",
        "SALES_FULL_ADMIN": "Every customer; sales operations (trials, tags), no admin management.",
        "SALES_ADMIN": "Customers it created or is assigned; starts trials for them.",
    },
)


@strawberry.type(name="Admin", description="An admin of the viewer's partner organization.")
class Admin(Node):
    value: strawberry.Private[AdminRow]
    email: str
    display_name: str
    role: AdminRole
    access_all_customers: bool = strawberry.field(
        description="True for roles that see every customer of the partner organization."
    )
    last_login_at: datetime | None
    created_at: datetime
    removed_at: datetime | None = strawberry.field(
        description="When removeAdmin removed this admin (null while it is an admin): a "
        "removed admin is gone from the Admins list and signs in no more, and what names "
        "it (audit events, reports, tags) still resolves."
    )

    @classmethod
    def of(cls, admin: AdminRow) -> Admin:
        """The Admin of an admin's typed value."""
        role = AdminRoleValue(admin.role)
        return cls(
            id=strawberry.ID(encode_global_id("Admin", admin.id)),
            value=admin,
            email=admin.email,
            display_name=admin.display_name,
            role=role,
            access_all_customers=sees_all_customers(role),
            last_login_at=admin.last_login_at,
            created_at=admin.created_at,
            removed_at=admin.removed_at,
        )

    @classmethod
    async def by_id(cls, info: Info, admin_id: int | None) -> Admin | None:
        """An admin of the viewer's partner named by a foreign key (null when gone)."""
        if admin_id is None:
            return None
        admin = await info.context.loaders.admins.load(admin_id)
        return cls.of(admin) if admin else None

    @strawberry.field(
        description="Customers this admin is assigned to, among those the viewer sees."
    )
    async def assigned_customers(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Annotated[CustomerConnection, strawberry.lazy("schema.customers")]:
        from schema.customers import CustomerConnection

        if after is None:  # the usual first page: batched over the admins being listed
            page = await info.context.loaders.assigned_customers(first).load(self.value.id)
        else:
            page = await list_customers(
                info.context.viewer,
                info.context.clock,
                first=first,
                after=after,
                flt=CustomerFilter(assigned_admin_id=self.value.id),
            )
        return CustomerConnection.of(page)


@strawberry.type(name="AdminAssignment")
class AdminAssignment:
    admin: Admin
    role: AdminRole
    assigned_at: datetime


AdminConnection = Connection[Admin]


@strawberry.input(name="AdminFilter")
class AdminFilter:
    roles: list[AdminRole] | None = None
    search: str | None = None


@strawberry.input(name="CreateAdminInput")
class CreateAdminInput:
    email: str
    display_name: str
    role: AdminRole


@strawberry.input(name="UpdateAdminRoleInput")
class UpdateAdminRoleInput:
    admin_id: strawberry.ID
    role: AdminRole


@strawberry.input(name="AssignAdminInput")
class AssignAdminInput:
    admin_id: strawberry.ID
    customer_id: strawberry.ID


@strawberry.input(name="RemoveAdminInput")
class RemoveAdminInput:
    admin_id: strawberry.ID
    transfer_schedules_to: strawberry.ID | None = strawberry.field(
        default=None,
        description="A FULL_ADMIN that takes over the removed admin's report schedules "
        "(needed while it owns any: CONFLICT otherwise).",
    )


@strawberry.type(name="RemoveAdminPayload")
class RemoveAdminPayload:
    removed_admin: Admin | None = strawberry.field(
        description="The admin as removed (removedAt set); null when refused."
    )
    revoked_token_count: int | None = strawberry.field(
        description="Its API tokens revoked by the removal."
    )
    removed_assignment_count: int | None = strawberry.field(
        description="Its customer assignments removed."
    )
    transferred_schedule_count: int | None = strawberry.field(
        description="Its report schedules that now run under `schedulesOwner`."
    )
    schedules_owner: Admin | None = strawberry.field(
        description="The FULL_ADMIN named in transferSchedulesTo."
    )
    user_errors: list[UserError]


@strawberry.type(name="AdminPayload")
class AdminPayload:
    admin: Admin | None
    user_errors: list[UserError]


@strawberry.type(name="AssignmentPayload")
class AssignmentPayload:
    assignment: AdminAssignment | None
    user_errors: list[UserError]


@node_loader("Admin")
async def load_admin(info: Info, pk: int) -> Admin | None:
    admin = await admins.get_referenced_admin(info.context.viewer, pk)
    return Admin.of(admin) if admin else None


def resolve_viewer(info: Info) -> Admin:
    return Admin.of(admins.viewer_admin(info.context.viewer))


async def resolve_admins(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: AdminFilter | None = None,
) -> AdminConnection:
    flt = filter or AdminFilter()
    page = await admins.list_admins(
        info.context.viewer, first=first, after=after, roles=flt.roles, search=flt.search
    )
    return AdminConnection.of(page, Admin.of)


def _admin_payload(admin: AdminRow) -> dict:
    return {"admin": Admin.of(admin)}


async def resolve_create_admin(info: Info, input: CreateAdminInput) -> AdminPayload:
    return await mutate(
        AdminPayload,
        lambda: admins.create_admin(
            info.context.viewer, input.email, input.display_name, input.role
        ),
        _admin_payload,
    )


async def resolve_update_admin_role(info: Info, input: UpdateAdminRoleInput) -> AdminPayload:
    return await mutate(
        AdminPayload,
        lambda: admins.update_admin_role(
            info.context.viewer, decode_id_of(str(input.admin_id), "Admin"), input.role
        ),
        _admin_payload,
    )


def _assignment_ids(input: AssignAdminInput) -> tuple[int | None, int | None]:
    return decode_id_of(str(input.admin_id), "Admin"), decode_id_of(
        str(input.customer_id), "Customer"
    )


def _assignment_payload(assignment: AssignmentValue) -> dict:
    admin = Admin.of(assignment.admin)
    return {
        "assignment": AdminAssignment(
            admin=admin, role=admin.role, assigned_at=assignment.assigned_at
        )
    }


async def resolve_assign_admin(info: Info, input: AssignAdminInput) -> AssignmentPayload:
    return await mutate(
        AssignmentPayload,
        lambda: admins.assign_admin(info.context.viewer, *_assignment_ids(input)),
        _assignment_payload,
    )


async def resolve_unassign_admin(info: Info, input: AssignAdminInput) -> DeletePayload:
    return await mutate(
        DeletePayload,
        lambda: admins.unassign_admin(info.context.viewer, *_assignment_ids(input)),
        lambda pk: {"deleted_id": strawberry.ID(encode_global_id("AdminAssignment", pk))},
    )


async def resolve_remove_admin(info: Info, input: RemoveAdminInput) -> RemoveAdminPayload:
    heir = input.transfer_schedules_to
    return await mutate(
        RemoveAdminPayload,
        lambda: admins.remove_admin(
            info.context.viewer,
            decode_id_of(str(input.admin_id), "Admin"),
            decode_id_of(str(heir), "Admin") if heir is not None else None,
            heir is not None,
        ),
        _removal_payload,
    )


def _removal_payload(removed: RemovedAdmin) -> dict:
    owner = removed.schedules_owner
    return {
        "removed_admin": Admin.of(removed.admin),
        "revoked_token_count": removed.revoked_tokens,
        "removed_assignment_count": removed.removed_assignments,
        "transferred_schedule_count": removed.transferred_schedules,
        "schedules_owner": Admin.of(owner) if owner is not None else None,
    }
