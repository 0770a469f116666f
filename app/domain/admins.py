"""Partner admins: the Admins list, creating admins, changing roles, and
assigning admins to customers (FULL_ADMIN only)."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.domain import audit
from app.domain.access import (
    ADMIN_MANAGEMENT_ROLES,
    ASSIGNABLE_ROLES,
    Viewer,
    require_role,
    require_setup_completed,
    visible_admins,
)
from app.domain.customers import EMAIL, MAX_SEARCH_LENGTH, get_customer
from app.domain.errors import InvalidArgument, MutationRejected, UserError, UserErrorCode, reject
from app.domain.ids import encode_global_id
from app.domain.pagination import Page, keyset_page
from app.models.admins import Admin, CustomerAssignment
from app.models.enums import AdminRole
from app.models.organization import PartnerOrganization

MAX_DISPLAY_NAME = 200


async def get_admin(viewer: Viewer, admin_id: int) -> Admin | None:
    """An admin of the viewer's partner; an admin of another partner reads as not found."""
    return await visible_admins(viewer).get_or_none(id=admin_id)


async def list_admins(
    viewer: Viewer,
    *,
    first: int | None,
    after: str | None,
    roles: Sequence[AdminRole] | None = None,
    search: str | None = None,
) -> Page[Admin]:
    """The Admins list of the viewer's partner, by email."""
    query = visible_admins(viewer)
    if roles is not None:
        query = query.filter(role__in=list(roles))
    if search is not None:
        text = search.strip()
        if len(text) > MAX_SEARCH_LENGTH:
            raise InvalidArgument(f"`search` is at most {MAX_SEARCH_LENGTH} characters")
        if text:
            query = query.filter(Q(email__icontains=text) | Q(display_name__icontains=text))
    return await keyset_page(query, ("email",), first, after, "admins")


def _manage(viewer: Viewer, action: str) -> None:
    require_setup_completed(viewer)
    require_role(viewer, ADMIN_MANAGEMENT_ROLES, action)


async def _own_admin(viewer: Viewer, admin_id: int | None) -> Admin:
    admin = await get_admin(viewer, admin_id) if admin_id else None
    if admin is None:
        raise reject(("input", "adminId"), "No such admin.", UserErrorCode.NOT_FOUND)
    return admin


async def create_admin(viewer: Viewer, email: str, display_name: str, role: AdminRole) -> Admin:
    _manage(viewer, "Creating admins")
    clean_email = email.strip().lower()
    clean_name = " ".join(display_name.split())
    errors: list[UserError] = []
    if not EMAIL.match(clean_email) or len(clean_email) > 254:
        errors.append(UserError(("input", "email"), "Not an email address.", UserErrorCode.INVALID))
    if not 1 <= len(clean_name) <= MAX_DISPLAY_NAME:
        errors.append(
            UserError(
                ("input", "displayName"),
                f"A display name is 1 to {MAX_DISPLAY_NAME} characters.",
                UserErrorCode.INVALID,
            )
        )
    if errors:
        raise MutationRejected(errors)
    async with in_transaction():
        if await Admin.filter(email=clean_email).exists():
            raise reject(
                ("input", "email"),
                f"An admin with the email {clean_email} already exists.",
                UserErrorCode.CONFLICT,
            )
        admin = await Admin.create(
            partner_id=viewer.partner_id, email=clean_email, display_name=clean_name, role=role
        )
        await audit.record(
            viewer,
            "admin.create",
            encode_global_id("Admin", admin.id),
            f"Created admin {clean_email} as {role.value}",
        )
    return admin


async def update_admin_role(viewer: Viewer, admin_id: int | None, role: AdminRole) -> Admin:
    _manage(viewer, "Changing admin roles")
    async with in_transaction():
        # Lock the partner: two demotions at once must not leave it without a FULL_ADMIN.
        await PartnerOrganization.select_for_update().get(id=viewer.partner_id)
        admin = await _own_admin(viewer, admin_id)
        old = AdminRole(admin.role)
        if old == role:
            return admin  # nothing changes, so nothing to audit
        if old is AdminRole.FULL_ADMIN and role is not AdminRole.FULL_ADMIN:
            full_admins = await Admin.filter(
                partner_id=viewer.partner_id, role=AdminRole.FULL_ADMIN
            ).count()
            if full_admins <= 1:
                raise reject(
                    ("input", "role"),
                    "The last FULL_ADMIN of the organization cannot be demoted: "
                    "make another admin FULL_ADMIN first.",
                    UserErrorCode.CONFLICT,
                )
        admin.role = role
        await admin.save(update_fields=["role"])
        await audit.record(
            viewer,
            "admin.role",
            encode_global_id("Admin", admin.id),
            f"Changed the role of {admin.email} from {old.value} to {role.value}",
        )
    return admin


async def _assignment_parties(
    viewer: Viewer, admin_id: int | None, customer_id: int | None
) -> tuple[Admin, object]:
    admin = await _own_admin(viewer, admin_id)
    customer = await get_customer(viewer, customer_id) if customer_id else None
    if customer is None:
        raise reject(("input", "customerId"), "No such customer.", UserErrorCode.NOT_FOUND)
    return admin, customer


async def assign_admin(
    viewer: Viewer, admin_id: int | None, customer_id: int | None
) -> CustomerAssignment:
    """Assign an admin who sees only assigned customers to a customer."""
    _manage(viewer, "Assigning admins to customers")
    async with in_transaction():
        admin, customer = await _assignment_parties(viewer, admin_id, customer_id)
        if AdminRole(admin.role) not in ASSIGNABLE_ROLES:
            raise reject(
                ("input", "adminId"),
                f"{admin.email} is {admin.role} and sees every customer already: admins "
                "with access to every customer are managed in the Admins list.",
                UserErrorCode.INVALID,
            )
        if await CustomerAssignment.filter(admin_id=admin.id, customer_id=customer.id).exists():
            raise reject(
                ("input", "adminId"),
                f"{admin.email} is already assigned to {customer.name}.",
                UserErrorCode.CONFLICT,
            )
        assignment = await CustomerAssignment.create(
            admin_id=admin.id, customer_id=customer.id, assigned_by_id=viewer.admin.id
        )
        await audit.record(
            viewer,
            "admin.assign",
            encode_global_id("Customer", customer.id),
            f"Assigned {admin.email} to {customer.name}",
        )
    assignment.admin = admin
    return assignment


async def unassign_admin(viewer: Viewer, admin_id: int | None, customer_id: int | None) -> int:
    """Remove an admin's assignment to a customer; returns the assignment's id."""
    _manage(viewer, "Unassigning admins from customers")
    async with in_transaction():
        admin, customer = await _assignment_parties(viewer, admin_id, customer_id)
        assignment = await CustomerAssignment.get_or_none(
            admin_id=admin.id, customer_id=customer.id
        )
        if assignment is None:
            raise reject(
                ("input", "adminId"),
                f"{admin.email} is not assigned to {customer.name}.",
                UserErrorCode.NOT_FOUND,
            )
        await assignment.delete()
        await audit.record(
            viewer,
            "admin.unassign",
            encode_global_id("Customer", customer.id),
            f"Unassigned {admin.email} from {customer.name}",
        )
    return assignment.id
