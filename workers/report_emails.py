"""E-mails of scheduled reports: one job per recipient of a succeeded run
(app/domain/report_emails.py), tried again with doubling delays."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from arq import Retry

from app.clock import utcnow
from app.config import Settings
from app.domain.report_emails import MailConfig, deliver, deliveries_for, waiting_deliveries
from app.metrics import count_email
from app.models.reports import Report
from app.queue import JobQueue, QueueError

log = logging.getLogger(__name__)

EMAIL_JOB = "send_report_email"
# ARQ's tries of one delivery's job; the delivery's own tries are capped in the
# database (app/domain/report_emails.py MAX_ATTEMPTS).
ARQ_EMAIL_TRIES = 10


def email_job_id(delivery_id: int) -> str:
    """One job id per delivery: queueing it again while ARQ knows it is a no-op."""
    return f"email:{delivery_id}"


async def start_emails(ctx: dict[str, Any], report: Report) -> int:
    """Queue the e-mails of a succeeded scheduled report (none for other reports);
    a second call for one report queues only what is still PENDING."""
    queue: JobQueue = ctx["queue"]
    deliveries = await deliveries_for(report)
    try:
        for delivery in deliveries:
            await queue.enqueue(EMAIL_JOB, delivery.id, job_id=email_job_id(delivery.id))
    except QueueError as exc:  # stored PENDING: the tick queues them again
        log.warning("report %s: e-mails not queued yet: %s", report.id, exc)
    return len(deliveries)


async def requeue_waiting_emails(ctx: dict[str, Any], before: datetime) -> int:
    """Queue again the PENDING deliveries stored before `before` (the tick): a
    no-op for those whose job ARQ still holds (queued, deferred for a retry, or
    its result kept), a new start for those whose job was lost."""
    queue: JobQueue = ctx["queue"]
    waiting = await waiting_deliveries(before)
    for delivery_id in waiting:
        await queue.enqueue(EMAIL_JOB, delivery_id, job_id=email_job_id(delivery_id))
    return len(waiting)


async def send_report_email(ctx: dict[str, Any], delivery_id: int) -> str | None:
    settings: Settings = ctx["settings"]
    attempt = await deliver(delivery_id, MailConfig.of(settings), utcnow())
    if attempt.outcome is not None:
        count_email(attempt.outcome)
    if attempt.retry_in is not None:
        raise Retry(defer=attempt.retry_in)
    return attempt.outcome
