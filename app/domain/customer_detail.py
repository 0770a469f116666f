"""What the customer detail tabs show, read in batches: each function takes
the ids of a whole page (already in the viewer's scope) and costs one query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.db import fetch_all
from app.domain.access import Viewer, customer_scope, managed_by, referenced_admins
from app.domain.sql import one_of
from app.models.admins import Admin, CustomerAssignment
from app.models.customers import Customer, Location
from app.models.enums import ManagedBy, Product
from app.models.subscriptions import Invoice, LicenseLine, Order, Subscription
from app.models.tags import CustomerTag, Tag
from app.models.trials import Trial, TrialProduct

PRODUCT_ORDER = {p: n for n, p in enumerate(Product)}


def _group(rows: Sequence, key: str) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, key)].append(row)
    return grouped


async def subscriptions_of(customer_ids: Sequence[int]) -> dict[int, list[Subscription]]:
    """Subscriptions and trials of each customer, newest first."""
    rows = await Subscription.filter(customer_id__in=customer_ids).order_by("-added_at", "-id")
    return _group(rows, "customer_id")


async def license_lines_of(subscription_ids: Sequence[int]) -> dict[int, list[LicenseLine]]:
    rows = await LicenseLine.filter(subscription_id__in=subscription_ids).order_by("id")
    return _group(rows, "subscription_id")


async def latest_invoices_of(subscription_ids: Sequence[int]) -> dict[int, Invoice]:
    rows = await Invoice.filter(subscription_id__in=subscription_ids).order_by("issued_on", "id")
    return {row.subscription_id: row for row in rows}  # the last one written wins


async def orders_of(subscription_ids: Sequence[int]) -> dict[int, list[Order]]:
    rows = await Order.filter(subscription_id__in=subscription_ids).order_by("-placed_at", "-id")
    return _group(rows, "subscription_id")


async def trials_of(customer_ids: Sequence[int]) -> dict[int, list[Trial]]:
    """Ongoing and past trials of each customer, newest first."""
    rows = await Trial.filter(customer_id__in=customer_ids).order_by("-start_date", "-id")
    return _group(rows, "customer_id")


async def trial_products_of(trial_ids: Sequence[int]) -> dict[int, list[TrialProduct]]:
    rows = await TrialProduct.filter(trial_id__in=trial_ids)
    grouped = _group(rows, "trial_id")
    for products in grouped.values():
        products.sort(key=lambda p: PRODUCT_ORDER[Product(p.product)])
    return grouped


async def products_of(customer_ids: Sequence[int]) -> dict[int, list[Product]]:
    """The products each customer ordered: those of all its subscriptions and trials."""
    rows = await (
        LicenseLine.filter(subscription__customer_id__in=customer_ids)
        .distinct()
        .values_list("subscription__customer_id", "product")
    )
    products: dict[int, set[Product]] = defaultdict(set)
    for customer_id, product in rows:
        products[customer_id].add(Product(product))
    return {cid: sorted(found, key=PRODUCT_ORDER.__getitem__) for cid, found in products.items()}


async def tags_of(viewer: Viewer, customer_ids: Sequence[int]) -> dict[int, list[Tag]]:
    rows = await CustomerTag.filter(
        customer_id__in=customer_ids, tag__partner_id=viewer.partner_id
    ).select_related("tag")
    tags: dict[int, list[Tag]] = defaultdict(list)
    for row in rows:
        tags[row.customer_id].append(row.tag)
    for found in tags.values():
        found.sort(key=lambda t: t.name_key)
    return tags


@dataclass(frozen=True)
class Assignment:
    admin: Admin
    assigned_at: datetime


async def partner_admins_of(
    viewer: Viewer, customer_ids: Sequence[int]
) -> dict[int, list[Assignment]]:
    """Admins assigned to each customer (only admins of the viewer's partner)."""
    rows = await CustomerAssignment.filter(
        customer_id__in=customer_ids, admin__partner_id=viewer.partner_id
    ).select_related("admin")
    assignments: dict[int, list[Assignment]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.assigned_at, r.id)):
        assignments[row.customer_id].append(Assignment(row.admin, row.assigned_at))
    return assignments


async def managed_by_of(viewer: Viewer, customer_ids: Sequence[int]) -> dict[int, ManagedBy]:
    """`Customer.managedBy` of each customer (already in the viewer's scope), relative
    to the viewer: the one place the list, its filter's test and the CUSTOMER_LIST
    report read it from (the rule itself is `access.managed_by`)."""
    rows = await Customer.filter(id__in=list(customer_ids)).values_list("id", "partner_id")
    return {cid: managed_by(viewer, partner_id) for cid, partner_id in rows}


async def locations_of(customer_ids: Sequence[int]) -> dict[int, list[Location]]:
    rows = await Location.filter(customer_id__in=customer_ids).order_by("name", "id")
    return _group(rows, "customer_id")


async def admins_of_partner(viewer: Viewer) -> dict[int, Admin]:
    """Every admin of the viewer's partner, by id, removed ones too (what a tag, a
    trial, a report or an audit event names still resolves)."""
    return {row.id: row for row in await referenced_admins(viewer)}


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
