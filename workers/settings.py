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
    MAX_TRIES,
    deliver_webhook,
    expire_reports,
    generate_report,
    report_tick,
)
from workers.trials import expire_trials

CRON_JOBS = [
    # `unique` keeps several workers from running one tick twice.
    cron(expire_trials, hour=0, minute=5, unique=True, run_at_startup=False),
    # Sundays at 00:00 UTC (arq counts weekdays from Monday = 0).
    cron(refresh_calling_week, weekday=6, hour=0, minute=0, unique=True, run_at_startup=False),
    # Schedules: every minute at second 0 (arq's default when no minute is given);
    # the claim in the database keeps an occurrence single.
    cron(report_tick, unique=True, run_at_startup=False),
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
        func(generate_report, timeout=settings.job_timeout_seconds, max_tries=MAX_TRIES),
        func(deliver_webhook, max_tries=10),
        report_tick,
        expire_reports,
    ]
    return Worker(
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
        # Also how long a job whose worker died waits before another worker retries it.
        job_timeout=settings.job_timeout_seconds,
        keep_result=3600,
    )
