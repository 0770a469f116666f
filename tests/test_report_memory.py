"""A report's memory does not grow with its row count: rows stream from the
database into the file, in chunks of rows on SQLite and as pieces of COPY's CSV
on PostgreSQL (tracemalloc peak for 10,000 vs 200,000 rows)."""

from __future__ import annotations

import tracemalloc
import uuid

from tortoise.transactions import in_transaction

from app.bulk import BulkWriter
from app.config import Settings
from app.db import connection
from app.domain.report_generation import run_report
from app.domain.reports import ReportRequest, create_report
from app.models.enums import AdminRole, ReportStatus
from app.models.reports import Report, ReportTemplate
from app.storage import open_storage
from tests import factories

DEVICE_COLUMNS = (
    "customer_id", "device_uuid", "product", "mac", "firmware", "phone_number", "extension",
    "user_id", "user_uuid",
)  # fmt: skip


async def _add_devices(customer_id: int, count: int, offset: int) -> None:
    async with in_transaction() as conn:
        writer = BulkWriter(conn, chunk_rows=20_000)
        writer.table("device", DEVICE_COLUMNS)
        for i in range(offset, offset + count):
            await writer.add(
                "device",
                (customer_id, uuid.uuid4(), "Cisco 8865", f"{i:012X}", "12.0.1",
                 f"+1415{i:07d}", f"{i % 10000}", f"user{i}@example.com", uuid.uuid4()),
            )  # fmt: skip
        await writer.flush()


async def _peak_bytes(report_id: int, settings: Settings) -> tuple[int, int]:
    storage = open_storage(settings)
    tracemalloc.start()
    try:
        outcome = await run_report(report_id, storage, chunk_rows=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.report.status == ReportStatus.SUCCEEDED, outcome.report.error
    return peak, outcome.report.row_count or 0


async def test_peak_memory_does_not_grow_with_the_row_count(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    customer = await factories.customer(org, "Big Customer")
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    request = ReportRequest(template, None, None, None)
    assert connection()  # the test's database is open

    await _add_devices(customer.id, 10_000, 0)
    small = await create_report(org.id, request, admin.id, None, factories.NOW.date())
    small_peak, small_rows = await _peak_bytes(small.id, db)
    await _add_devices(customer.id, 190_000, 10_000)
    large = await create_report(org.id, request, admin.id, None, factories.NOW.date())
    large_peak, large_rows = await _peak_bytes(large.id, db)

    assert (small_rows, large_rows) == (10_000, 200_000)
    large_report = await Report.get(id=large.id)
    assert large_report.byte_size > 15 * (await Report.get(id=small.id)).byte_size
    # 20 times the rows, about the same peak: one chunk at a time.
    assert large_peak < small_peak * 1.5 + 256 * 1024, (small_peak, large_peak)
    assert large_peak < 16 * 1024 * 1024
