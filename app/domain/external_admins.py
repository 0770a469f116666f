"""External admins ("managed by" EXTERNAL_ADMIN): the managing partner's FULL_ADMIN
makes an admin of another partner organization an external admin of one of its
customers, and ends that again.

The grant is to that one admin, whatever its role: it sees the customer read-only
(the customer list with `managedBy: EXTERNAL_ADMIN`, the detail tabs, analytics and
its own reports) from its next request on, and no mutation reaches it (every
mutation starts from `access.managed_customers`). Who sees what stays in
app/domain/access.py; this module only writes and reads the grants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.clock import utcnow
from app.domain.access import (
    GRANT_EXTERNAL_ADMIN,
    REVOKE_EXTERNAL_ADMIN,
    Viewer,
    external_admin_candidates,
    visible_external_admin_grants,
)
from app.domain.customers import EMAIL, CustomerRow, customer_row, get_managed_customer
from app.domain.errors import UserErrorCode, reject
from app.domain.mutations import Audited, audit_target, run_mutation
from app.models.admins import ExternalAdminGrant
from app.models.customers import Customer

CUSTOMER_FIELD = ("input", "customer_id")
EMAIL_FIELD = ("input", "admin_email")


@dataclass(frozen=True, slots=True)
class ExternalAdmin:
    """What the managing side reads of a grant: the e-mail it typed, when, by whom.
    Nothing else of the other partner (not its name, the admin's role or name)."""

    email: str
    granted_at: datetime
    granted_by_id: int | None


@dataclass(frozen=True)
class ExternalAdminChange:
    customer: CustomerRow
    grant: ExternalAdmin  # the grant made, or the one revoked (no longer stored)
    email: str


async def _parties(viewer: Viewer, customer_id: int | None, email: str) -> tuple[Customer, str]:
    customer = await get_managed_customer(viewer, customer_id)
    if customer is None:
        raise reject(CUSTOMER_FIELD, "No such customer.", UserErrorCode.NOT_FOUND)
    clean = email.strip().lower()
    if not EMAIL.match(clean) or len(clean) > 254:
        raise reject(EMAIL_FIELD, "Not an email address.", UserErrorCode.INVALID)
    return customer, clean


async def grant_external_admin(
    viewer: Viewer, customer_id: int | None, email: str
) -> ExternalAdminChange:
    """Make the admin of another partner with this e-mail an external admin of the
    customer. Refused: an e-mail that names no admin (or a removed one: NOT_FOUND,
    telling nothing more of another partner), an admin of the viewer's own partner
    (INVALID: assign it instead), an existing grant (CONFLICT)."""

    async def work() -> Audited[ExternalAdminChange]:
        customer, clean = await _parties(viewer, customer_id, email)
        # Lock the customer: two grants of the same admin at once make one row.
        await Customer.select_for_update().get(id=customer.id)
        admin = await external_admin_candidates(viewer).get_or_none(email=clean)
        if admin is None:
            own = await viewer.partner.admins.filter(email=clean, removed_at__isnull=True).exists()
            if own:
                raise reject(
                    EMAIL_FIELD,
                    f"{clean} is an admin of your own partner organization: assign it to "
                    "the customer (assignAdminToCustomer) or give it a role that sees "
                    "every customer.",
                    UserErrorCode.INVALID,
                )
            raise reject(
                EMAIL_FIELD,
                f"No admin of another partner organization has the email {clean}.",
                UserErrorCode.NOT_FOUND,
            )
        if await ExternalAdminGrant.filter(customer_id=customer.id, admin_id=admin.id).exists():
            raise reject(
                EMAIL_FIELD,
                f"{clean} is already an external admin of {customer.name}.",
                UserErrorCode.CONFLICT,
            )
        grant = await ExternalAdminGrant.create(
            customer_id=customer.id,
            admin_id=admin.id,
            granted_by_id=viewer.admin.id,
            granted_at=utcnow(),
        )
        return Audited(
            ExternalAdminChange(
                customer_row(customer),
                ExternalAdmin(clean, grant.granted_at, grant.granted_by_id),
                clean,
            ),
            audit_target("Customer", customer.id),
            f"Made {clean} an external admin of {customer.name}",
        )

    return await run_mutation(viewer, GRANT_EXTERNAL_ADMIN, "customer.external_admin.grant", work)


async def revoke_external_admin(
    viewer: Viewer, customer_id: int | None, email: str
) -> ExternalAdminChange:
    """End the grant: from the next request on, the admin no longer sees the customer.
    Refused with NOT_FOUND when that e-mail holds no grant on the customer."""

    async def work() -> Audited[ExternalAdminChange]:
        customer, clean = await _parties(viewer, customer_id, email)
        grant = (
            await ExternalAdminGrant.filter(customer_id=customer.id, admin__email=clean)
            .select_for_update()
            .first()
        )
        if grant is None:
            raise reject(
                EMAIL_FIELD,
                f"{clean} is not an external admin of {customer.name}.",
                UserErrorCode.NOT_FOUND,
            )
        await ExternalAdminGrant.filter(id=grant.id).delete()
        return Audited(
            ExternalAdminChange(
                customer_row(customer),
                ExternalAdmin(clean, grant.granted_at, grant.granted_by_id),
                clean,
            ),
            audit_target("Customer", customer.id),
            f"Ended {clean} as an external admin of {customer.name}",
        )

    return await run_mutation(viewer, REVOKE_EXTERNAL_ADMIN, "customer.external_admin.revoke", work)


async def external_admins_of(
    viewer: Viewer, customer_ids: Sequence[int]
) -> dict[int, list[ExternalAdmin]]:
    """`Customer.externalAdmins` for a page of customers: the grants on the viewer's
    own partner's customers, oldest first; none on a customer seen through a grant."""
    rows = (
        await visible_external_admin_grants(viewer)
        .filter(customer_id__in=list(customer_ids))
        .order_by("granted_at", "id")
        .values_list("customer_id", "admin__email", "granted_at", "granted_by_id")
    )
    found: dict[int, list[ExternalAdmin]] = defaultdict(list)
    for customer_id, email, granted_at, granted_by_id in rows:
        found[customer_id].append(ExternalAdmin(email, granted_at, granted_by_id))
    return found
