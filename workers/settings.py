"""ARQ worker configuration, shared by `partnerhub worker` and the in-process
worker of the embedded default."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.worker import Worker

from app.config import get_settings
from app.db import close_database, open_database
from app.queue import QUEUE_NAME, redis_settings
from workers.calling import refresh_calling_week
from workers.trials import expire_trials

FUNCTIONS = [expire_trials, refresh_calling_week]
CRON_JOBS = [
    # `unique` keeps several workers from running one tick twice.
    cron(expire_trials, hour=0, minute=5, unique=True, run_at_startup=False),
    # Sundays at 00:00 UTC (arq counts weekdays from Monday = 0).
    cron(refresh_calling_week, weekday=6, hour=0, minute=0, unique=True, run_at_startup=False),
]


async def _open_database(ctx: dict[str, Any]) -> None:
    await open_database(get_settings())


async def _close_database(ctx: dict[str, Any]) -> None:
    await close_database()


def build_worker(redis_url: str, *, in_process: bool, burst: bool = False) -> Worker:
    """A worker on `redis_url`. In-process workers share the service's database
    connection and leave signals to uvicorn; standalone ones open their own."""
    return Worker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        queue_name=QUEUE_NAME,
        redis_settings=redis_settings(redis_url),
        on_startup=None if in_process else _open_database,
        on_shutdown=None if in_process else _close_database,
        handle_signals=not in_process,
        burst=burst,
        max_tries=5,
        job_timeout=3600,
        keep_result=3600,
    )
