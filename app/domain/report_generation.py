"""Generating one report (the worker's side): QUEUED -> RUNNING -> SUCCEEDED or
FAILED, rows streamed from the database in chunks into a CSV file.

On PostgreSQL the database writes the CSV of the rows itself (report_copy.py:
one `COPY (SELECT …) TO STDOUT`), and Python adds the header row, fixes the
line ends, counts, hashes and stores; on SQLite, and for the customer list
(whose statuses are computed in Python), rows are read in chunks and written by
report_csv.py. Both make the same bytes.

Memory holds one chunk of rows (or of COPY's output) at a time, whatever the
report's size. The file is written under a partial name and moved into place
only when complete, and the status moves to SUCCEEDED only after that, once: a
retried job (a worker that died) starts the file over, and a job for a report
that already finished does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from app.clock import utcnow
from app.db import copy_csv_out, is_postgres
from app.domain import report_leases
from app.domain.access import Viewer, customer_scope
from app.domain.customer_list_report import customer_list_rows
from app.domain.report_copy import RowEnds, copy_query
from app.domain.report_csv import encode_rows
from app.domain.report_leases import LeaseTerms
from app.domain.report_rows import report_rows, row_query
from app.domain.report_templates import columns_of, definition_of
from app.domain.reports import TERMINAL_STATUSES
from app.domain.sql import Sql
from app.domain.statuses import StatusWindows
from app.models.admins import Admin
from app.models.enums import Region, ReportStatus, ReportType
from app.models.reports import Report, ReportSchedule
from app.storage import ReportStorage

# Called with the report after each status change (Redis pub/sub in the worker).
Notify = Callable[[Report], Awaitable[None]]
# Called after each chunk (of rows, or of COPY's output) with the rows written
# so far (the CLI's progress bar).
Progress = Callable[[int], None]


class ReportMissing(Exception):
    """The report row is not there (yet): its transaction may not have committed."""


class ReportFailure(Exception):
    """A report that cannot succeed however often it is tried; the message is for the user."""


@dataclass(frozen=True)
class Outcome:
    report: Report
    ran: bool  # False when the report had already finished


async def _requester(report: Report) -> Viewer:
    if report.requested_by_id is None:
        raise ReportFailure(
            "The admin who asked for this report (or created its schedule) no longer exists."
        )
    admin = await Admin.get_or_none(id=report.requested_by_id).prefetch_related("partner")
    if admin is not None and admin.removed_at is not None and report.schedule_id is not None:
        # A scheduled run queued before its owner was removed runs as the
        # schedule's owner now (removeAdmin moved the schedule to another).
        schedule = await ReportSchedule.get_or_none(id=report.schedule_id)
        if schedule is not None and schedule.created_by_id != admin.id:
            admin = await Admin.get_or_none(id=schedule.created_by_id).prefetch_related("partner")
    if admin is None or admin.partner_id != report.partner_id:
        raise ReportFailure("The admin who asked for this report no longer exists.")
    if admin.removed_at is not None:
        raise ReportFailure("The admin who asked for this report was removed.")
    # Customers seen through external-admin grants only in the reports that say so
    # (the requester's own, which no other admin sees), and only while granted.
    return Viewer(
        admin=admin, partner=admin.partner, with_grants=bool(report.with_granted_customers)
    )


async def start(
    report_id: int, now: datetime, storage_key: str | None = None, lease: LeaseTerms | None = None
) -> Report | None:
    """Take the report under `lease` and move it to RUNNING (again, on a retry);
    None when it already finished or another job holds it. A job names its
    report's storage key too, so a job left in the queue from before a database
    reset never runs another report with the same id."""
    report = await Report.get_or_none(id=report_id)
    if report is None or (storage_key is not None and report.storage_key != storage_key):
        raise ReportMissing(f"report {report_id} is not stored (yet)")
    if report.status in TERMINAL_STATUSES:
        return None
    if not await report_leases.take(report_id, lease or _own_lease(), now):
        return None
    await report.refresh_from_db()
    return report


def _own_lease() -> LeaseTerms:
    """A lease for a report run outside the job queue (`partnerhub report run`)."""
    return LeaseTerms(owner=f"process:{os.getpid()}:{uuid.uuid4().hex[:8]}")


async def write_file(
    report: Report,
    storage: ReportStorage,
    chunk_rows: int,
    progress: Progress | None = None,
    before_commit: Callable[[], Awaitable[None]] | None = None,
    windows: StatusWindows = StatusWindows(),
) -> tuple[int, int, str]:
    """Stream the report's rows into its file; returns (rows, bytes, sha256 hex).
    `before_commit` runs just before the file is moved into place (the lease check);
    `windows` are the status settings (customer list reports show statuses)."""
    viewer = await _requester(report)
    template = await report.template
    definition = definition_of(template)
    columns = columns_of(template, report.column_keys)  # as when it was requested
    if not columns:
        raise ReportFailure("The report template has no columns left.")
    now = utcnow()
    report_type = ReportType(template.report_type)
    region = Region(report.region) if report.region else None
    keys = [c.key for c in columns]
    chunks: AsyncIterator[list[list[str]]] | None = None
    copied: Sql | None = None
    if report_type is ReportType.CUSTOMER_LIST:
        chunks = customer_list_rows(
            viewer, report.customer_filter, region, windows.at(now), keys, chunk_rows
        )
    else:
        query = row_query(
            report_type,
            customer_scope(viewer),
            region,
            report.start_date,
            report.end_date,
            now.date(),
        )
        if is_postgres():
            copied = copy_query(query, definition, keys)
        else:
            chunks = report_rows(query, definition, keys, chunk_rows)
    assert report.storage_key
    upload = await storage.upload(report.storage_key)
    digest = hashlib.sha256()
    size = rows = 0

    async def write(data: bytes) -> None:
        nonlocal size
        await upload.write(data)
        digest.update(data)
        size += len(data)

    try:
        await write(encode_rows([[c.title for c in columns]]))
        if copied is not None:
            ends = RowEnds()

            async def output(data: bytes) -> None:
                await write(ends.feed(data))
                if progress is not None:
                    progress(ends.rows)

            await copy_csv_out(copied.text, copied.params, output)
            rows = ends.finish()
        else:
            assert chunks is not None
            async for chunk in chunks:
                await write(encode_rows(chunk))
                rows += len(chunk)
                if progress is not None:
                    progress(rows)
        if before_commit is not None:
            await before_commit()
        await upload.commit()
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            await upload.abort()
        raise
    return rows, size, digest.hexdigest()


async def finish(
    report: Report, rows: int, size: int, checksum: str, now: datetime, lease: LeaseTerms
) -> Report:
    updated = await Report.filter(
        id=report.id, status=ReportStatus.RUNNING, lease_owner=lease.owner
    ).update(
        status=ReportStatus.SUCCEEDED,
        finished_at=now,
        row_count=rows,
        byte_size=size,
        checksum=checksum,
        error=None,
        lease_owner=None,
        lease_expires_at=None,
    )
    await report.refresh_from_db()
    if not updated:
        raise ReportFailure(f"report {report.id} changed status while it ran ({report.status})")
    return report


async def fail(report: Report, message: str, now: datetime) -> Report:
    await (
        Report.filter(id=report.id)
        .exclude(status__in=list(TERMINAL_STATUSES))
        .update(
            status=ReportStatus.FAILED,
            finished_at=now,
            error=message[:2000],
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    await report.refresh_from_db()
    return report


async def run_report(
    report_id: int,
    storage: ReportStorage,
    *,
    chunk_rows: int,
    storage_key: str | None = None,
    notify: Notify | None = None,
    progress: Progress | None = None,
    lease: LeaseTerms | None = None,
    windows: StatusWindows = StatusWindows(),
) -> Outcome:
    """Generate one report under `lease` (renewed while the file is written).
    ReportFailure ends it FAILED; LeaseLost (another job took it over) ends this
    run with nothing written; any other error is left to the caller (the job
    retries it) with the report still RUNNING."""
    lease = lease or _own_lease()
    report = await start(report_id, utcnow(), storage_key, lease)
    if report is None:
        return Outcome(await Report.get(id=report_id), ran=False)
    if notify:
        await notify(report)
    try:
        async with report_leases.kept(report_id, lease) as kept:
            rows, size, checksum = await write_file(
                report,
                storage,
                chunk_rows,
                progress=progress,
                before_commit=kept.confirm,
                windows=windows,
            )
        report = await finish(report, rows, size, checksum, utcnow(), lease)
    except ReportFailure as failure:
        await storage.delete(report.storage_key or "")
        report = await fail(report, str(failure), utcnow())
    if notify:
        await notify(report)
    return Outcome(report, ran=True)
