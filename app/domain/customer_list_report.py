"""The customer list as a report (report type CUSTOMER_LIST, issue 14 item 6).

Its rows are the customers the `customers` query returns for a CustomerFilter,
in the scope of the admin the report is for (the requester, or a schedule's
owner), ordered as the query orders them by default (name, then id), and each
cell is what the query shows for that customer: the same SQL filter
(customers.filter_condition), the same batch readers as the query's
DataLoaders (statuses, products, tags, managed by, subscriptions and license
lines) and the same license arithmetic (licenses.py).

Rows stream: one query yields the customers' ids in chunks (a cursor on its own
connection, app.db.stream_rows); each batch of at most BATCH ids is read by a
fixed number of statements, so memory and statements per chunk do not grow with
the number of customers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from app.db import as_date, stream_rows
from app.domain import customer_detail as detail
from app.domain import licenses
from app.domain.access import Viewer, customer_scope
from app.domain.customers import (
    CustomerFilter,
    FilterValueRefused,
    filter_condition,
    next_end_date,
)
from app.domain.errors import InvalidArgument, MutationRejected, UserError, UserErrorCode, reject
from app.domain.report_columns import CUSTOMER_LIST, LIST_SEPARATOR
from app.domain.report_templates import AnyTemplate
from app.domain.sql import Sql
from app.domain.statuses import StatusClock, statuses_of
from app.models.customers import Customer
from app.models.enums import Region, ReportType
from app.models.tags import Tag

# Customers read together after the cursor gave their ids (bounds the IN lists).
BATCH = 1000
FIELD = ("input", "customer_filter")


async def check_customer_filter(
    viewer: Viewer, template: AnyTemplate, flt: CustomerFilter | None, today: date
) -> dict[str, Any] | None:
    """The filter as a report or schedule stores it (None: every customer), or user
    errors naming the field at fault: a filter with another report type than
    CUSTOMER_LIST, a value the `customers` query refuses, or a tag id that names
    no tag of the partner (the query would match nothing with it)."""
    if flt is None:
        return None
    if ReportType(template.report_type) is not ReportType.CUSTOMER_LIST:
        raise reject(
            FIELD,
            f"customerFilter is for {CUSTOMER_LIST.name} reports only "
            f"({template.name!r} is not one).",
            UserErrorCode.INVALID,
        )
    clock = StatusClock(now=datetime.combine(today, time.min, UTC))
    try:
        filter_condition(viewer, flt, clock)
    except FilterValueRefused as refused:
        raise reject((*FIELD, refused.field), str(refused), UserErrorCode.INVALID) from None
    except InvalidArgument as refused:
        raise reject(FIELD, str(refused), UserErrorCode.INVALID) from None
    if flt.tag_ids:
        known = set(
            await Tag.filter(
                partner_id=viewer.partner_id, id__in=[t for t in flt.tag_ids if t is not None]
            ).values_list("id", flat=True)
        )
        unknown = [n for n, tag_id in enumerate(flt.tag_ids) if tag_id not in known]
        if unknown:
            raise MutationRejected(
                [
                    UserError((*FIELD, "tag_ids", str(n)), "No such tag.", UserErrorCode.NOT_FOUND)
                    for n in unknown
                ]
            )
    return flt.to_json()


def _query(
    viewer: Viewer, stored_filter: dict[str, Any] | None, region: Region | None, clock: StatusClock
) -> Sql:
    flt = CustomerFilter.from_json(stored_filter or {})
    where = customer_scope(viewer) & filter_condition(viewer, flt, clock)
    if region is not None:
        where = where & Sql("c.region = ?", (region.value,))
    soonest = next_end_date(clock)
    return Sql(
        f"SELECT c.id, {soonest.text} FROM customer c WHERE {where.text}"
        " ORDER BY LOWER(c.name), c.id",
        (*soonest.params, *where.params),
    )


def _listed(values: Sequence[Any]) -> str:
    return LIST_SEPARATOR.join(str(v) for v in values)


def _moment(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


async def _batch_rows(
    viewer: Viewer, clock: StatusClock, batch: Sequence[tuple[Any, ...]]
) -> list[list[str]]:
    """Every column of the DEFAULT template for a batch of (id, next end date) rows,
    in a fixed number of statements."""
    ids = [row[0] for row in batch]
    customers = {c.id: c for c in await Customer.filter(id__in=ids)}
    statuses = await statuses_of(ids, clock)
    products = await detail.products_of(ids)
    tags = await detail.tags_of(viewer, ids)
    managed_by = await detail.managed_by_of(viewer, ids)
    subscriptions = await detail.subscriptions_of(ids)
    holding = {cid: licenses.holding(subs) for cid, subs in subscriptions.items()}
    sub_ids = [s.id for subs in holding.values() for s in subs]
    lines = await detail.license_lines_of(sub_ids) if sub_ids else {}
    rows = []
    for customer_id, soonest in batch:
        customer = customers.get(customer_id)
        if customer is None:  # deleted since the cursor read it
            continue
        counts = licenses.sum_counts(
            line for s in holding.get(customer_id, []) for line in lines.get(s.id, [])
        )
        rows.append(
            [
                customer.name,
                str(customer.org_id),
                customer.external_id or "",
                Region(customer.region).value,
                _listed([s.value for s in statuses.get(customer_id, [])]),
                _listed([p.value for p in products.get(customer_id, [])]),
                _listed([t.name for t in tags.get(customer_id, [])]),
                managed_by[customer_id].value,
                str(counts.total),
                str(counts.assigned),
                str(counts.available),
                str(counts.overage),
                as_date(soonest).isoformat() if soonest is not None else "",
                _moment(customer.created_at),
                _moment(customer.last_admin_activity_at),
            ]
        )
    return rows


async def customer_list_rows(
    viewer: Viewer,
    stored_filter: dict[str, Any] | None,
    region: Region | None,
    clock: StatusClock,
    keys: Sequence[str],
    chunk_rows: int,
) -> AsyncIterator[list[list[str]]]:
    """The report's rows in chunks, each row the cells of `keys` in that order."""
    positions = [CUSTOMER_LIST.column_keys.index(k) for k in keys]
    query = _query(viewer, stored_filter, region, clock)
    async for chunk in stream_rows(query.text, query.params, chunk_rows):
        for start in range(0, len(chunk), BATCH):
            rows = await _batch_rows(viewer, clock, chunk[start : start + BATCH])
            yield [[cells[p] for p in positions] for cells in rows]
