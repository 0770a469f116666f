"""Partner admins: the Admins list, creating, changing the role of and removing
admins, and assigning admins to customers (FULL_ADMIN only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tortoise.expressions import Q

from app.clock import utcnow
from app.domain.access import (
    ASSIGN_ADMIN,
    ASSIGNABLE_ROLES,
    CHANGE_ADMIN_ROLE,
    CREATE_ADMIN,
    REMOVE_ADMIN,
    SCHEDULE_OWNER_ROLES,
    UNASSIGN_ADMIN,
    Viewer,
    referenced_admins,
    visible_admins,
)
from app.domain.customer_pages import AdminRow, admin_row
from app.domain.customers import EMAIL, MAX_SEARCH_LENGTH, get_managed_customer
from app.domain.errors import InvalidArgument, MutationRejected, UserError, UserErrorCode, reject
from app.domain.mutations import Audited, Unaudited, audit_target, run_mutation
from app.domain.pagination import Page, keyset_page
from app.models.admins import Admin, ApiToken, CustomerAssignment, ExternalAdminGrant
from app.models.enums import AdminRole
from app.models.organization import PartnerOrganization
from app.models.reports import ReportSchedule

MAX_DISPLAY_NAME = 200


@dataclass(frozen=True, slots=True)
class AssignmentValue:
    """An admin's assignment to a customer (assignAdminToCustomer's answer)."""

    id: int
    admin: AdminRow
    customer_id: int
    assigned_at: datetime


async def _get_admin(viewer: Viewer, admin_id: int) -> Admin | None:
    """An admin of the viewer's partner that a mutation may name; an admin of
    another partner, or a removed one, reads as not found."""
    return await visible_admins(viewer).get_or_none(id=admin_id)


async def get_referenced_admin(viewer: Viewer, admin_id: int) -> AdminRow | None:
    """An admin of the viewer's partner, removed ones too (`node(id:)`: an id read
    from an audit event or a report still resolves); another partner's is not found."""
    admin = await referenced_admins(viewer).get_or_none(id=admin_id)
    return admin_row(admin) if admin else None


def viewer_admin(viewer: Viewer) -> AdminRow:
    """The signed-in admin (`viewer`)."""
    return admin_row(viewer.admin)


async def list_admins(
    viewer: Viewer,
    *,
    first: int | None,
    after: str | None,
    roles: Sequence[AdminRole] | None = None,
    search: str | None = None,
) -> Page[AdminRow]:
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
    page = await keyset_page(query, ("email",), first, after, "admins")
    return replace(page, items=[admin_row(admin) for admin in page.items])


async def _own_admin(viewer: Viewer, admin_id: int | None) -> Admin:
    admin = await _get_admin(viewer, admin_id) if admin_id else None
    if admin is None:
        raise reject(("input", "admin_id"), "No such admin.", UserErrorCode.NOT_FOUND)
    return admin


async def create_admin(viewer: Viewer, email: str, display_name: str, role: AdminRole) -> AdminRow:
    """A new admin of the viewer's partner (FULL_ADMIN); its email must be free."""

    async def work() -> Audited[AdminRow]:
        clean_email = email.strip().lower()
        clean_name = " ".join(display_name.split())
        errors: list[UserError] = []
        if not EMAIL.match(clean_email) or len(clean_email) > 254:
            errors.append(
                UserError(("input", "email"), "Not an email address.", UserErrorCode.INVALID)
            )
        if not 1 <= len(clean_name) <= MAX_DISPLAY_NAME:
            errors.append(
                UserError(
                    ("input", "display_name"),
                    f"A display name is 1 to {MAX_DISPLAY_NAME} characters.",
                    UserErrorCode.INVALID,
                )
            )
        if errors:
            raise MutationRejected(errors)
        existing = await Admin.get_or_none(email=clean_email)
        if existing is not None:
            removed = (
                " (removed; its email stays taken so that its audit events and reports "
                "still name it)"
                if existing.removed_at is not None and existing.partner_id == viewer.partner_id
                else ""
            )
            raise reject(
                ("input", "email"),
                f"An admin with the email {clean_email} already exists{removed}.",
                UserErrorCode.CONFLICT,
            )
        admin = await Admin.create(
            partner_id=viewer.partner_id, email=clean_email, display_name=clean_name, role=role
        )
        return Audited(
            admin_row(admin),
            audit_target("Admin", admin.id),
            f"Created admin {clean_email} as {role.value}",
        )

    return await run_mutation(viewer, CREATE_ADMIN, "admin.create", work)


