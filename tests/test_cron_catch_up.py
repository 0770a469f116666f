"""Periodic jobs that catch up after an outage (app/domain/cron_runs.py,
workers/crons.py), and weekly rollups of one week that serialize, on both
databases: every occurrence is recorded, a missed one runs once after the
outage with its own time, never twice whatever the number of workers, and a
dead worker's occurrence runs again after the job time limit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from arq.connections import create_pool

from app.clock import utcnow
from app.config import Settings
from app.db import as_date, fetch_all
from app.domain.calling_rollup import ROLLUP_LOCK_CLASS, refreshed_week
from app.domain.cron_runs import (
    EXPIRE_REPORTS,
    EXPIRE_TRIALS,
    MAX_ATTEMPTS,
    REFRESH_CALLING_WEEK,
    PeriodicJob,
    stale_after,
)
from app.domain.cron_runs import catch_up as catch_up_job
from app.models.calling import CallLeg
from app.models.customers import Customer
from app.models.enums import (
    CallType,
    EndpointType,
    ReportStatus,
    SubscriptionStatus,
    TrialStatus,
)
from app.models.reports import Report, ReportTemplate
from app.models.subscriptions import Subscription
from app.models.system import CronRun
from app.models.trials import Trial
from app.queue import QUEUE_NAME, JobQueue, redis_settings
from tests import factories
from tests.cli_process import PARTNERHUB, ROOT, cli_env
from tests.report_helpers import flush_queue
from workers.crons import catch_up
from workers.settings import build_worker

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday
SUNDAY = datetime(2026, 11, 15, 0, 0, tzinfo=UTC)  # the latest Sunday refresh before NOW
TRIALS_TODAY = datetime(2026, 11, 18, 0, 5, tzinfo=UTC)
RETENTION_TODAY = datetime(2026, 11, 18, 0, 15, tzinfo=UTC)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)


# ------------------------------------------------------------------ helpers


@pytest.fixture
async def ctx(db: Settings, redis_url: str) -> AsyncIterator[dict[str, Any]]:
    """What a worker hands its jobs: settings and the queue."""
    queue = JobQueue(redis_url)
    try:
        yield {"settings": db, "queue": queue}
    finally:
        await queue.close()


async def acme() -> Customer:
    org = await factories.partner("Northwind Partners", "northwind.example")
    return await factories.customer(org, "Acme")


async def seed_week(customer: Customer, week: date, calls: int) -> None:
    """`calls` one-leg calls of two minutes each, on the Tuesday of `week`."""
    for n in range(calls):
        await CallLeg.create(
            customer=customer,
            leg_id=f"{week.isoformat()}-{n}",
            call_id=f"{week.isoformat()}-{n}",
            user_uuid=uuid.uuid4(),
            started_at=datetime.combine(week, datetime.min.time(), UTC)
            + DAY
            + n * timedelta(minutes=5),
            duration_seconds=120,
            endpoint_type=EndpointType.APP,
            call_type=CallType.NATIONAL,
            jitter_ms=10,
            latency_ms=100,
            packet_loss_pct=1,
        )


async def rolled_up() -> dict[date, tuple[int, int, int]]:
    """Week -> (calls, legs, minutes) of the weekly customer rollup."""
    rows = await fetch_all(
        "SELECT week_start, total_calls, total_legs, call_minutes FROM calling_weekly_customer"
    )
    return {
        as_date(r["week_start"]): (r["total_calls"], r["total_legs"], r["call_minutes"])
        for r in rows
    }


async def weeks_refreshed() -> dict[date, Any]:
    rows = await fetch_all("SELECT week_start, refreshed_at FROM calling_week")
    return {as_date(r["week_start"]): r["refreshed_at"] for r in rows}


def expected(calls_by_week: dict[date, int]) -> dict[date, tuple[int, int, int]]:
    return {week: (calls, calls, calls * 2) for week, calls in calls_by_week.items()}


async def record(
    job: PeriodicJob,
    occurrence: datetime,
    *,
    finished: bool = True,
    claimed_at: datetime | None = None,
    attempts: int = 1,
) -> CronRun:
    """An occurrence as a worker left it: done, or claimed and never finished."""
    claimed = claimed_at or occurrence + timedelta(seconds=1)
    return await CronRun.create(
        job=job.name,
        occurrence=occurrence,
        claimed_at=claimed,
        finished_at=claimed + timedelta(seconds=1) if finished else None,
        attempts=attempts,
    )


async def daily_jobs_done(now: datetime) -> None:
    """Trial expiry and retention already ran today: only the rollup is due."""
    for job in (EXPIRE_TRIALS, EXPIRE_REPORTS):
        await record(job, job.latest(now))


async def runs(job: PeriodicJob) -> list[tuple[datetime, int, bool, str | None]]:
    """(occurrence, attempts, finished, error) of each recorded occurrence, oldest first."""
    return [
        (r.occurrence, r.attempts, r.finished_at is not None, r.error)
        for r in await CronRun.filter(job=job.name).order_by("occurrence")
    ]


def summary(ran: list) -> list[tuple[str, datetime, int, str]]:
    return [(r.job, r.occurrence, r.attempt, r.outcome) for r in ran]


async def poll(condition: Callable[[], Awaitable[bool]], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await condition():
        assert time.monotonic() < deadline, f"{what} not seen within {limit} s"
        await asyncio.sleep(0.05)


def start(args: list[str], env: dict[str, str], **pipes: Any) -> subprocess.Popen:
    """A real process of this project (its output piped unless told otherwise)."""
    pipes = pipes or {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(args, env=env, cwd=ROOT, **pipes)


def output(process: subprocess.Popen) -> tuple[str, str]:
    out, err = process.communicate(timeout=60)
    return out, err


# ------------------------------------------------------------ catching up


async def test_a_fresh_database_runs_only_the_latest_occurrence_of_each_job(
    db: Settings, ctx: dict[str, Any]
) -> None:
    customer = await acme()
    await seed_week(customer, date(2026, 10, 26), 3)  # history: not replayed
    await seed_week(customer, date(2026, 11, 2), 4)  # the week the Sunday of Nov 15 completed
    ended = await factories.trial(customer, date(2026, 10, 1), date(2026, 11, 10))
    ends_today = await factories.trial(
        await factories.customer(await factories.partner("Contoso", "contoso.example")),
        date(2026, 10, 1),
        date(2026, 11, 18),
    )
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    old = await Report.create(
        partner_id=customer.partner_id,
        template=template,
        status=ReportStatus.SUCCEEDED,
        finished_at=NOW - timedelta(days=40),
    )
    # Past 30 days at NOW, but not yet at today's 00:15 run: retention runs with
    # the occurrence's time, so tomorrow's run takes it.
    recent = await Report.create(
        partner_id=customer.partner_id,
        template=template,
        status=ReportStatus.SUCCEEDED,
        finished_at=NOW - timedelta(days=30, hours=1),
    )

    ran = await catch_up(ctx, NOW)

    assert summary(ran) == [
        ("expire_trials", TRIALS_TODAY, 1, "done"),
        ("expire_reports", RETENTION_TODAY, 1, "done"),
        ("refresh_calling_week", SUNDAY, 1, "done"),
    ]
    assert await rolled_up() == expected({date(2026, 11, 2): 4})
    expired = await Trial.get(id=ended.id)
    assert expired.status == TrialStatus.EXPIRED and expired.ended_at == TRIALS_TODAY
    assert (await Trial.get(id=ends_today.id)).status == TrialStatus.ACTIVE
    assert (await Report.get(id=old.id)).status == ReportStatus.EXPIRED
    assert (await Report.get(id=recent.id)).status == ReportStatus.SUCCEEDED
    for job, occurrence in (
        (EXPIRE_TRIALS, TRIALS_TODAY),
        (EXPIRE_REPORTS, RETENTION_TODAY),
        (REFRESH_CALLING_WEEK, SUNDAY),
    ):
        assert await runs(job) == [(occurrence, 1, True, None)]
    # A minute later (the next tick, on any worker) nothing is due.
    assert await catch_up(ctx, NOW + timedelta(minutes=1)) == []


async def test_after_an_outage_each_missed_sunday_rolls_up_its_week_once(
    db: Settings, ctx: dict[str, Any]
) -> None:
    customer = await acme()
    last = SUNDAY - 3 * WEEK  # the last Sunday a worker was up for
    await record(REFRESH_CALLING_WEEK, last)
    await daily_jobs_done(NOW)
    calls = {
        date(2026, 10, 12): 1,  # rolled up on `last` (before this database): left alone
        date(2026, 10, 19): 2,
        date(2026, 10, 26): 3,
        date(2026, 11, 2): 4,
        date(2026, 11, 9): 5,  # not complete at the last Sunday: not rolled up yet
    }
    for week, n in calls.items():
        await seed_week(customer, week, n)

    ran = await catch_up(ctx, NOW)

    missed = [last + WEEK, last + 2 * WEEK, last + 3 * WEEK]
    assert summary(ran) == [("refresh_calling_week", s, 1, "done") for s in missed]
    assert [r.detail for r in ran] == [
        f"rolled up the calling week of {refreshed_week(s).isoformat()}" for s in missed
    ]
    weeks = [date(2026, 10, 19), date(2026, 10, 26), date(2026, 11, 2)]
    assert await rolled_up() == expected({w: calls[w] for w in weeks})
    refreshed = await weeks_refreshed()
    assert sorted(refreshed) == weeks

    # A second worker catching up a minute later runs nothing again.
    assert await catch_up(ctx, NOW + timedelta(minutes=1)) == []
    assert await weeks_refreshed() == refreshed
    assert await runs(REFRESH_CALLING_WEEK) == [(last, 1, True, None)] + [
        (s, 1, True, None) for s in missed
    ]


async def test_catch_up_reaches_back_eight_weeks_and_logs_what_it_leaves_out(
    db: Settings, ctx: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    await record(REFRESH_CALLING_WEEK, SUNDAY - 12 * WEEK)
    await daily_jobs_done(NOW)

    ran = await catch_up(ctx, NOW)

    assert [r.occurrence for r in ran] == [SUNDAY - n * WEEK for n in range(7, -1, -1)]
    assert (
        "refresh_calling_week: 4 missed occurrence(s) from 2026-08-30T00:00Z to 2026-09-20T00:00Z"
        " are older than the 8-week catch-up bound and are not run; rebuild those weeks with"
        " `partnerhub rollup --week MONDAY` if needed"
    ) in caplog.text
    assert len(await weeks_refreshed()) == 8


async def test_missed_trial_expiry_days_expire_the_trials_of_each_day(
    db: Settings, ctx: dict[str, Any]
) -> None:
    customer = await acme()
    await record(EXPIRE_TRIALS, TRIALS_TODAY - 3 * DAY)  # Nov 15: the last run before the outage
    await record(EXPIRE_REPORTS, RETENTION_TODAY)
    await record(REFRESH_CALLING_WEEK, SUNDAY)
    org = await factories.partner("Contoso", "contoso.example")
    trials = {}
    for end in (date(2026, 11, 15), date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)):
        other = await factories.customer(org)
        trials[end] = await factories.trial(other, end - timedelta(days=30), end)
    cancelled = await factories.trial(
        customer, date(2026, 10, 1), date(2026, 11, 12), TrialStatus.CANCELLED
    )

    ran = await catch_up(ctx, NOW)

    days = [TRIALS_TODAY - 2 * DAY, TRIALS_TODAY - DAY, TRIALS_TODAY]
    assert summary(ran) == [("expire_trials", d, 1, "done") for d in days]
    assert [r.detail for r in ran] == [
        f"expired 1 trial(s) that ended before {d.date().isoformat()}" for d in days
    ]
    # Each trial ended at the run of the day after its end date, as if no outage.
    for end, day_run in zip(list(trials)[:3], days, strict=True):
        trial = await Trial.get(id=trials[end].id)
        assert (trial.status, trial.ended_at) == (TrialStatus.EXPIRED, day_run), end
        assert (await Subscription.get(trial_id=trial.id)).status == SubscriptionStatus.EXPIRED
    # The end date itself is still part of a trial.
    assert (await Trial.get(id=trials[date(2026, 11, 18)].id)).status == TrialStatus.ACTIVE
    assert (await Trial.get(id=cancelled.id)).status == TrialStatus.CANCELLED


async def test_an_occurrence_whose_worker_died_runs_again_after_the_time_limit(
    db: Settings, ctx: dict[str, Any]
) -> None:
    customer = await acme()
    await seed_week(customer, date(2026, 11, 2), 4)
    limit = stale_after(db.job_timeout_seconds)
    claimed = NOW - limit - timedelta(seconds=1)  # by workers that died since
    await record(REFRESH_CALLING_WEEK, SUNDAY - WEEK)
    await record(REFRESH_CALLING_WEEK, SUNDAY, finished=False, claimed_at=claimed)
    await record(EXPIRE_REPORTS, RETENTION_TODAY)
    # Trial expiry of Nov 17: its worker died on each of its three tries.
    await record(EXPIRE_TRIALS, TRIALS_TODAY - 2 * DAY)
    await record(
        EXPIRE_TRIALS, TRIALS_TODAY - DAY, finished=False, claimed_at=claimed, attempts=MAX_ATTEMPTS
    )

    # Within the limit their workers may still be running them: left alone.
    assert await catch_up(ctx, NOW - timedelta(seconds=2)) == []
    assert await rolled_up() == {}

    ran = await catch_up(ctx, NOW)
    assert summary(ran) == [
        ("expire_trials", TRIALS_TODAY, 1, "done"),
        ("refresh_calling_week", SUNDAY, 2, "done"),
    ]
    assert await rolled_up() == expected({date(2026, 11, 2): 4})
    assert (await runs(REFRESH_CALLING_WEEK))[-1] == (SUNDAY, 2, True, None)
    # The occurrence past its last try is recorded as failed, and expiry went on.
    (_, (gave_up, attempts, finished, error), _) = await runs(EXPIRE_TRIALS)
    assert (gave_up, attempts, finished) == (TRIALS_TODAY - DAY, MAX_ATTEMPTS, True)
    assert error is not None and error.startswith("gave up after 3 tries: its worker stopped")


async def test_a_failing_occurrence_is_tried_three_times_then_the_next_one_runs(
    db: Settings,
) -> None:
    await record(REFRESH_CALLING_WEEK, SUNDAY - 2 * WEEK)
    tried: list[datetime] = []

    async def disk_full_on_nov_8(occurrence: datetime) -> str:
        tried.append(occurrence)
        if occurrence == SUNDAY - WEEK:
            raise RuntimeError("disk full")
        return "ok"

    stale = stale_after(db.job_timeout_seconds)
    outcomes = []
    for minute in range(4):  # four ticks, a minute apart
        ran = await catch_up_job(
            REFRESH_CALLING_WEEK, disk_full_on_nov_8, NOW + timedelta(minutes=minute), stale
        )
        outcomes.append([(r.occurrence, r.attempt, r.outcome) for r in ran])

    assert outcomes == [
        [(SUNDAY - WEEK, 1, "failed")],
        [(SUNDAY - WEEK, 2, "failed")],
        [(SUNDAY - WEEK, 3, "gave up"), (SUNDAY, 1, "done")],
        [],
    ]
    assert tried == [SUNDAY - WEEK] * 3 + [SUNDAY]
    assert (await runs(REFRESH_CALLING_WEEK))[1:] == [
        (SUNDAY - WEEK, 3, True, "RuntimeError: disk full"),
        (SUNDAY, 1, True, None),
    ]


# --------------------------------------------------------- several workers

RACER = """
import asyncio, json, os, sys, time
from datetime import datetime

