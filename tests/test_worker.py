"""ARQ jobs on a real Valkey server: trial expiry, run by a worker with a chosen
"today", on both databases."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

from arq.connections import create_pool
from tortoise import connections

from app.config import Settings
from app.db import tortoise_url
from app.models.enums import SubscriptionStatus, TrialStatus
from app.models.subscriptions import Subscription
from app.models.trials import Trial
from app.queue import QUEUE_NAME, redis_settings
from tests import factories
from workers.settings import build_worker

TODAY = date(2026, 11, 21)


async def test_trial_expiry_job_expires_trials_that_ended_before_today(
    db: Settings, redis_url: str
) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    customer = await factories.customer(northwind)
    other = await factories.customer(northwind)
    third = await factories.customer(northwind)
    ended_yesterday = await factories.trial(
        customer, TODAY - timedelta(days=30), TODAY - timedelta(days=1)
    )
    ends_today = await factories.trial(other, TODAY - timedelta(days=30), TODAY)
    cancelled = await factories.trial(third, TODAY - timedelta(days=60), TODAY - timedelta(days=5))
    await Trial.filter(id=cancelled.id).update(status=TrialStatus.CANCELLED)

    queue = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:
        await queue.delete(QUEUE_NAME)  # nothing left over from another test
        job = await queue.enqueue_job("expire_trials", TODAY.isoformat())
        assert job is not None
        worker = build_worker(redis_url, in_process=True, burst=True)
        await worker.async_run()
        await worker.close()
        assert await job.result(timeout=5) == 1
    finally:
        await queue.aclose()

    assert (await Trial.get(id=ended_yesterday.id)).status == TrialStatus.EXPIRED
    assert (await Trial.get(id=ended_yesterday.id)).ended_at is not None
    assert (
        await Subscription.get(trial_id=ended_yesterday.id)
    ).status == SubscriptionStatus.EXPIRED
    # The end date itself is still part of the trial (SPEC.md: end date today or later).
    assert (await Trial.get(id=ends_today.id)).status == TrialStatus.ACTIVE
    assert (await Subscription.get(trial_id=ends_today.id)).status == SubscriptionStatus.ACTIVE
    # A trial that ended otherwise keeps its status.
    assert (await Trial.get(id=cancelled.id)).status == TrialStatus.CANCELLED


async def test_running_the_expiry_twice_changes_nothing_more(db: Settings) -> None:
    from workers.trials import expire_trials

    northwind = await factories.partner("Northwind Partners", "northwind.example")
    customer = await factories.customer(northwind)
    await factories.trial(customer, TODAY - timedelta(days=10), TODAY - timedelta(days=2))
    assert await expire_trials({}, TODAY.isoformat()) == 1
    assert await expire_trials({}, TODAY.isoformat()) == 0


async def test_a_worker_runs_its_max_jobs_with_two_connections_a_job_in_its_pool(
    postgres_db: Settings, redis_url: str
) -> None:
    """PARTNERHUB_WORKER_MAX_JOBS bounds the jobs a worker runs at once, and its
    PostgreSQL pool can hold a report's reads and its lease renewals for each
    (plus the ticks), so renewals never queue behind reads."""
    settings = postgres_db.model_copy(update={"worker_max_jobs": 3})
    worker = build_worker(redis_url, in_process=False, burst=True, settings=settings)
    assert worker.max_jobs == 3
    await worker.on_startup(worker.ctx)  # opens the database as `partnerhub worker` does
    try:
        pool = connections.get("default")._pool
        assert pool is not None and pool.get_max_size() == 2 * 3 + 2
        held = [await asyncio.wait_for(pool.acquire(), 5) for _ in range(2 * 3 + 2)]
        for conn in held:
            await pool.release(conn)
    finally:
        await worker.ctx["queue"].close()


def test_a_pool_size_in_database_url_wins_over_the_workers_own() -> None:
    given = tortoise_url("postgres://app:pw@db.internal:5432/partnerhub?maxsize=3", 10)
    query = parse_qs(urlsplit(given).query)
    assert query == {"maxsize": ["3"], "minsize": ["0"], "timeout": ["5"]}
    sized = parse_qs(urlsplit(tortoise_url("postgresql://db.internal/partnerhub", 10)).query)
    assert sized == {"maxsize": ["10"], "minsize": ["0"], "timeout": ["5"]}
    assert "maxsize" not in tortoise_url("postgres://db.internal/partnerhub")


def test_a_burst_worker_runs_the_queue_and_none_of_the_clocks_ticks(redis_url: str) -> None:
    """`partnerhub worker --burst` (and every test that drains the queue) runs what
    is queued and exits; a tick that fired because its run crossed a minute would
    run today's trial expiry or schedules on the wall clock, not the chosen day."""
    standing = build_worker(redis_url, in_process=True)
    burst = build_worker(redis_url, in_process=True, burst=True)
    ticks = {"periodic_tick", "upkeep_tick", "customer_dates_tick", "report_tick"}
    assert {job.name.rsplit(":", 1)[-1] for job in standing.cron_jobs} >= ticks
    assert burst.cron_jobs == []
    assert "expire_trials" in burst.functions and "periodic_tick" in burst.functions
