"""The customer list: scope, filters, ordering and keyset pagination, in SQL.

A page costs three statements whatever its size: the count, the page of ids
(with the sort key), and the customer rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from app.db import fetch_all, is_postgres
from app.domain.access import (
    Viewer,
    customer_scope,
    customer_scope_parts,
    managed_by_condition,
    managed_customers,
    visible_customers,
)
from app.domain.errors import InvalidArgument
from app.domain.ids import MAX_PK
from app.domain.pagination import (
    NOT_A_CURSOR,
    Page,
    cursor_date,
    cursor_datetime,
    cursor_int,
    cursor_text,
    decode_cursor,
    encode_cursor,
    page_size,
)
from app.domain.sql import FALSE, TRUE, Sql, all_of, any_of, in_list, like_pattern, one_of
from app.domain.statuses import HOLDING, StatusClock, status_condition
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


def _sort_key(order: CustomerOrder, clock: StatusClock) -> Sql:
    if order.field is CustomerOrderField.NAME:
        return Sql("LOWER(c.name)")
    if order.field is CustomerOrderField.CREATED_AT:
        return Sql("c.created_at")
    if order.field is CustomerOrderField.NEXT_END_DATE:
        return Sql(NEXT_END_KEYS[is_postgres(), order.descending])
    return Sql("c.total_licenses")


def _key_from_cursor(order: CustomerOrder, value: Any) -> Any:
    if order.field is CustomerOrderField.NAME:
        return cursor_text(value)
    if order.field is CustomerOrderField.CREATED_AT:
        return cursor_datetime(value)
    if order.field is CustomerOrderField.NEXT_END_DATE:
        return cursor_date(value)
    return cursor_int(value)


def _cursor_condition(order: CustomerOrder, key: Sql, after: str) -> Sql:
    payload = decode_cursor(after, "customers")
    if len(payload) != 4:
        raise InvalidArgument(NOT_A_CURSOR)
    if payload[1] != order.name:
        raise InvalidArgument(
            "`after` belongs to another ordering: start again without `after` "
            "when you change `orderBy`"
        )
    value, last_id = _key_from_cursor(order, payload[2]), cursor_int(payload[3], 1, MAX_PK)
    op = "<" if order.descending else ">"
    return Sql(
        f"({key.text}) {op} ? OR (({key.text}) = ? AND c.id {op} ?)",
        (*key.params, value, *key.params, value, last_id),
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


async def list_customers(
    viewer: Viewer,
    clock: StatusClock,
    *,
    first: int | None = None,
    after: str | None = None,
    flt: CustomerFilter | None = None,
    order: CustomerOrder | None = None,
) -> Page[Customer]:
    """One page of the customers the viewer sees, filtered and ordered, with the total."""
    size = page_size(first)
    order = order or CustomerOrder()
    condition = filter_condition(viewer, flt or CustomerFilter(), clock)
    key = _sort_key(order, clock)
    cursor = _cursor_condition(order, key, after) if after is not None else TRUE
    direction = "DESC" if order.descending else "ASC"
    # Each disjoint part of the scope counted and paged on its own (an index
    # serves `partner_id = ? ORDER BY LOWER(name), id`; an OR of the parts would
    # read every row), then added up: one statement for the total, one for the page.
    parts = [part & condition for part in customer_scope_parts(viewer)]
    total = await fetch_all(
        "SELECT "
        + " + ".join(f"(SELECT COUNT(*) FROM customer c WHERE {p.text})" for p in parts)
        + " AS n",
        [v for p in parts for v in p.params],
    )
    ordering = f"ORDER BY sort_key {direction}, id {direction} LIMIT ?"
    pages = [
        Sql(
            f"SELECT * FROM (SELECT c.id, {key.text} AS sort_key FROM customer c"
            f" WHERE ({p.text}) AND ({cursor.text}) {ordering}) part",
            (*key.params, *p.params, *cursor.params, size + 1),
        )
        for p in parts
    ]
    rows = await fetch_all(
        f"SELECT id, sort_key FROM ({' UNION ALL '.join(p.text for p in pages)}) page {ordering}",
        [*(v for p in pages for v in p.params), size + 1],
    )
    has_next = len(rows) > size
    rows = rows[:size]
    ids = [r["id"] for r in rows]
    by_id = {c.id: c for c in await Customer.filter(id__in=ids)} if ids else {}
    return Page(
        items=[by_id[r["id"]] for r in rows],
        cursors=[
            encode_cursor(["customers", order.name, _cursor_value(order, r["sort_key"]), r["id"]])
            for r in rows
        ],
        has_next_page=has_next,
        has_previous_page=after is not None,
        total_count=int(total[0]["n"]),
    )


def _cursor_value(order: CustomerOrder, value: Any) -> Any:
    """The sort key as a cursor holds it: the form `_key_from_cursor` accepts,
    whichever database gave it (SQLite gives dates and times as text)."""
    if order.field is CustomerOrderField.CREATED_AT:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    if order.field is CustomerOrderField.NEXT_END_DATE:
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return day.isoformat()
    if order.field is CustomerOrderField.TOTAL_LICENSES:
        return int(value)  # Decimal sums on PostgreSQL
    return value


async def get_customer(viewer: Viewer, customer_id: int) -> Customer | None:
    """A customer the viewer sees (a granted one too, read-only); anything else
    reads as not found."""
    return await visible_customers(viewer).get_or_none(id=customer_id)


async def get_managed_customer(viewer: Viewer, customer_id: int | None) -> Customer | None:
    """A customer the viewer may change (its own partner's, in its role's reach): what
    every mutation on a customer starts from. A customer seen through an
    external-admin grant reads as not found, as any other partner's does."""
    if not customer_id:
        return None
    return await managed_customers(viewer).get_or_none(id=customer_id)