from app.config import get_settings
from app.db import close_database, open_database
from app.queue import JobQueue
from workers.crons import catch_up

async def main():
    settings = get_settings()
    await open_database(settings)
    ctx = {"settings": settings, "queue": JobQueue(settings.redis_url)}
    print("ready", flush=True)
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.0005)
    started = time.time()
    ran = await catch_up(ctx, datetime.fromisoformat(sys.argv[2]))
    ended = time.time()
    print(json.dumps({
        "started": started,
        "ended": ended,
        "ran": [[r.job, r.occurrence.isoformat(), r.outcome] for r in ran],
    }), flush=True)
    await ctx["queue"].close()
    await close_database()

asyncio.run(main())
"""


async def test_two_workers_catching_up_at_once_run_each_occurrence_once(
    db: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    customer = await acme()
    await record(REFRESH_CALLING_WEEK, SUNDAY - 3 * WEEK)
    await record(EXPIRE_TRIALS, TRIALS_TODAY - 5 * DAY)
    await record(EXPIRE_REPORTS, RETENTION_TODAY - 5 * DAY)
    weeks = {date(2026, 10, 19): 2, date(2026, 10, 26): 3, date(2026, 11, 2): 4}
    for week, n in weeks.items():
        await seed_week(customer, week, n)
    go = tmp_path / "go"
    env = cli_env(database_url, db.var_dir, redis_url)
    racers = [start([sys.executable, "-c", RACER, str(go), NOW.isoformat()], env) for _ in range(2)]
    try:
        for racer in racers:  # both connected, then both let go at the same instant
            assert racer.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(racer.stdout.readline), 60)
            assert line.strip() == "ready", racer.communicate(timeout=10)
        go.touch()
        results = []
        for racer in racers:
            out, err = output(racer)
            assert racer.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()

    # A real race: both were catching up at the same time.
    assert max(r["started"] for r in results) < min(r["ended"] for r in results)
    ran = [tuple(one) for r in results for one in r["ran"]]
    expected_runs = (
        [("expire_trials", (TRIALS_TODAY - n * DAY).isoformat(), "done") for n in range(4, -1, -1)]
        + [
            ("expire_reports", (RETENTION_TODAY - n * DAY).isoformat(), "done")
            for n in range(4, -1, -1)
        ]
        + [("refresh_calling_week", (SUNDAY - n * WEEK).isoformat(), "done") for n in (2, 1, 0)]
    )
    assert sorted(ran) == sorted(expected_runs)  # each once, between the two
    for job in (EXPIRE_TRIALS, EXPIRE_REPORTS, REFRESH_CALLING_WEEK):
        assert all(attempts == 1 and finished for _, attempts, finished, _ in await runs(job))
    assert await rolled_up() == expected(weeks)


async def test_the_workers_tick_queues_missed_occurrences_and_each_runs_once(
    db: Settings, redis_url: str
) -> None:
    await flush_queue(redis_url)
    now = utcnow()
    latest = REFRESH_CALLING_WEEK.latest(now)
    customer = await acme()
    await record(REFRESH_CALLING_WEEK, latest - 3 * WEEK)
    await daily_jobs_done(now)
    missed = [latest - 2 * WEEK, latest - WEEK, latest]
    calls = {refreshed_week(s): n for n, s in enumerate(missed, start=2)}
    for week, n in calls.items():
        await seed_week(customer, week, n)

    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:  # two workers' ticks at once
        assert await pool.enqueue_job("periodic_tick", _job_id="tick-a")
        assert await pool.enqueue_job("periodic_tick", _job_id="tick-b")
    finally:
        await pool.aclose()
    worker = build_worker(redis_url, in_process=True, burst=True, settings=db)
    try:
        await asyncio.wait_for(worker.async_run(), 60)
    finally:
        await worker.close()

    rollups = await runs(REFRESH_CALLING_WEEK)
    assert rollups == [(latest - 3 * WEEK, 1, True, None)] + [(s, 1, True, None) for s in missed]
    assert await rolled_up() == expected(calls)


async def test_a_worker_killed_mid_rollup_leaves_the_occurrence_to_the_next_after_the_limit(
    postgres_db: Settings, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    import asyncpg

    await flush_queue(redis_url)
    now = utcnow()
    latest = REFRESH_CALLING_WEEK.latest(now)
    week = refreshed_week(latest)
    customer = await acme()
    await seed_week(customer, week, 3)
    await record(REFRESH_CALLING_WEEK, latest - WEEK)
    await daily_jobs_done(now)
    # Another rollup of the week holds it: the worker's rollup waits mid-way.
    holder = await asyncpg.connect(postgres_url)
    key = (ROLLUP_LOCK_CLASS, week.toordinal())
    await holder.execute("SELECT pg_advisory_lock($1, $2)", *key)
    log = tmp_path / "worker.log"
    env = cli_env(postgres_url, postgres_db.var_dir, redis_url)
    with log.open("w") as out:
        worker = start([PARTNERHUB, "worker"], env, stdout=out, stderr=subprocess.STDOUT)
    try:
        pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
        try:
            await pool.enqueue_job("periodic_tick", _job_id="tick")
        finally:
            await pool.aclose()

        async def waiting_mid_rollup() -> bool:
            assert worker.poll() is None, log.read_text()
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = $1 AND objid = $2 AND NOT granted",
                *key,
            )
            return waiting == 1 and await CronRun.exists(
                job=REFRESH_CALLING_WEEK.name, occurrence=latest
            )

        await poll(waiting_mid_rollup, 60, "the worker's rollup waiting")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        await holder.close()

    claim = await CronRun.get(job=REFRESH_CALLING_WEEK.name, occurrence=latest)
    assert claim.finished_at is None and claim.attempts == 1
    assert week not in await weeks_refreshed()
    queue = JobQueue(redis_url)
    ctx = {"settings": postgres_db, "queue": queue}
    try:
        # Before the limit, another worker leaves it alone...
        assert [r for r in await catch_up(ctx) if r.job == REFRESH_CALLING_WEEK.name] == []
        # ... after it, runs it once more.
        later = claim.claimed_at + stale_after(postgres_db.job_timeout_seconds)
        ran = await catch_up(ctx, later + timedelta(seconds=1))
    finally:
        await queue.close()
    assert [
        (r.occurrence, r.attempt, r.outcome) for r in ran if r.job == REFRESH_CALLING_WEEK.name
    ] == [(latest, 2, "done")]
    assert (await runs(REFRESH_CALLING_WEEK))[-1] == (latest, 2, True, None)
    assert await rolled_up() == expected({week: 3})


# ----------------------------------------------------- rollups of one week


def _has_open(pid: int, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


async def test_two_rollups_of_one_week_at_once_both_finish_with_one_line(
    db: Settings, database_url: str, engine: str, redis_url: str, tmp_path: Path
) -> None:
    import asyncpg

    week = date(2026, 11, 2)
    customer = await acme()
    await seed_week(customer, week, 4)
    env = cli_env(database_url, db.var_dir)
    args = [PARTNERHUB, "rollup", "--week", week.isoformat()]
    # The first rollup of the week is held open here, so both commands meet it.
    if engine == "postgres":
        holder = await asyncpg.connect(database_url)
        key = (ROLLUP_LOCK_CLASS, week.toordinal())
        await holder.execute("SELECT pg_advisory_lock($1, $2)", *key)
    else:
        path = db.sqlite_path().resolve()
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
    commands = [start(args, env) for _ in range(2)]
    try:
        if engine == "postgres":

            async def both_waiting() -> bool:
                assert all(c.poll() is None for c in commands)
                return 2 == await holder.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND classid = $1 AND objid = $2 AND NOT granted",
                    *key,
                )

            await poll(both_waiting, 60, "both rollups waiting for the week")
            await holder.close()
        else:

            async def both_open() -> bool:
                assert all(c.poll() is None for c in commands)
                return all(_has_open(c.pid, path) for c in commands)

            await poll(both_open, 60, "both rollups opening the database")
            # Held past SQLite's own 5 s wait, as a large rollup would.
            await asyncio.sleep(6)
            assert all(c.poll() is None for c in commands)
            writer.execute("COMMIT")
            writer.close()
        results = [await asyncio.to_thread(output, c) for c in commands]
    finally:
        for c in commands:
            if c.poll() is None:
                c.kill()
    for command, (out, err) in zip(commands, results, strict=True):
        assert command.returncode == 0, err
        assert err == ""
        lines = out.splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"rolled up the calling week of {week.isoformat()}"
        ), out
        if engine == "sqlite":
            assert "after waiting" in lines[0], out
    assert await rolled_up() == expected({week: 4})
    assert list(await weeks_refreshed()) == [week]
