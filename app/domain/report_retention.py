"""Report retention: files past retention are deleted (their reports become
EXPIRED). Reports whose worker died are app/domain/report_leases.py's."""

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
