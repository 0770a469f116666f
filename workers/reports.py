"""Report jobs: generate one report, the per-minute schedule tick, webhook
deliveries, and the daily retention run."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from arq import Retry

from app.clock import utcnow
from app.config import Settings
from app.domain.report_generation import ReportMissing, fail, run_report
from app.domain.report_retention import expire_old_reports, fail_abandoned_reports
from app.domain.report_schedules import run_due_schedules
from app.domain.reports import report_channel
from app.domain.webhooks import deliver, webhook_for
from app.models.reports import Report
from app.queue import JobQueue, QueueError
from app.storage import open_storage

log = logging.getLogger(__name__)

# Tries of one report job (a worker that dies mid-report counts as one).
MAX_TRIES = 5
WEBHOOK_JOB = "deliver_webhook"


def _settings(ctx: dict[str, Any]) -> Settings:
    return ctx["settings"]


def _queue(ctx: dict[str, Any]) -> JobQueue:
    return ctx["queue"]


async def _notify(ctx: dict[str, Any], report: Report) -> None:
    try:
        await _queue(ctx).publish(report_channel(report.id), report.status)
    except QueueError as exc:  # a missed push must not fail the report
        log.warning("report %s: status %s not published: %s", report.id, report.status, exc)


async def generate_report(ctx: dict[str, Any], report_id: int, storage_key: str) -> str:
    """Generate one report; retried (same job id) when its worker dies or an
    unexpected error stops it, FAILED after the last try."""
    settings = _settings(ctx)
    job_try = ctx.get("job_try", 1)
    try:
        outcome = await run_report(
            report_id,
            open_storage(settings),
            chunk_rows=settings.report_chunk_rows,
            storage_key=storage_key,
            notify=lambda report: _notify(ctx, report),
        )
    except ReportMissing:
        if job_try < MAX_TRIES:  # its transaction may not have committed yet
            raise Retry(defer=job_try) from None
        log.warning("report %s was never stored; job dropped", report_id)
        return "missing"
    except Exception as exc:
        log.exception("report %s: try %s failed", report_id, job_try)
        if job_try < MAX_TRIES:
            raise Retry(defer=job_try * 5) from exc
        report = await Report.get(id=report_id)
        report = await fail(report, f"Generation failed: {type(exc).__name__}: {exc}", utcnow())
        await _notify(ctx, report)
        await _start_webhook(ctx, report)
        return report.status
    if outcome.ran:
        await _start_webhook(ctx, outcome.report)
    return outcome.report.status


async def _start_webhook(ctx: dict[str, Any], report: Report) -> None:
    delivery = await webhook_for(report)
    if delivery is not None:
        await _queue(ctx).enqueue(
            WEBHOOK_JOB, delivery.id, job_id=f"webhook:{delivery.id}:{report.storage_key}"
        )


async def deliver_webhook(ctx: dict[str, Any], delivery_id: int) -> bool:
    settings = _settings(ctx)
    attempt = await deliver(
        delivery_id,
        settings.signing_key(),
        settings.webhook_base_url,
        settings.download_url_ttl_seconds,
        settings.webhook_retry_base_seconds,
        utcnow(),
        allowed_hosts=settings.webhook_allowed_hosts,
    )
    if attempt.retry_in is not None:
        raise Retry(defer=attempt.retry_in)
    return attempt.delivered


async def report_tick(ctx: dict[str, Any], now: str | None = None) -> int:
    """Every minute: start the due schedules' reports, fail abandoned ones."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    settings = _settings(ctx)
    started = await run_due_schedules(_queue(ctx), moment)
    for report in await fail_abandoned_reports(moment, settings.job_timeout_seconds):
        await _notify(ctx, report)
    if started:
        log.info("started %d scheduled report(s)", len(started))
    return len(started)


async def expire_reports(ctx: dict[str, Any], now: str | None = None) -> int:
    """Daily: delete files past retention and mark their reports EXPIRED."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    settings = _settings(ctx)
    expired = await expire_old_reports(
        open_storage(settings), moment, settings.report_retention_days
    )
    for report in expired:
        await _notify(ctx, report)
    log.info("expired %d report(s)", len(expired))
    return len(expired)
