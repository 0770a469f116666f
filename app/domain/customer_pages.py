"""A page of customers read in a few passes: the customers (already in the
viewer's scope, from `list_customers` or a lookup) and the relations the
caller asks for, loaded level by level, one statement per level and relation
(`= ANY` arrays through `app.domain.sql.one_of`) whatever the page's size, and
returned as plain typed values with the figures already computed.

What to load is a `CustomerNeeds`: which relations of a customer, and of its
subscriptions and trials. The GraphQL layer derives it from a selection; the
reader knows nothing of GraphQL. Its batch readers also serve, one relation at
a time, the DataLoaders of objects reached another way (through
app/domain/customer_detail.py), so both paths answer the same values; the
lookups by id (app/domain/lookups.py) and the trial mutations hand out these
rows too (`subscription_row`, `trial_row`, `admin_row` of a model). A
customer's subscriptions page by keyset, newest first (`subscription_page`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from app.db import Row, as_date, as_datetime, fetch_records
from app.domain import external_admins
from app.domain.access import Viewer, managed_by
from app.domain.customers import CustomerRow
from app.domain.licenses import HOLDING_STATUSES, LicenseCounts, sum_counts
from app.domain.pagination import DATETIME, ID, Keyset, Page
from app.domain.sql import one_of
from app.domain.statuses import StatusClock, statuses_of
from app.models.enums import (
    AdminRole,
    CustomerStatus,
    LicenseType,
    ManagedBy,
    OrderAction,
    Product,
    SubscriptionKind,
    SubscriptionStatus,
    TrialStatus,
)

PRODUCT_ORDER = {p: n for n, p in enumerate(Product)}
# Each enum's members by value: a row's text made a member without the Enum
# call (an unknown value still goes through the call, which refuses it).
_KINDS = {m.value: m for m in SubscriptionKind}
_SUBSCRIPTION_STATUSES = {m.value: m for m in SubscriptionStatus}
_LICENSE_TYPES = {m.value: m for m in LicenseType}
_PRODUCTS = {m.value: m for m in Product}


@dataclass(frozen=True, slots=True)
class SubscriptionNeeds:
    """What to load for each subscription of a customer (all of them are loaded)."""

    lines: bool = False  # license lines: licenses, products, totals
    invoice: bool = False  # the latest invoice
    orders: bool = False


@dataclass(frozen=True, slots=True)
class TrialNeeds:
    products: bool = False


@dataclass(frozen=True, slots=True)
class CustomerNeeds:
    """The relations of a customer a page asks for; `managed_by` is always known."""

    statuses: bool = False
    products: bool = False
    tags: bool = False
    tag_counts: bool = False  # with `tags`: each tag's customers among those the viewer sees
    tag_creators: bool = False  # with `tags`: the admin who created each tag
    license_totals: bool = False
    subscriptions: SubscriptionNeeds | None = None
    trials: TrialNeeds | None = None
    partner_admins: bool = False
    external_admins: bool = False
    locations: bool = False


@dataclass(slots=True)
class LicenseLineRow:
    id: int
    subscription_id: int
    license_type: LicenseType
    product: Product
    quantity: int
    assigned: int
    used: int


@dataclass(slots=True)
class InvoiceRow:
    number: str
    issued_on: date
    amount: Decimal
    currency: str
    paid: bool


@dataclass(slots=True)
class OrderRow:
    order_number: str
    placed_at: datetime
    action: OrderAction
    description: str | None


@dataclass(slots=True)
class SubscriptionRow:
    """A subscription (or a trial's subscription row) and what was loaded of it:
    None where the needs did not ask (`invoice_loaded` tells a missing invoice
    from one not read)."""

    id: int
    customer_id: int
    subscription_id: str
    kind: SubscriptionKind
    status: SubscriptionStatus
    start_date: date
    end_date: date | None
    auto_renew: bool
    added_at: datetime
    lines: list[LicenseLineRow] | None = None
    invoice: InvoiceRow | None = None
    invoice_loaded: bool = False
    orders: list[OrderRow] | None = None


@dataclass(slots=True)
class TrialProductRow:
    product: Product
    licenses: int


@dataclass(slots=True)
class TrialRow:
    id: int
    customer_id: int
    trial_id: str
    status: TrialStatus
    start_date: date
    end_date: date
    started_by_id: int | None
    products: list[TrialProductRow] | None = None


@dataclass(slots=True)
class TagRow:
    id: int
    name: str
    name_key: str
    description: str | None
    created_at: datetime
    created_by_id: int | None
    # Read when the page asked (None / False otherwise); the same values as the
    # `tag_customer_counts` and `admins` DataLoaders answer.
    customer_count: int | None = None
    created_by: AdminRow | None = None  # the creator (an admin of the partner), None when gone
    created_by_loaded: bool = False


@dataclass(slots=True)
class AdminRow:
    id: int
    email: str
    display_name: str
    role: AdminRole
    last_login_at: datetime | None
    created_at: datetime
    removed_at: datetime | None


@dataclass(slots=True)
class AssignmentRow:
    admin: AdminRow
    assigned_at: datetime


@dataclass(slots=True)
class LocationRow:
    uuid: UUID
    name: str
    country: str


@dataclass(slots=True)
class CustomerRead:
    """A customer and the relations its page asked for (None: not asked)."""

    customer: CustomerRow
    managed_by: ManagedBy
    statuses: list[CustomerStatus] | None = None
    products: list[Product] | None = None
    tags: list[TagRow] | None = None
    license_totals: LicenseCounts | None = None
    subscriptions: list[SubscriptionRow] | None = None
    trials: list[TrialRow] | None = None
    partner_admins: list[AssignmentRow] | None = None
    external_admins: list[external_admins.ExternalAdmin] | None = None
    locations: list[LocationRow] | None = None


def subscription_row(sub: Any) -> SubscriptionRow:
    """The row of a subscription model read in the viewer's scope (a lookup's)."""
    return SubscriptionRow(
        id=sub.id,
        customer_id=sub.customer_id,
        subscription_id=sub.subscription_id,
        kind=SubscriptionKind(sub.kind),
        status=SubscriptionStatus(sub.status),
        start_date=sub.start_date,
        end_date=sub.end_date,
        auto_renew=sub.auto_renew,
        added_at=sub.added_at,
    )


def trial_row(trial: Any) -> TrialRow:
    """The row of a trial model read in the viewer's scope (a lookup's, a list's,
    a mutation's)."""
    return TrialRow(
        id=trial.id,
        customer_id=trial.customer_id,
        trial_id=trial.trial_id,
        status=TrialStatus(trial.status),
        start_date=trial.start_date,
        end_date=trial.end_date,
        started_by_id=trial.started_by_id,
    )


