"""The customer list: scope, filters, ordering and keyset pagination, in SQL,
and the `CustomerRow` values the list and the lookups hand out.

A page costs three statements whatever its size: the count, the page of ids
(with the sort key), and the customer rows. Its cursors are those of the one
keyset mechanism (app/domain/pagination.py `Keyset`), naming the ordering.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from app.db import Row, as_datetime, fetch_records, is_postgres
from app.domain.access import (
    Viewer,
    customer_scope,
    customer_scope_parts,
    managed_by_condition,
    managed_customers,
    visible_customers,
)
from app.domain.errors import InvalidArgument
from app.domain.pagination import (
    DATE,
    DATETIME,
    ID,
    TEXT,
    KeyPart,
    Keyset,
    Page,
    cursor_int,
    page_size,
)
from app.domain.sql import FALSE, TRUE, Sql, all_of, any_of, in_list, like_pattern, one_of
from app.domain.statuses import (
    HOLDING,
    StatusClock,
    status_columns,
    status_condition,
    statuses_in,
)
from app.models.customers import Customer
from app.models.enums import CustomerStatus, ManagedBy, Product, Region, SubscriptionKind

MAX_SEARCH_LENGTH = 200
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9]{4,15}$")
MAC = re.compile(r"^[0-9A-F]{12}$")


class CustomerOrderField(StrEnum):
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    NEXT_END_DATE = "NEXT_END_DATE"
    TOTAL_LICENSES = "TOTAL_LICENSES"


@dataclass(frozen=True)
class CustomerOrder:
    field: CustomerOrderField = CustomerOrderField.NAME
    descending: bool = False

    @property
    def name(self) -> str:
        return f"{self.field.value}:{'DESC' if self.descending else 'ASC'}"


@dataclass(frozen=True)
class CustomerFilter:
    """CustomerFilter of the contract. `tag_ids` holds None for an id that names no tag."""

    search: str | None = None
    email: str | None = None
    managed_by: ManagedBy | None = None
    products: list[Product] | None = None
    statuses: list[CustomerStatus] | None = None
    subscription_type: SubscriptionKind | None = None
    tag_ids: list[int | None] | None = None
    regions: list[Region] | None = None
    assigned_admin_id: int | None = None  # Admin.assignedCustomers

    def to_json(self) -> dict[str, Any]:
        """The filter as stored with a report or a schedule (the parts given)."""
        stored: dict[str, Any] = {
            "search": self.search,
            "email": self.email,
            "managed_by": self.managed_by.value if self.managed_by else None,
            "products": [p.value for p in self.products] if self.products is not None else None,
            "statuses": [s.value for s in self.statuses] if self.statuses is not None else None,
            "subscription_type": self.subscription_type.value if self.subscription_type else None,
            "tag_ids": list(self.tag_ids) if self.tag_ids is not None else None,
            "regions": [r.value for r in self.regions] if self.regions is not None else None,
            "assigned_admin_id": self.assigned_admin_id,
        }
        return {k: v for k, v in stored.items() if v is not None}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> CustomerFilter:
        def listed(key: str, kind: type) -> list | None:
            values = stored.get(key)
            return [kind(v) for v in values] if values is not None else None

        managed_by, kind = stored.get("managed_by"), stored.get("subscription_type")
        return cls(
            search=stored.get("search"),
            email=stored.get("email"),
            managed_by=ManagedBy(managed_by) if managed_by else None,
            products=listed("products", Product),
            statuses=listed("statuses", CustomerStatus),
            subscription_type=SubscriptionKind(kind) if kind else None,
            tag_ids=stored.get("tag_ids"),
            regions=listed("regions", Region),
            assigned_admin_id=stored.get("assigned_admin_id"),
        )


class FilterValueRefused(InvalidArgument):
    """A filter value the client must fix, with the CustomerFilter field it is in
    (`customers` answers it as any InvalidArgument; a mutation names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


FAR_FUTURE, FAR_PAST = date(9999, 12, 31), date(1, 1, 1)


def next_end_date(clock: StatusClock) -> Sql:
    """A customer's next end date: the soonest end date, today or later, of its
    subscriptions and trials that hold licenses (NULL when there is none). The
    kept column (app/domain/customer_columns.py), read from the rows only for a
    customer whose kept date the day has passed before the daily job ran."""
    return Sql(
        "CASE WHEN c.next_end_date IS NULL OR c.next_end_date >= ? THEN c.next_end_date"
        " ELSE (SELECT MIN(s.end_date) FROM subscription s WHERE s.customer_id = c.id"
        f" AND s.status IN {HOLDING} AND s.end_date >= ?) END",
        (clock.today, clock.today),
    )


# The sort keys of the next end date, written as the customer indexes are
# (migrations/0011): literals, not parameters, so that an index serves them.
# Customers with no next end date sort last either way: after every date
# ascending, before every date descending. On PostgreSQL the bounds are the
# infinities (asyncpg reads and writes date.max and date.min as them).
NEXT_END_KEYS = {
    # (postgres, descending) -> key
    (True, False): "COALESCE(c.next_end_date, 'infinity')",
    (True, True): "COALESCE(c.next_end_date, '-infinity')",
    (False, False): f"COALESCE(c.next_end_date, '{FAR_FUTURE.isoformat()}')",
    (False, True): f"COALESCE(c.next_end_date, '{FAR_PAST.isoformat()}')",
}


def _sort_key(order: CustomerOrder) -> str:
    """The SQL of the list's sort key in `order`, without parameters (literals
    only, so that the customer indexes serve it)."""
    if order.field is CustomerOrderField.NAME:
        return "LOWER(c.name)"
    if order.field is CustomerOrderField.CREATED_AT:
        return "c.created_at"
    if order.field is CustomerOrderField.NEXT_END_DATE:
        return NEXT_END_KEYS[is_postgres(), order.descending]
    return "c.total_licenses"


# How a customer's cursor writes each ordering's value (the last part, its id,
# makes the order unique). The values are those `_sort_key` gives: a name
# lowered, a time of creation, a next end date, a sum of licenses (never below 0).
SORT_PARTS: dict[CustomerOrderField, KeyPart] = {
    CustomerOrderField.NAME: TEXT,
    CustomerOrderField.CREATED_AT: DATETIME,
    CustomerOrderField.NEXT_END_DATE: DATE,
    CustomerOrderField.TOTAL_LICENSES: KeyPart(int, lambda v: cursor_int(v)),
}


def customer_keyset(order: CustomerOrder) -> Keyset:
    """The keyset of the customer list in `order`: its cursors name the ordering,
    so a cursor of another ordering is refused (ORDERING_CHANGED)."""
    return Keyset(
        "customers",
        (SORT_PARTS[order.field], ID),
        descending=order.descending,
        variant=(order.name,),
    )


def _search_condition(search: str) -> Sql:
    text = search.strip()
    if len(text) > MAX_SEARCH_LENGTH:
        raise FilterValueRefused("search", f"`search` is at most {MAX_SEARCH_LENGTH} characters")
    if not text:
        return TRUE
    pattern = like_pattern(text.lower())
    parts = [
        Sql("LOWER(c.name) LIKE ? ESCAPE '!'", (pattern,)),
        Sql("LOWER(c.external_id) LIKE ? ESCAPE '!'", (pattern,)),
        Sql("LOWER(CAST(c.org_id AS TEXT)) LIKE ? ESCAPE '!'", (pattern,)),
    ]
    digits = re.sub(r"[\s().-]", "", text)
    if PHONE.match(digits):
        numbers = (digits, digits if digits.startswith("+") else f"+{digits}")
        parts.append(
            Sql(
                "EXISTS (SELECT 1 FROM phone_number pn WHERE pn.customer_id = c.id"
                " AND pn.phone_number IN (?, ?))",
                numbers,
            )
            | Sql(
                "EXISTS (SELECT 1 FROM device d WHERE d.customer_id = c.id"
                " AND d.phone_number IN (?, ?))",
                numbers,
            )
        )
    mac = re.sub(r"[:.-]", "", text).upper()
    if MAC.match(mac):
        parts.append(
            Sql("EXISTS (SELECT 1 FROM device d WHERE d.customer_id = c.id AND d.mac = ?)", (mac,))
        )
    return any_of(parts)


def filter_condition(viewer: Viewer, flt: CustomerFilter, clock: StatusClock) -> Sql:
    """The SQL that holds for a customer `c` passing every part of the filter."""
    parts: list[Sql] = []
    if flt.search is not None:
        parts.append(_search_condition(flt.search))
    if flt.email is not None:
        email = flt.email.strip().lower()
        if not EMAIL.match(email):
            raise FilterValueRefused(
                "email", f"`email` is not an email address: {flt.email[:100]!r}"
            )
        parts.append(
            Sql(
                "EXISTS (SELECT 1 FROM customer_user u WHERE u.customer_id = c.id AND u.email = ?)",
                (email,),
            )
        )
    if flt.managed_by is not None:
        parts.append(managed_by_condition(viewer, ManagedBy(flt.managed_by)))
    if flt.products is not None:
        products = in_list("l.product", [p.value for p in flt.products])
        parts.append(
            Sql(
                "EXISTS (SELECT 1 FROM subscription s JOIN license_line l"
                f" ON l.subscription_id = s.id WHERE s.customer_id = c.id AND {products.text})",
                products.params,
            )
        )
    if flt.statuses is not None:
        parts.append(any_of(status_condition(s, clock) for s in flt.statuses))
    if flt.subscription_type is SubscriptionKind.SUBSCRIPTION:
        parts.append(Sql("c.holds_licenses"))  # a holding subscription (kept column)
    elif flt.subscription_type is SubscriptionKind.TRIAL:
        parts.append(status_condition(CustomerStatus.TRIAL, clock))
    if flt.tag_ids is not None:
        if any(tag_id is None for tag_id in flt.tag_ids):
            parts.append(FALSE)  # a tag that does not exist is carried by no customer
        for tag_id in dict.fromkeys(t for t in flt.tag_ids if t is not None):
            parts.append(
                Sql(
                    "EXISTS (SELECT 1 FROM customer_tag ct JOIN tag tg ON tg.id = ct.tag_id"
                    " WHERE ct.customer_id = c.id AND ct.tag_id = ? AND tg.partner_id = ?)",
                    (tag_id, viewer.partner_id),
                )
            )
    if flt.regions is not None:
        parts.append(in_list("c.region", [r.value for r in flt.regions]))
    if flt.assigned_admin_id is not None:
        parts.append(
            Sql(
                "EXISTS (SELECT 1 FROM customer_assignment a2 WHERE a2.customer_id = c.id"
                " AND a2.admin_id = ?)",
                (flt.assigned_admin_id,),
            )
        )
    return all_of(parts)


@dataclass(slots=True)
class CustomerRow:
    """A customer as the API reads it (what a list, a lookup or a page hands out)."""

    id: int
    partner_id: int
    name: str
    org_id: UUID
    external_id: str | None
    region: Region
    location: str | None
    created_at: datetime
    last_admin_activity_at: datetime | None
    # Read with the row when its list was asked for them (None: not read).
    statuses: list[CustomerStatus] | None = None


def customer_row(customer: Customer) -> CustomerRow:
    """The row of a customer model (a mutation's, read in the viewer's scope)."""
    return CustomerRow(
        id=customer.id,
        partner_id=customer.partner_id,  # type: ignore[attr-defined]
        name=customer.name,
        org_id=customer.org_id,
        external_id=customer.external_id,
        region=Region(customer.region),
        location=customer.location,
        created_at=customer.created_at,
        last_admin_activity_at=customer.last_admin_activity_at,
    )


CUSTOMER_COLUMNS = (
    "c.id, c.partner_id, c.name, c.org_id, c.external_id, c.region, c.location,"
    " c.created_at, c.last_admin_activity_at"
)


def _customer_row(row: Row, statuses: list[CustomerStatus] | None = None) -> CustomerRow:
    """A customer's value from a row of CUSTOMER_COLUMNS."""
    return CustomerRow(
        id=row["id"],
        partner_id=row["partner_id"],
        name=row["name"],
        org_id=row["org_id"] if isinstance(row["org_id"], UUID) else UUID(str(row["org_id"])),
        external_id=row["external_id"],
        region=Region(row["region"]),
        location=row["location"],
        created_at=as_datetime(row["created_at"]),
        last_admin_activity_at=as_datetime(row["last_admin_activity_at"])
        if row["last_admin_activity_at"] is not None
        else None,
        statuses=statuses,
    )


async def customer_rows(ids: Sequence[int]) -> dict[int, CustomerRow]:
    """The customers of `ids` (read in the viewer's scope by the caller), by id,
    in one statement whatever their number."""
    if not ids:
        return {}
    where = one_of("c.id", list(dict.fromkeys(ids)))
    rows = await fetch_records(
        f"SELECT {CUSTOMER_COLUMNS} FROM customer c WHERE {where.text}", where.params
    )
    return {row["id"]: _customer_row(row) for row in rows}


async def list_customers(
    viewer: Viewer,
    clock: StatusClock,
    *,
    first: int | None = None,
    after: str | None = None,
    flt: CustomerFilter | None = None,
    order: CustomerOrder | None = None,
    with_statuses: bool = False,
) -> Page[CustomerRow]:
    """One page of the customers the viewer sees, filtered and ordered, with the
    total (and each customer's statuses, `with_statuses`), in one statement."""
    size = page_size(first)
    order = order or CustomerOrder()
    keyset = customer_keyset(order)
    past = keyset.after(after)
    condition = filter_condition(viewer, flt or CustomerFilter(), clock)
    key = _sort_key(order)
    cursor = keyset.sql_after([f"({key})", "c.id"], past)
    # Each disjoint part of the scope counted and paged on its own (an index
    # serves `partner_id = ? ORDER BY LOWER(name), id`; an OR of the parts would
    # read every row), then added up. One statement for all: the total, and the
    # page with its customers' columns (and statuses); a page past the end is
    # one row of NULLs beside the total.
    parts = [part & condition for part in customer_scope_parts(viewer)]
    total = " + ".join(f"(SELECT COUNT(*) FROM customer c WHERE {p.text})" for p in parts)
    ordering = f"ORDER BY {keyset.sql_order(['sort_key', 'id'])} LIMIT ?"
    pages = [
        Sql(
            f"SELECT * FROM (SELECT c.id, {key} AS sort_key FROM customer c"
            f" WHERE ({p.text}) AND ({cursor.text}) {ordering}) part",
            (*p.params, *cursor.params, size + 1),
        )
        for p in parts
    ]
    columns = Sql(f"total.n AS total_count, page.sort_key, {CUSTOMER_COLUMNS}")
    if with_statuses:
        statuses = status_columns(clock)
        columns = Sql(f"{columns.text}, {statuses.text}", statuses.params)
    rows = await fetch_records(
        f"SELECT {columns.text} FROM (SELECT {total} AS n) total"
        f" LEFT JOIN (SELECT id, sort_key FROM ({' UNION ALL '.join(p.text for p in pages)})"
        f" page {ordering}) page ON 1 = 1"
        " LEFT JOIN customer c ON c.id = page.id"
        f" ORDER BY {keyset.sql_order(['page.sort_key', 'page.id'])}",
        [
            *columns.params,
            *(v for p in parts for v in p.params),
            *(v for p in pages for v in p.params),
            size + 1,
        ],
    )
    found = [r for r in rows if r["id"] is not None]
    page = keyset.page_of(
        found,
        size,
        lambda r: (r["sort_key"], r["id"]),
        total=int(rows[0]["total_count"]),
        after=past,
    )
    return replace(
        page,
        items=[_customer_row(r, statuses_in(r) if with_statuses else None) for r in page.items],
    )


async def get_customer(viewer: Viewer, customer_id: int) -> CustomerRow | None:
    """A customer the viewer sees (a granted one too, read-only); anything else
    reads as not found."""
    customer = await visible_customers(viewer).get_or_none(id=customer_id)
    return customer_row(customer) if customer else None


async def get_managed_customer(viewer: Viewer, customer_id: int | None) -> Customer | None:
    """A customer the viewer may change (its own partner's, in its role's reach): what
    every mutation on a customer starts from. A customer seen through an
    external-admin grant reads as not found, as any other partner's does."""
    if not customer_id:
        return None
    return await managed_customers(viewer).get_or_none(id=customer_id)


async def assigned_customer_pages(
    viewer: Viewer, admin_ids: list[int], first: int | None
) -> dict[int, Page[CustomerRow]]:
    """The first page (by name) of each admin's assigned customers the viewer sees,
    for a whole page of admins in three statements. Cursors are those of
    `list_customers` ordered by name, so `after` continues there."""
    size = page_size(first)
    keyset = customer_keyset(CustomerOrder())
    scope = customer_scope(viewer)
    admins = one_of("a.admin_id", admin_ids)
    base = (
        "FROM customer_assignment a JOIN customer c ON c.id = a.customer_id"
        f" WHERE ({scope.text}) AND {admins.text}"
    )
    params = [*scope.params, *admins.params]
    totals = {
        r["admin_id"]: int(r["n"])
        for r in await fetch_records(
            f"SELECT a.admin_id, COUNT(*) AS n {base} GROUP BY a.admin_id", params
        )
    }
    rows = await fetch_records(
        "SELECT admin_id, customer_id, sort_key, rn FROM ("
        f" SELECT a.admin_id, c.id AS customer_id, {_sort_key(CustomerOrder())} AS sort_key,"
        " ROW_NUMBER() OVER (PARTITION BY a.admin_id ORDER BY LOWER(c.name), c.id) AS rn"
        f" {base}) ranked WHERE rn <= ? ORDER BY admin_id, rn",
        [*params, size + 1],
    )
    by_id = await customer_rows([r["customer_id"] for r in rows])
    pages = {}
    for admin_id in admin_ids:
        page = keyset.page_of(
            [r for r in rows if r["admin_id"] == admin_id],
            size,
            lambda r: (r["sort_key"], r["customer_id"]),
            total=totals.get(admin_id, 0),
            after=None,
        )
        pages[admin_id] = replace(page, items=[by_id[r["customer_id"]] for r in page.items])
    return pages
