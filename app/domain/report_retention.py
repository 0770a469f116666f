"""Report housekeeping: files past retention are deleted (their reports become
EXPIRED), and a report left RUNNING long after its job's time limit (its job
gave up) is marked FAILED."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.models.enums import ReportStatus
from app.models.reports import Report
from app.storage import ReportStorage


async def expire_old_reports(
    storage: ReportStorage, now: datetime, retention_days: int
) -> list[Report]:
    """Delete the files of SUCCEEDED reports finished more than `retention_days`
    ago and mark them EXPIRED; returns those reports."""
    cutoff = now - timedelta(days=retention_days)
    old = await Report.filter(status=ReportStatus.SUCCEEDED, finished_at__lt=cutoff)
    expired = []
    for report in old:
        if report.storage_key:
            await storage.delete(report.storage_key)
        updated = await Report.filter(id=report.id, status=ReportStatus.SUCCEEDED).update(
            status=ReportStatus.EXPIRED
        )
        if updated:
            report.status = ReportStatus.EXPIRED
            expired.append(report)
    return expired


async def fail_abandoned_reports(now: datetime, job_timeout_seconds: int) -> list[Report]:
    """RUNNING reports whose last start is older than the job time limit plus a
    margin: no worker runs them any more (every try was used)."""
    cutoff = now - timedelta(seconds=job_timeout_seconds + 60)
    stale = await Report.filter(status=ReportStatus.RUNNING, started_at__lt=cutoff)
    failed = []
    for report in stale:
        updated = await Report.filter(id=report.id, status=ReportStatus.RUNNING).update(
            status=ReportStatus.FAILED,
            finished_at=now,
            error=f"The report did not finish: its job stopped after {job_timeout_seconds} s "
            "or its worker stopped, on every try.",
        )
        if updated:
            await report.refresh_from_db()
            failed.append(report)
    return failed
