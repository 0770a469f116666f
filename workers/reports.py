"""Report jobs: generate one report, the per-minute schedule tick, webhook
deliveries (e-mails: workers/report_emails.py), and the daily retention run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from arq import Retry

from app.clock import utcnow
from app.config import Settings
from app.domain.report_generation import ReportMissing, run_report
from app.domain.report_leases import (
    LeaseLost,
    LeaseTerms,
    give_back,
    let_lapse,
    sweep_lapsed,
    waiting_since,
)
from app.domain.report_retention import expire_old_reports
from app.domain.report_schedules import run_due_schedules
from app.domain.reports import GENERATE_JOB, report_channel, report_job_id
from app.domain.statuses import StatusWindows
from app.domain.webhooks import deliver, webhook_for
from app.metrics import count_report_file, count_webhook
from app.models.reports import Report
from app.outage import database_unreachable
from app.queue import JobQueue, QueueError
from app.storage import open_storage
from workers.report_emails import requeue_waiting_emails, start_emails
from workers.runtime import DATABASE_OUTAGE, draining, rides_out_database_outages

log = logging.getLogger(__name__)

# ARQ's tries of one report job: drains and outages retry the same job too; the
# report's own tries are capped by its lease (app/domain/report_leases.py).
ARQ_REPORT_TRIES = 25
WEBHOOK_JOB = "deliver_webhook"
# Tries of a job whose report is not stored yet (its transaction not committed).
MISSING_TRIES = 5
# A QUEUED report whose job was queued this long ago is queued again by the tick
# (a no-op while the queue still holds the job; it matters after Redis lost it).
REQUEUE_AFTER = timedelta(minutes=2)


def _settings(ctx: dict[str, Any]) -> Settings:
    return ctx["settings"]


def _queue(ctx: dict[str, Any]) -> JobQueue:
    return ctx["queue"]


async def _notify(ctx: dict[str, Any], report: Report) -> None:
    try:
        await _queue(ctx).publish(report_channel(report.id), report.status)
    except QueueError as exc:  # a missed push must not fail the report
        log.warning("report %s: status %s not published: %s", report.id, report.status, exc)


def _lease_terms(ctx: dict[str, Any]) -> LeaseTerms:
    settings = _settings(ctx)
    return LeaseTerms(
        owner=f"{ctx.get('job_id', '-')}#{ctx.get('job_try', 1)}@{ctx.get('worker_id', '-')}",
        seconds=settings.report_lease_seconds,
        renew_seconds=settings.report_lease_renew_seconds,
    )


async def generate_report(ctx: dict[str, Any], report_id: int, storage_key: str) -> str:
    """Generate one report under a lease. A try that fails with an unexpected
    error lets its lease lapse (the tick queues the report again, FAILED after
    the last try); a lost database is retried by this job; a drain gives the
    report back without counting the try."""
    settings = _settings(ctx)
    job_try = ctx.get("job_try", 1)
    lease = _lease_terms(ctx)
    try:
        outcome = await run_report(
            report_id,
            open_storage(settings),
            chunk_rows=settings.report_chunk_rows,
            storage_key=storage_key,
            notify=lambda report: _notify(ctx, report),
            lease=lease,
            windows=StatusWindows(settings.expiring_soon_days, settings.no_recent_activity_days),
        )
    except ReportMissing:
        if job_try < MISSING_TRIES:  # its transaction may not have committed yet
            raise Retry(defer=job_try) from None
        log.warning("report %s was never stored; job dropped", report_id)
        return "missing"
    except LeaseLost:
        log.warning("report %s: another job took it over; this one stopped", report_id)
        return "lease lost"
    except asyncio.CancelledError:
        await asyncio.shield(_cut_short(ctx, report_id, lease))
        raise
    except Exception as exc:
        if database_unreachable(exc):
            DATABASE_OUTAGE.failed(exc)
            raise Retry(defer=5) from None
        log.exception("report %s: try failed", report_id)
        with contextlib.suppress(Exception):
            await let_lapse(report_id, lease, utcnow(), f"{type(exc).__name__}: {exc}")
        return "try failed"
    if outcome.ran:
        count_report_file(outcome.report.row_count, outcome.report.byte_size)
        await _start_webhook(ctx, outcome.report)
        await start_emails(ctx, outcome.report)
    return outcome.report.status


async def _cut_short(ctx: dict[str, Any], report_id: int, lease: LeaseTerms) -> None:
    """A job cancelled mid-report: by a drain, the report goes back to QUEUED
    uncounted (ARQ runs the job again on another worker); by the job time limit,
    its lease ends now (the tick counts the try and queues it again)."""
    try:
        if draining(ctx):
            if await give_back(report_id, lease, utcnow()):
                log.info("report %s given back to the queue (worker draining)", report_id)
                report = await Report.get(id=report_id)
                await _notify(ctx, report)
        else:
            limit = _settings(ctx).job_timeout_seconds
            await let_lapse(report_id, lease, utcnow(), f"The try was stopped after {limit} s.")
    except Exception:
        log.exception("report %s: could not release its lease (it lapses by itself)", report_id)


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
    count_webhook(attempt.delivered, attempt.retry_in)
    if attempt.retry_in is not None:
        raise Retry(defer=attempt.retry_in)
    return attempt.delivered


@rides_out_database_outages
async def report_tick(ctx: dict[str, Any], now: str | None = None) -> int:
    """Every 15 s: start the due schedules' reports, queue again the reports
    whose lease lapsed (FAILED after their last try) and those whose job the
    queue lost, and the e-mails still waiting (a no-op while ARQ holds their job)."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    queue = _queue(ctx)
    started = await run_due_schedules(queue, moment)
    swept = await sweep_lapsed(moment)
    for report in swept.failed:
        await _notify(ctx, report)
        await _start_webhook(ctx, report)
    for report in [*swept.requeued, *await waiting_since(moment - REQUEUE_AFTER)]:
        await queue.enqueue(
            GENERATE_JOB, report.id, report.storage_key, job_id=report_job_id(report)
        )
        if report in swept.requeued:
            log.warning(
                "report %s: its worker stopped renewing the lease; queued again (try %d)",
                report.id,
                report.attempts + 1,
            )
            await _notify(ctx, report)
    await requeue_waiting_emails(ctx, moment - REQUEUE_AFTER)
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