def admin_row(admin: Any) -> AdminRow:
    """The row of an admin model of the viewer's partner."""
    return AdminRow(
        id=admin.id,
        email=admin.email,
        display_name=admin.display_name,
        role=AdminRole(admin.role),
        last_login_at=admin.last_login_at,
        created_at=admin.created_at,
        removed_at=admin.removed_at,
    )


# A customer's subscriptions page as they are shown: newest first (by the time
# each was added, then by id).
SUBSCRIPTIONS = Keyset("subscriptions", (DATETIME, ID), descending=True)


def subscription_page(
    subscriptions: Sequence[SubscriptionRow], first: int | None, after: str | None
) -> Page[SubscriptionRow]:
    """A page of a customer's subscriptions (all of them read, newest first)."""
    return SUBSCRIPTIONS.slice(subscriptions, first, after, lambda s: (s.added_at, s.id))


async def read_customer_page(
    viewer: Viewer, clock: StatusClock, customers: Sequence[CustomerRow], needs: CustomerNeeds
) -> list[CustomerRead]:
    """The customers (already in the viewer's scope, in page order) with what
    `needs` asks for: one statement per relation and level, whatever their number."""
    reads = [
        CustomerRead(customer=row, managed_by=managed_by(viewer, row.partner_id))
        for row in customers
    ]
    ids = [r.customer.id for r in reads]
    if not ids:
        return reads
    by_id = {r.customer.id: r for r in reads}
    if needs.statuses:  # read with the list's rows, or here
        unread = [r.customer.id for r in reads if r.customer.statuses is None]
        found = await statuses_of(unread, clock) if unread else {}
        for r in reads:
            r.statuses = r.customer.statuses
            if r.statuses is None:
                r.statuses = found.get(r.customer.id, [])
    subs_needed = needs.subscriptions is not None or needs.license_totals
    if subs_needed:
        await _read_subscriptions(reads, by_id, ids, needs)
    if needs.products:
        if subs_needed:  # every subscription and its lines are in memory already
            for r in reads:
                r.products = _products_of_subscriptions(r.subscriptions or [])
        else:
            found = await products_of(ids)
            for r in reads:
                r.products = found.get(r.customer.id, [])
    if needs.tags:
        found_tags = await tags_of(viewer, ids)
        for r in reads:
            r.tags = found_tags.get(r.customer.id, [])
        if needs.tag_counts or needs.tag_creators:
            await _read_tag_fields(
                viewer, [t for found in found_tags.values() for t in found], needs
            )
    if needs.trials is not None:
        await _read_trials(reads, ids, needs.trials)
    if needs.partner_admins:
        assignments = await partner_admins_of(viewer, ids)
        for r in reads:
            r.partner_admins = assignments.get(r.customer.id, [])
    if needs.external_admins:
        grants = await external_admins.external_admins_of(viewer, ids)
        for r in reads:
            r.external_admins = list(grants.get(r.customer.id, []))
    if needs.locations:
        locations = await locations_of(ids)
        for r in reads:
            r.locations = locations.get(r.customer.id, [])
    return reads