async def update_admin_role(viewer: Viewer, admin_id: int | None, role: AdminRole) -> AdminRow:
    """Give an admin of the partner another role (FULL_ADMIN); never demote the last
    FULL_ADMIN. The same role again changes nothing and writes no event."""

    async def work() -> Audited[AdminRow] | Unaudited[AdminRow]:
        # Lock the partner: two demotions at once must not leave it without a FULL_ADMIN.
        await PartnerOrganization.select_for_update().get(id=viewer.partner_id)
        admin = await _own_admin(viewer, admin_id)
        old = AdminRole(admin.role)
        if old == role:
            return Unaudited(admin_row(admin))  # nothing changes, so nothing to audit
        if old is AdminRole.FULL_ADMIN and role is not AdminRole.FULL_ADMIN:
            if await _full_admin_count(viewer) <= 1:
                raise reject(
                    ("input", "role"),
                    "The last FULL_ADMIN of the organization cannot be demoted: "
                    "make another admin FULL_ADMIN first.",
                    UserErrorCode.CONFLICT,
                )
        admin.role = role
        await admin.save(update_fields=["role"])
        return Audited(
            admin_row(admin),
            audit_target("Admin", admin.id),
            f"Changed the role of {admin.email} from {old.value} to {role.value}",
        )

    return await run_mutation(viewer, CHANGE_ADMIN_ROLE, "admin.role", work)


async def _full_admin_count(viewer: Viewer) -> int:
    """FULL_ADMINs of the viewer's partner that are not removed."""
    return await visible_admins(viewer).filter(role=AdminRole.FULL_ADMIN).count()


@dataclass(frozen=True)
class RemovedAdmin:
    """removeAdmin's answer: the admin as removed and what went with it."""

    admin: AdminRow
    revoked_tokens: int
    removed_assignments: int
    transferred_schedules: int
    schedules_owner: AdminRow | None  # the FULL_ADMIN its schedules moved to, when named


async def _schedules_heir(viewer: Viewer, removed: Admin, heir_id: int | None) -> Admin:
    field = ("input", "transfer_schedules_to")
    heir = await _get_admin(viewer, heir_id) if heir_id else None
    if heir is None:
        raise reject(field, "No such admin.", UserErrorCode.NOT_FOUND)
    if heir.id == removed.id:
        raise reject(
            field,
            "The admin being removed cannot take over its own schedules.",
            UserErrorCode.INVALID,
        )
    if AdminRole(heir.role) not in SCHEDULE_OWNER_ROLES:
        roles = " or ".join(sorted(r.value for r in SCHEDULE_OWNER_ROLES))
        raise reject(
            field,
            f"Report schedules run under a {roles}: {heir.email} is {heir.role}.",
            UserErrorCode.INVALID,
        )
    return heir


