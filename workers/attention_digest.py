"""The daily attention digest by e-mail (app/domain/attention_digest.py): a tick
(hourly, at minute 7, on standing workers) claims the digests of the day just
ended, and of the day before it after an outage (CATCH_UP_DAYS), one row per
admin and day, and queues one job per digest to send; a job that fails to send
is tried again with doubling delays. The tick also queues again the PENDING
digests whose job was lost (a no-op for those ARQ still holds), and deletes the
rows of days past the attention events' retention."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from arq import Retry

from app.clock import utcnow
from app.config import Settings
from app.domain.attention_digest import (
    DigestConfig,
    digest_days,
    forget_before,
    forget_old_digests,
    open_digests,
    send_digest,
    waiting_digests,
)
from app.queue import JobQueue, QueueError
from workers.runtime import rides_out_database_outages

log = logging.getLogger(__name__)

DIGEST_JOB = "send_attention_digest"
# ARQ's tries of one digest's job; the digest's own tries are capped in the
# database (app/domain/report_emails.py MAX_ATTEMPTS).
ARQ_DIGEST_TRIES = 10


def digest_job_id(digest_id: int) -> str:
    """One job id per digest: queueing it again while ARQ knows it is a no-op."""
    return f"attention-digest:{digest_id}"


@rides_out_database_outages
async def attention_digest_tick(ctx: dict[str, Any], now: datetime | str | None = None) -> int:
    """Claim the digests due at `now` (default the clock): the day just ended and
    the catch-up days before it; queue a job for each one to send and for each
    PENDING one whose job may be lost. Returns how many digests it queued."""
    settings: Settings = ctx["settings"]
    moment = datetime.fromisoformat(now) if isinstance(now, str) else now or utcnow()
    opened: list[int] = []
    for day in digest_days(moment):
        opened += await open_digests(day, moment, settings.control_hub_url)
    to_send = sorted(set(opened) | set(await waiting_digests()))
    queue: JobQueue = ctx["queue"]
    try:
        for digest_id in to_send:
            await queue.enqueue(DIGEST_JOB, digest_id, job_id=digest_job_id(digest_id))
    except QueueError as exc:  # stored PENDING: the next tick queues them again
        log.warning("attention digests not queued yet: %s", exc)
    if opened:
        log.info("attention digests: %d to send", len(opened))
    today = moment.astimezone(UTC).date()
    await forget_old_digests(forget_before(today, settings.attention_retention_days))
    return len(to_send)


async def send_attention_digest(ctx: dict[str, Any], digest_id: int) -> str | None:
    """One try of one digest; a failure worth another try comes back after its delay."""
    settings: Settings = ctx["settings"]
    attempt = await send_digest(digest_id, DigestConfig.of(settings), utcnow())
    if attempt.retry_in is not None:
        raise Retry(defer=attempt.retry_in)
    return attempt.outcome