async def _read_subscriptions(
    reads: list[CustomerRead], by_id: dict[int, CustomerRead], ids: list[int], needs: CustomerNeeds
) -> None:
    """Every subscription of the customers (newest first), then their license
    lines (always: license totals and products come from them), latest invoice
    and orders as asked; license totals computed."""
    sub_needs = needs.subscriptions or SubscriptionNeeds()
    subs = await subscriptions_of(ids)
    for r in reads:
        r.subscriptions = []
    for sub in subs:
        by_id[sub.customer_id].subscriptions.append(sub)  # type: ignore[union-attr]
    sub_ids = [s.id for s in subs]
    if sub_ids:
        lines = await license_lines_of(sub_ids)
        for sub in subs:
            sub.lines = lines.get(sub.id, [])
        if sub_needs.invoice:
            invoices = await latest_invoices_of(sub_ids)
            for sub in subs:
                sub.invoice = invoices.get(sub.id)
                sub.invoice_loaded = True
        if sub_needs.orders:
            orders = await orders_of(sub_ids)
            for sub in subs:
                sub.orders = orders.get(sub.id, [])
    if needs.license_totals:
        for r in reads:
            r.license_totals = sum_counts(
                line
                for sub in r.subscriptions or []
                if sub.status in HOLDING_STATUSES
                for line in sub.lines or []
            )


async def _read_tag_fields(viewer: Viewer, tags: list[TagRow], needs: CustomerNeeds) -> None:
    """The customer count of each of the page's tags (one statement for them all)
    and their creators (every admin of the partner, one statement), as asked."""
    from app.domain import customer_detail  # it reads through this module

    if not tags:
        return
    if needs.tag_counts:
        counts = await customer_detail.tag_customer_counts(viewer, sorted({t.id for t in tags}))
        for tag in tags:
            tag.customer_count = counts.get(tag.id, 0)
    if needs.tag_creators:
        admins = await customer_detail.admins_of_partner(viewer)
        for tag in tags:
            if tag.created_by_id is not None:
                tag.created_by = admins.get(tag.created_by_id)
            tag.created_by_loaded = True


async def _read_trials(reads: list[CustomerRead], ids: list[int], needs: TrialNeeds) -> None:
    trials = await trials_of(ids)
    for r in reads:
        r.trials = trials.get(r.customer.id, [])
    trial_ids = [t.id for found in trials.values() for t in found]
    if needs.products:
        products = await trial_products_of(trial_ids) if trial_ids else {}
        for found in trials.values():
            for trial in found:
                trial.products = products.get(trial.id, [])