async def remove_admin(
    viewer: Viewer, admin_id: int | None, heir_id: int | None, heir_named: bool
) -> RemovedAdmin:
    """Remove an admin of the partner (FULL_ADMIN): it signs in no more (its API tokens
    are revoked, OIDC refuses it), its customer assignments go, its reports stay, its
    report schedules move to the FULL_ADMIN `heir_id` (refused with CONFLICT while it
    owns schedules and none is named), its external-admin grants on other partners'
    customers end. Never the last FULL_ADMIN; the viewer may
    remove itself while another FULL_ADMIN remains. The admin row stays (removed_at),
    so audit events and reports naming it still resolve."""

    async def work() -> Audited[RemovedAdmin]:
        # Lock the partner: two removals at once must not leave it without a FULL_ADMIN.
        await PartnerOrganization.select_for_update().get(id=viewer.partner_id)
        admin = await _own_admin(viewer, admin_id)
        heir = await _schedules_heir(viewer, admin, heir_id) if heir_named else None
        if AdminRole(admin.role) is AdminRole.FULL_ADMIN and await _full_admin_count(viewer) <= 1:
            raise reject(
                ("input", "admin_id"),
                "The last FULL_ADMIN of the organization cannot be removed: "
                "make another admin FULL_ADMIN first.",
                UserErrorCode.CONFLICT,
            )
        schedules = ReportSchedule.filter(partner_id=viewer.partner_id, created_by_id=admin.id)
        owned = await schedules.count()
        if owned and heir is None:
            raise reject(
                ("input", "transfer_schedules_to"),
                f"{admin.email} owns {owned} report schedule{'s' if owned != 1 else ''}: "
                "name a FULL_ADMIN in transferSchedulesTo to keep them running, or delete "
                "them first.",
                UserErrorCode.CONFLICT,
            )
        now = utcnow()
        admin.removed_at = now
        await admin.save(update_fields=["removed_at"])
        revoked = await ApiToken.filter(admin_id=admin.id, revoked_at__isnull=True).update(
            revoked_at=now
        )
        unassigned = await CustomerAssignment.filter(admin_id=admin.id).delete()
        # Its external-admin grants on other partners' customers stop with it.
        ended = await ExternalAdminGrant.filter(admin_id=admin.id).delete()
        moved = await schedules.update(created_by_id=heir.id) if owned and heir else 0
        summary = (
            f"Removed admin {admin.email} ({admin.role}): {revoked} API token(s) revoked, "
            f"{unassigned} customer assignment(s) removed"
        )
        if ended:
            summary += f", {ended} external-admin grant(s) ended"
        if heir is not None:
            summary += f", {moved} report schedule(s) moved to {heir.email}"
        return Audited(
            RemovedAdmin(
                admin_row(admin),
                revoked,
                unassigned,
                moved,
                admin_row(heir) if heir is not None else None,
            ),
            audit_target("Admin", admin.id),
            summary,
        )

    return await run_mutation(viewer, REMOVE_ADMIN, "admin.remove", work)


async def _assignment_parties(
    viewer: Viewer, admin_id: int | None, customer_id: int | None
) -> tuple[Admin, object]:
    admin = await _own_admin(viewer, admin_id)
    customer = await get_managed_customer(viewer, customer_id)
    if customer is None:
        raise reject(("input", "customer_id"), "No such customer.", UserErrorCode.NOT_FOUND)
    return admin, customer


async def assign_admin(
    viewer: Viewer, admin_id: int | None, customer_id: int | None
) -> AssignmentValue:
    """Assign an admin who sees only assigned customers to a customer."""

    async def work() -> Audited[AssignmentValue]:
        admin, customer = await _assignment_parties(viewer, admin_id, customer_id)
        if AdminRole(admin.role) not in ASSIGNABLE_ROLES:
            raise reject(
                ("input", "admin_id"),
                f"{admin.email} is {admin.role} and sees every customer already: admins "
                "with access to every customer are managed in the Admins list.",
                UserErrorCode.INVALID,
            )
        if await CustomerAssignment.filter(admin_id=admin.id, customer_id=customer.id).exists():
            raise reject(
                ("input", "admin_id"),
                f"{admin.email} is already assigned to {customer.name}.",
                UserErrorCode.CONFLICT,
            )
        assignment = await CustomerAssignment.create(
            admin_id=admin.id, customer_id=customer.id, assigned_by_id=viewer.admin.id
        )
        return Audited(
            AssignmentValue(assignment.id, admin_row(admin), customer.id, assignment.assigned_at),
            audit_target("Customer", customer.id),
            f"Assigned {admin.email} to {customer.name}",
        )

    return await run_mutation(viewer, ASSIGN_ADMIN, "admin.assign", work)


async def unassign_admin(viewer: Viewer, admin_id: int | None, customer_id: int | None) -> int:
    """Remove an admin's assignment to a customer; returns the assignment's id."""

    async def work() -> Audited[int]:
        admin, customer = await _assignment_parties(viewer, admin_id, customer_id)
        assignment = await CustomerAssignment.get_or_none(
            admin_id=admin.id, customer_id=customer.id
        )
        if assignment is None:
            raise reject(
                ("input", "admin_id"),
                f"{admin.email} is not assigned to {customer.name}.",
                UserErrorCode.NOT_FOUND,
            )
        await assignment.delete()
        return Audited(
            assignment.id,
            audit_target("Customer", customer.id),
            f"Unassigned {admin.email} from {customer.name}",
        )

    return await run_mutation(viewer, UNASSIGN_ADMIN, "admin.unassign", work)