async def assigned_customer_pages(
    viewer: Viewer, admin_ids: list[int], first: int | None
) -> dict[int, Page[Customer]]:
    """The first page (by name) of each admin's assigned customers the viewer sees,
    for a whole page of admins in three statements. Cursors are those of
    `list_customers` ordered by name, so `after` continues there."""
    size = page_size(first)
    scope = customer_scope(viewer)
    admins = one_of("a.admin_id", admin_ids)
    base = (
        "FROM customer_assignment a JOIN customer c ON c.id = a.customer_id"
        f" WHERE ({scope.text}) AND {admins.text}"
    )
    params = [*scope.params, *admins.params]
    totals = {
        r["admin_id"]: int(r["n"])
        for r in await fetch_all(
            f"SELECT a.admin_id, COUNT(*) AS n {base} GROUP BY a.admin_id", params
        )
    }
    rows = await fetch_all(
        "SELECT admin_id, customer_id, sort_key, rn FROM ("
        " SELECT a.admin_id, c.id AS customer_id, LOWER(c.name) AS sort_key,"
        " ROW_NUMBER() OVER (PARTITION BY a.admin_id ORDER BY LOWER(c.name), c.id) AS rn"
        f" {base}) ranked WHERE rn <= ? ORDER BY admin_id, rn",
        [*params, size],
    )
    ids = list({r["customer_id"] for r in rows})
    by_id = {c.id: c for c in await Customer.filter(id__in=ids)} if ids else {}
    order = CustomerOrder().name
    pages = {}
    for admin_id in admin_ids:
        mine = [r for r in rows if r["admin_id"] == admin_id]
        pages[admin_id] = Page(
            items=[by_id[r["customer_id"]] for r in mine],
            cursors=[
                encode_cursor(["customers", order, r["sort_key"], r["customer_id"]]) for r in mine
            ],
            has_next_page=totals.get(admin_id, 0) > len(mine),
            has_previous_page=False,
            total_count=totals.get(admin_id, 0),
        )
    return pages