async def subscriptions_of(customer_ids: Sequence[int]) -> list[SubscriptionRow]:
    """Subscriptions and trials of the customers, newest first (as
    `customer_detail.subscriptions_of` orders them), in one statement."""
    where = one_of("customer_id", list(customer_ids))
    rows = await fetch_records(
        "SELECT id, customer_id, subscription_id, kind, status, start_date, end_date,"
        f" auto_renew, added_at FROM subscription WHERE {where.text}"
        " ORDER BY added_at DESC, id DESC",
        where.params,
    )
    return [
        SubscriptionRow(
            id=row["id"],
            customer_id=row["customer_id"],
            subscription_id=row["subscription_id"],
            kind=_KINDS.get(row["kind"]) or SubscriptionKind(row["kind"]),
            status=_SUBSCRIPTION_STATUSES.get(row["status"]) or SubscriptionStatus(row["status"]),
            start_date=as_date(row["start_date"]),
            end_date=as_date(row["end_date"]) if row["end_date"] is not None else None,
            auto_renew=bool(row["auto_renew"]),
            added_at=as_datetime(row["added_at"]),
        )
        for row in rows
    ]


async def license_lines_of(subscription_ids: Sequence[int]) -> dict[int, list[LicenseLineRow]]:
    """License lines of the subscriptions, in line order, in one statement."""
    where = one_of("subscription_id", list(subscription_ids))
    rows = await fetch_records(
        "SELECT id, subscription_id, license_type, product, quantity, assigned, used"
        f" FROM license_line WHERE {where.text} ORDER BY id",
        where.params,
    )
    lines: dict[int, list[LicenseLineRow]] = {}
    for row in rows:
        lines.setdefault(row["subscription_id"], []).append(
            LicenseLineRow(
                id=row["id"],
                subscription_id=row["subscription_id"],
                license_type=_LICENSE_TYPES.get(row["license_type"])
                or LicenseType(row["license_type"]),
                product=_PRODUCTS.get(row["product"]) or Product(row["product"]),
                quantity=row["quantity"],
                assigned=row["assigned"],
                used=row["used"],
            )
        )
    return lines


async def products_of(customer_ids: Sequence[int]) -> dict[int, list[Product]]:
    """The products each customer ordered (those of all its subscriptions and
    trials), in product order, in one statement."""
    where = one_of("s.customer_id", list(customer_ids))
    rows = await fetch_records(
        "SELECT DISTINCT s.customer_id, l.product FROM license_line l"
        f" JOIN subscription s ON s.id = l.subscription_id WHERE {where.text}",
        where.params,
    )
    found: dict[int, set[Product]] = {}
    for row in rows:
        found.setdefault(row["customer_id"], set()).add(Product(row["product"]))
    return {cid: sorted(ps, key=PRODUCT_ORDER.__getitem__) for cid, ps in found.items()}


def _products_of_subscriptions(subs: list[SubscriptionRow]) -> list[Product]:
    found = {line.product for sub in subs for line in sub.lines or []}
    return sorted(found, key=PRODUCT_ORDER.__getitem__)


async def tags_of(viewer: Viewer, customer_ids: Sequence[int]) -> dict[int, list[TagRow]]:
    """The viewer's partner's tags on each customer, by name, in one statement."""
    where = one_of("ct.customer_id", list(customer_ids))
    rows = await fetch_records(
        "SELECT ct.customer_id, t.id, t.name, t.name_key, t.description, t.created_at,"
        " t.created_by_id FROM customer_tag ct JOIN tag t ON t.id = ct.tag_id"
        f" WHERE {where.text} AND t.partner_id = ?",
        [*where.params, viewer.partner_id],
    )
    tags: dict[int, list[TagRow]] = {}
    for row in rows:
        tags.setdefault(row["customer_id"], []).append(
            TagRow(
                id=row["id"],
                name=row["name"],
                name_key=row["name_key"],
                description=row["description"],
                created_at=as_datetime(row["created_at"]),
                created_by_id=row["created_by_id"],
            )
        )
    for found in tags.values():
        found.sort(key=lambda t: t.name_key)
    return tags


def _grouped(rows: Sequence[Row], key: str, make: Any) -> dict[int, list]:
    grouped: dict[int, list] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(make(row))
    return grouped


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


async def latest_invoices_of(subscription_ids: Sequence[int]) -> dict[int, InvoiceRow]:
    """The latest invoice of each subscription (by issue date, then id), in one statement."""
    where = one_of("subscription_id", list(subscription_ids))
    rows = await fetch_records(
        "SELECT subscription_id, number, issued_on, amount, currency, paid FROM invoice"
        f" WHERE {where.text} ORDER BY issued_on, id",
        where.params,
    )
    return {  # the last one read wins
        row["subscription_id"]: InvoiceRow(
            number=row["number"],
            issued_on=as_date(row["issued_on"]),
            amount=_decimal(row["amount"]),
            currency=row["currency"],
            paid=bool(row["paid"]),
        )
        for row in rows
    }


