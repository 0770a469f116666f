"""What the customer detail tabs show, read in batches: each function takes
the ids of a whole page (already in the viewer's scope) and costs one query.
The DataLoaders of schema/loaders.py and the customer list report read through
these; the relations of a customers page are the plain rows of
app/domain/customer_pages.py, which a page reads up front."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from app.db import fetch_all
from app.domain import customer_pages as pages
from app.domain.access import Viewer, customer_scope, managed_by, referenced_admins
from app.domain.customer_pages import (
    AdminRow,
    AssignmentRow,
    InvoiceRow,
    LicenseLineRow,
    LocationRow,
    OrderRow,
    SubscriptionRow,
    TagRow,
    TrialProductRow,
    TrialRow,
)
from app.domain.sql import one_of
from app.models.customers import Customer
from app.models.enums import ManagedBy, Product


def _group(rows: Sequence, key: str) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, key)].append(row)
    return grouped


async def subscriptions_of(customer_ids: Sequence[int]) -> dict[int, list[SubscriptionRow]]:
    """Subscriptions and trials of each customer, newest first."""
    return _group(await pages.subscriptions_of(customer_ids), "customer_id")


async def license_lines_of(subscription_ids: Sequence[int]) -> dict[int, list[LicenseLineRow]]:
    return await pages.license_lines_of(subscription_ids)


async def latest_invoices_of(subscription_ids: Sequence[int]) -> dict[int, InvoiceRow]:
    return await pages.latest_invoices_of(subscription_ids)


async def orders_of(subscription_ids: Sequence[int]) -> dict[int, list[OrderRow]]:
    return await pages.orders_of(subscription_ids)


async def trials_of(customer_ids: Sequence[int]) -> dict[int, list[TrialRow]]:
    """Ongoing and past trials of each customer, newest first."""
    return await pages.trials_of(customer_ids)


async def trial_products_of(trial_ids: Sequence[int]) -> dict[int, list[TrialProductRow]]:
    return await pages.trial_products_of(trial_ids)


async def products_of(customer_ids: Sequence[int]) -> dict[int, list[Product]]:
    """The products each customer ordered: those of all its subscriptions and trials."""
    return await pages.products_of(customer_ids)


async def tags_of(viewer: Viewer, customer_ids: Sequence[int]) -> dict[int, list[TagRow]]:
    return await pages.tags_of(viewer, customer_ids)


async def partner_admins_of(
    viewer: Viewer, customer_ids: Sequence[int]
) -> dict[int, list[AssignmentRow]]:
    """Admins assigned to each customer (only admins of the viewer's partner)."""
    return await pages.partner_admins_of(viewer, customer_ids)


async def managed_by_of(viewer: Viewer, customer_ids: Sequence[int]) -> dict[int, ManagedBy]:
    """`Customer.managedBy` of each customer (already in the viewer's scope), relative
    to the viewer: the one place the list, its filter's test and the CUSTOMER_LIST
    report read it from (the rule itself is `access.managed_by`)."""
    rows = await Customer.filter(id__in=list(customer_ids)).values_list("id", "partner_id")
    return {cid: managed_by(viewer, partner_id) for cid, partner_id in rows}


async def locations_of(customer_ids: Sequence[int]) -> dict[int, list[LocationRow]]:
    return await pages.locations_of(customer_ids)


async def admins_of_partner(viewer: Viewer) -> dict[int, AdminRow]:
    """Every admin of the viewer's partner, by id, removed ones too (what a tag, a
    trial, a report or an audit event names still resolves)."""
    return {row.id: pages.admin_row(row) for row in await referenced_admins(viewer)}


async def tag_customer_counts(viewer: Viewer, tag_ids: Sequence[int]) -> dict[int, int]:
    """Customers carrying each tag, among the customers the viewer sees."""
    scope = customer_scope(viewer)
    tags = one_of("ct.tag_id", list(tag_ids))
    rows = await fetch_all(
        "SELECT ct.tag_id, COUNT(*) AS n FROM customer_tag ct"
        " JOIN customer c ON c.id = ct.customer_id"
        f" WHERE ({tags.text}) AND ({scope.text}) GROUP BY ct.tag_id",
        [*tags.params, *scope.params],
    )
    return {row["tag_id"]: int(row["n"]) for row in rows}
