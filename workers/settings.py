"""ARQ worker configuration, shared by `partnerhub worker` and the in-process
worker of the embedded default."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.worker import Worker

from app.config import Settings, get_settings
from app.db import close_database, open_database
from app.metrics import instrument_jobs
from app.queue import QUEUE_NAME, JobQueue, redis_settings
from workers.attention_digest import ARQ_DIGEST_TRIES, attention_digest_tick, send_attention_digest
from workers.attention_webhooks import attention_webhook_tick
from workers.calling import refresh_calling_week
from workers.crons import customer_dates_tick, periodic_tick, run_periodic, upkeep_tick
from workers.report_emails import ARQ_EMAIL_TRIES, send_report_email
from workers.reports import (
    ARQ_REPORT_TRIES,
    deliver_webhook,
    expire_reports,
    generate_report,
    report_tick,
)
from workers.runtime import PartnerHubWorker
from workers.trials import expire_trials

CRON_JOBS = [
    # `unique` keeps several workers from running one tick twice.
    # Trial expiry (daily 00:05 UTC), report retention (daily 00:15 UTC), the
    # calling rollup (Sundays 00:00 UTC): each occurrence is recorded, and one
    # missed in an outage runs once after it (workers/crons.py).
    cron(periodic_tick, second=0, unique=True, run_at_startup=False),
    # Call-leg partitions ahead and call-leg retention (daily 00:30 UTC), run
    # within this tick and recorded the same way; a day missed (no worker up) is
    # caught up at the next day's tick (workers/crons.py).
    cron(upkeep_tick, hour=0, minute=30, second=30, unique=True, run_at_startup=False),
    # The customers' kept end dates the day passed (daily 00:00 UTC): looked for
    # every minute, run within the tick and recorded the same way, so the first
    # tick after midnight, or after an outage, runs it (workers/crons.py).
    cron(customer_dates_tick, second=45, unique=True, run_at_startup=False),
    # Schedules and report leases: every 15 s; the claim in the database keeps a
    # schedule's occurrence single, a lapsed lease is requeued within the next tick.
    cron(report_tick, second={0, 15, 30, 45}, unique=True, run_at_startup=False),
    # The daily attention digests: hourly at minute 7, the day just ended (and the
    # day before it after an outage); one row per admin and day keeps each single
    # (workers/attention_digest.py).
    cron(attention_digest_tick, minute=7, second=20, unique=True, run_at_startup=False),
    # Partner webhooks of the attention feed: every 5 s; each delivery is claimed
    # in the database, so ticks of several workers never send one twice at once.
    cron(attention_webhook_tick, second=set(range(0, 60, 5)), unique=True, run_at_startup=False),
]


def worker_pool_size(max_jobs: int) -> int:
    """Connections a worker process's pool may open: a running report holds one
    for its reads while its lease renewals need another, and the ticks (report
    leases and schedules, periodic jobs) one each; with fewer, renewals queue
    behind reads and leases lapse on a healthy worker."""
    return 2 * max_jobs + 2


async def _open_database(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    await open_database(settings, pool_maxsize=worker_pool_size(settings.worker_max_jobs))


async def _close_database(ctx: dict[str, Any]) -> None:
    await ctx["queue"].close()
    await close_database()


async def _close_queue(ctx: dict[str, Any]) -> None:
    await ctx["queue"].close()


def build_worker(
    redis_url: str, *, in_process: bool, burst: bool = False, settings: Settings | None = None
) -> Worker:
    """A worker on `redis_url`. In-process workers share the service's database
    connection and leave signals to uvicorn; standalone ones open their own. A
    burst worker runs the queued jobs and exits: it runs none of the clock's
    ticks, which would otherwise fire whenever its run crossed their second."""
    settings = settings or get_settings()
    functions = [
        expire_trials,
        refresh_calling_week,
        # ARQ's tries also count drains and outages; the report's own tries are
        # capped in the database (app/domain/report_leases.py MAX_TRIES).
        func(generate_report, timeout=settings.job_timeout_seconds, max_tries=ARQ_REPORT_TRIES),
        func(deliver_webhook, max_tries=10),
        func(send_report_email, max_tries=ARQ_EMAIL_TRIES),
        func(send_attention_digest, max_tries=ARQ_DIGEST_TRIES),
        report_tick,
        expire_reports,
        periodic_tick,
        # One occurrence of a periodic job; its claim in the database keeps it
        # single, so its result need not be kept (the tick may queue it again).
        func(run_periodic, timeout=settings.job_timeout_seconds, keep_result=0),
    ]
    return PartnerHubWorker(
        # Each run counted and timed by outcome (app/metrics.py).
        functions=instrument_jobs(functions),
        cron_jobs=None if burst else instrument_jobs(CRON_JOBS),
        queue_name=QUEUE_NAME,
        redis_settings=redis_settings(redis_url),
        ctx={"settings": settings, "queue": JobQueue(redis_url)},
        on_startup=None if in_process else _open_database,
        on_shutdown=_close_queue if in_process else _close_database,
        handle_signals=not in_process,
        burst=burst,
        max_jobs=settings.worker_max_jobs,
        max_tries=5,
        # Also (plus 10 s) how long ARQ waits before it runs again the job of a
        # worker that died; reports do not wait for it (their leases lapse first).
        job_timeout=settings.job_timeout_seconds,
        keep_result=3600,
        drain_seconds=settings.worker_drain_seconds,
    )