async def orders_of(subscription_ids: Sequence[int]) -> dict[int, list[OrderRow]]:
    """Orders of each subscription, newest first, in one statement."""
    where = one_of("subscription_id", list(subscription_ids))
    rows = await fetch_records(
        "SELECT subscription_id, order_number, placed_at, action, description"
        f" FROM purchase_order WHERE {where.text} ORDER BY placed_at DESC, id DESC",
        where.params,
    )
    return _grouped(
        rows,
        "subscription_id",
        lambda row: OrderRow(
            order_number=row["order_number"],
            placed_at=as_datetime(row["placed_at"]),
            action=OrderAction(row["action"]),
            description=row["description"],
        ),
    )


async def trials_of(customer_ids: Sequence[int]) -> dict[int, list[TrialRow]]:
    """Ongoing and past trials of each customer, newest first, in one statement."""
    where = one_of("customer_id", list(customer_ids))
    rows = await fetch_records(
        "SELECT id, customer_id, trial_id, status, start_date, end_date, started_by_id"
        f" FROM trial WHERE {where.text} ORDER BY start_date DESC, id DESC",
        where.params,
    )
    return _grouped(
        rows,
        "customer_id",
        lambda row: TrialRow(
            id=row["id"],
            customer_id=row["customer_id"],
            trial_id=row["trial_id"],
            status=TrialStatus(row["status"]),
            start_date=as_date(row["start_date"]),
            end_date=as_date(row["end_date"]),
            started_by_id=row["started_by_id"],
        ),
    )


async def trial_products_of(trial_ids: Sequence[int]) -> dict[int, list[TrialProductRow]]:
    """The licenses of each trial by product, in product order, in one statement."""
    where = one_of("trial_id", list(trial_ids))
    rows = await fetch_records(
        f"SELECT trial_id, product, licenses FROM trial_product WHERE {where.text}", where.params
    )
    products = _grouped(
        rows, "trial_id", lambda row: TrialProductRow(Product(row["product"]), row["licenses"])
    )
    for found in products.values():
        found.sort(key=lambda p: PRODUCT_ORDER[p.product])
    return products


async def partner_admins_of(
    viewer: Viewer, customer_ids: Sequence[int]
) -> dict[int, list[AssignmentRow]]:
    """Admins of the viewer's partner assigned to each customer, in the order they
    were assigned, in one statement."""
    where = one_of("a.customer_id", list(customer_ids))
    rows = await fetch_records(
        "SELECT a.customer_id, a.assigned_at, ad.id, ad.email, ad.display_name, ad.role,"
        " ad.last_login_at, ad.created_at, ad.removed_at FROM customer_assignment a"
        f" JOIN admin ad ON ad.id = a.admin_id WHERE {where.text} AND ad.partner_id = ?"
        " ORDER BY a.assigned_at, a.id",
        [*where.params, viewer.partner_id],
    )
    return _grouped(
        rows,
        "customer_id",
        lambda row: AssignmentRow(
            admin=AdminRow(
                id=row["id"],
                email=row["email"],
                display_name=row["display_name"],
                role=AdminRole(row["role"]),
                last_login_at=_maybe_datetime(row["last_login_at"]),
                created_at=as_datetime(row["created_at"]),
                removed_at=_maybe_datetime(row["removed_at"]),
            ),
            assigned_at=as_datetime(row["assigned_at"]),
        ),
    )


def _maybe_datetime(value: Any) -> datetime | None:
    return as_datetime(value) if value is not None else None


async def locations_of(customer_ids: Sequence[int]) -> dict[int, list[LocationRow]]:
    """Locations of each customer, by name, in one statement."""
    where = one_of("customer_id", list(customer_ids))
    rows = await fetch_records(
        f"SELECT customer_id, uuid, name, country FROM location WHERE {where.text}"
        " ORDER BY name, id",
        where.params,
    )
    return _grouped(
        rows,
        "customer_id",
        lambda row: LocationRow(uuid=_uuid(row["uuid"]), name=row["name"], country=row["country"]),
    )
