"""ARQ worker configuration, shared by `partnerhub worker` and the in-process
worker of the embedded default."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.worker import Worker

from app.config import Settings, get_settings
from app.db import close_database, open_database
from app.queue import QUEUE_NAME, JobQueue, redis_settings
from workers.calling import refresh_calling_week
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
    cron(expire_trials, hour=0, minute=5, unique=True, run_at_startup=False),
    # Sundays at 00:00 UTC (arq counts weekdays from Monday = 0).
    cron(refresh_calling_week, weekday=6, hour=0, minute=0, unique=True, run_at_startup=False),
    # Schedules and report leases: every 15 s; the claim in the database keeps a
    # schedule's occurrence single, a lapsed lease is requeued within the next tick.
    cron(report_tick, second={0, 15, 30, 45}, unique=True, run_at_startup=False),
    cron(expire_reports, hour=0, minute=15, unique=True, run_at_startup=False),
]


async def _open_database(ctx: dict[str, Any]) -> None:
    await open_database(ctx["settings"])


async def _close_database(ctx: dict[str, Any]) -> None:
    await ctx["queue"].close()
    await close_database()


async def _close_queue(ctx: dict[str, Any]) -> None:
    await ctx["queue"].close()


def build_worker(
    redis_url: str, *, in_process: bool, burst: bool = False, settings: Settings | None = None
) -> Worker:
    """A worker on `redis_url`. In-process workers share the service's database
    connection and leave signals to uvicorn; standalone ones open their own."""
    settings = settings or get_settings()
    functions = [
        expire_trials,
        refresh_calling_week,
        # ARQ's tries also count drains and outages; the report's own tries are
        # capped in the database (app/domain/report_leases.py MAX_TRIES).
        func(generate_report, timeout=settings.job_timeout_seconds, max_tries=ARQ_REPORT_TRIES),
        func(deliver_webhook, max_tries=10),
        report_tick,
        expire_reports,
    ]
    return PartnerHubWorker(
        functions=functions,
        cron_jobs=CRON_JOBS,
        queue_name=QUEUE_NAME,
        redis_settings=redis_settings(redis_url),
        ctx={"settings": settings, "queue": JobQueue(redis_url)},
        on_startup=None if in_process else _open_database,
        on_shutdown=_close_queue if in_process else _close_database,
        handle_signals=not in_process,
        burst=burst,
        max_tries=5,
        # Also (plus 10 s) how long ARQ waits before it runs again the job of a
        # worker that died; reports do not wait for it (their leases lapse first).
        job_timeout=settings.job_timeout_seconds,
        keep_result=3600,
        drain_seconds=settings.worker_drain_seconds,
    )
