"""Periodic jobs that catch up (app/domain/cron_runs.py): one ARQ cron tick a
minute queues the next due occurrence of each periodic job, and each
occurrence runs as a job of its own.

Why a job per occurrence rather than running them in the tick: a rollup of
millions of call legs takes minutes, and after an outage several may be due;
as jobs of their own each gets the whole job time limit (`job_timeout_seconds`)
instead of sharing the tick's, and a worker that dies costs one occurrence,
not a whole catch-up. The job id is deterministic (`periodic:JOB:OCCURRENCE:TRY`),
so the ticks of several workers, and a tick racing the chain below, queue one
job per try; its result is not kept, so the id is free again once it ends.

One occurrence of a job runs at a time, in order: the tick queues only a job's
next due occurrence, and when it ends its job queues the one after (so a
catch-up of eight Sundays does not wait eight minutes). Whatever ARQ does, the
claim in the database (`cron_run`) is what keeps an occurrence single.

Upkeep jobs (UPKEEP_JOBS: the daily call-leg partitions and retention) take
seconds: `upkeep_tick`, daily at their time, runs each due occurrence within
the tick, with the same claim per occurrence and the same catch-up (a day that
no worker was up for runs at the next day's tick: the partitions are made four
weeks ahead, and DEFAULT takes the legs of a week that has none).

The daily refresh of the customers' kept end dates (CUSTOMER_DATE_JOBS), with
the day's scan of the customers' attention states and the attention events'
retention (app/domain/attention_states.py), takes a second or two at 100,000
customers: `customer_dates_tick`, every minute, runs its due occurrence within
the tick, so it runs at the first tick after 00:00 UTC, or after an outage at
the first tick a worker is up for.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from app.clock import utcnow
from app.config import Settings
from app.domain import cron_runs
from app.domain.attention_states import (
    AttentionRules,
    delete_old_events,
    evaluated_instant,
    scan_all,
)
from app.domain.call_leg_partitions import maintain
from app.domain.calling_rollup import refreshed_week, rollup_week
from app.domain.cron_runs import (
    CUSTOMER_DATE_JOBS,
    EXPIRE_REPORTS,
    EXPIRE_TRIALS,
    MAINTAIN_CALL_LEG_PARTITIONS,
    PERIODIC_JOBS,
    REFRESH_CALLING_WEEK,
    REFRESH_CUSTOMER_DATES,
    UPKEEP_JOBS,
    Due,
    PeriodicJob,
    Ran,
    Runner,
    when,
)
from app.domain.customer_columns import refresh_passed_dates
from app.domain.trials import expire_due_trials
from app.queue import JobQueue, QueueError
from workers.reports import expire_reports
from workers.runtime import draining, rides_out_database_outages

log = logging.getLogger(__name__)

RUN_JOB = "run_periodic"


def _settings(ctx: dict[str, Any]) -> Settings:
    return ctx["settings"]


def runner(ctx: dict[str, Any], job: PeriodicJob) -> Runner:
    """What one occurrence of `job` does, with the occurrence's own time: the
    rollup of the week that Sunday completed, trial expiry as of that day
    (trials end at that day's run), retention as of that moment, call-leg
    partitions ahead of and retention as of that moment, the customers' kept
    end dates as of that day and their attention states as of that moment (or
    of now, when caught up late: app/domain/attention_states.py), the calling
    week's rollup with its call quality declines."""
    settings = _settings(ctx)

    async def refresh_week(occurrence: datetime) -> str:
        week = refreshed_week(occurrence)
        # With the week's call quality declines, in the rollup's transaction.
        done = await rollup_week(
            week,
            wait_seconds=settings.job_timeout_seconds,
            rise_points=settings.attention_quality_rise_points,
        )
        waited = f" (waited {done.waited_seconds:.0f} s for another rollup)"
        declining = done.declines
        return (
            f"rolled up the calling week of {week.isoformat()}"
            + (waited if done.waited_seconds >= 1 else "")
            + (f"; announced {declining} call quality decline(s)" if declining else "")
        )

    async def expire_trials(occurrence: datetime) -> str:
        day = occurrence.date()
        expired = await expire_due_trials(day, now=occurrence)
        return f"expired {expired} trial(s) that ended before {day.isoformat()}"

    async def retention(occurrence: datetime) -> str:
        expired = await expire_reports(ctx, occurrence.isoformat())
        return f"expired {expired} report(s) past retention"

    async def call_leg_partitions(occurrence: datetime) -> str:
        done = await maintain(occurrence, settings.call_leg_retention_weeks)
        return done.summary()

    async def customer_dates(occurrence: datetime) -> str:
        day = occurrence.date()
        count = await refresh_passed_dates(day)
        # What the day changed of the customers' attention states (windows
        # reached, activity aging, low assignment), then the events' retention.
        scanned = await scan_all(occurrence, AttentionRules.of(settings))
        removed = await delete_old_events(
            evaluated_instant(occurrence), settings.attention_retention_days
        )
        return (
            f"recomputed {count} customer(s) whose kept end dates were before {day.isoformat()};"
            f" {scanned.summary()}; deleted {removed} attention event(s) past retention"
        )

    runners = {
        REFRESH_CALLING_WEEK.name: refresh_week,
        EXPIRE_TRIALS.name: expire_trials,
        EXPIRE_REPORTS.name: retention,
        MAINTAIN_CALL_LEG_PARTITIONS.name: call_leg_partitions,
        REFRESH_CUSTOMER_DATES.name: customer_dates,
    }
    return runners[job.name]


def _stale(ctx: dict[str, Any]) -> timedelta:
    return cron_runs.stale_after(_settings(ctx).job_timeout_seconds)


def run_job_id(due: Due) -> str:
    return f"periodic:{due.job.name}:{when(due.occurrence)}:{due.attempt}"


async def _queue(ctx: dict[str, Any], due: Due) -> bool:
    queue: JobQueue = ctx["queue"]
    try:
        await queue.enqueue(
            RUN_JOB, due.job.name, due.occurrence.isoformat(), job_id=run_job_id(due)
        )
    except QueueError as exc:  # the next tick queues it
        log.warning("%s %s not queued: %s", due.job.name, when(due.occurrence), exc)
        return False
    return True


@rides_out_database_outages
async def periodic_tick(ctx: dict[str, Any], now: str | None = None) -> int:
    """Every minute: queue the next due occurrence of each periodic job (a
    missed one after an outage, the latest one on a fresh install, one whose
    try failed or whose worker died). Returns how many were queued."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    queued = 0
    for job in PERIODIC_JOBS:
        due = await cron_runs.next_due(job, moment, _stale(ctx))
        if due is not None and await _queue(ctx, due):
            queued += 1
    return queued


def _log(ran: Ran, now: datetime) -> None:
    late = now - ran.occurrence
    caught_up = f", caught up {late.days} day(s) late" if late.days >= 1 else ""
    try_note = f" (try {ran.attempt})" if ran.attempt > 1 else ""
    if ran.outcome == "done":
        log.info("%s %s%s: %s%s", ran.job, when(ran.occurrence), try_note, ran.detail, caught_up)
    else:
        log.error(
            "%s %s%s: %s: %s", ran.job, when(ran.occurrence), try_note, ran.outcome, ran.detail
        )


@rides_out_database_outages
async def run_periodic(ctx: dict[str, Any], job_name: str, occurrence: str) -> str:
    """Run one occurrence of a periodic job if it is still the job's next due
    one and this worker wins its claim; then queue the job's next due occurrence."""
    job = cron_runs.JOBS_BY_NAME[job_name]
    moment = datetime.fromisoformat(occurrence)
    now = utcnow()
    due = await cron_runs.next_due(job, now, _stale(ctx))
    if due is None or due.occurrence != moment:
        return "not due"
    ran = await cron_runs.run_due(
        due,
        runner(ctx, job),
        now,
        draining=lambda: draining(ctx),
        time_limit_seconds=_settings(ctx).job_timeout_seconds,
    )
    if ran is None:
        return "taken"
    _log(ran, now)
    if ran.outcome != "failed" and not draining(ctx):
        following = await cron_runs.next_due(job, utcnow(), _stale(ctx))
        if following is not None:
            await _queue(ctx, following)
    return ran.outcome


async def catch_up(
    ctx: dict[str, Any], now: datetime | None = None, jobs: tuple[PeriodicJob, ...] = PERIODIC_JOBS
) -> list[Ran]:
    """Run here, in order, every due occurrence of each of `jobs` (each claimed
    once in `cron_run`, whatever the number of workers): what the ticks and
    their jobs do, in one call, for the periodic jobs in tests and one-off use;
    the upkeep jobs always run this way. `now` defaults to the clock."""
    moment = now or utcnow()
    done: list[Ran] = []
    for job in jobs:
        ran = await cron_runs.catch_up(
            job, runner(ctx, job), moment, _stale(ctx), draining=lambda: draining(ctx)
        )
        for one in ran:
            _log(one, moment)
        done += ran
    return done


async def run_upkeep(ctx: dict[str, Any], now: datetime | None = None) -> list[Ran]:
    """Every due occurrence of each upkeep job, run here; `now` defaults to the clock."""
    return await catch_up(ctx, now, UPKEEP_JOBS)


@rides_out_database_outages
async def upkeep_tick(ctx: dict[str, Any], now: str | None = None) -> int:
    """Daily at 00:30:30 UTC: run the due occurrences of the upkeep jobs (the
    day's, and days missed in an outage; the latest one only on a fresh install;
    one whose try failed). Returns how many ran."""
    return len(await run_upkeep(ctx, datetime.fromisoformat(now) if now else None))


async def run_customer_dates(ctx: dict[str, Any], now: datetime | None = None) -> list[Ran]:
    """Every due occurrence of the daily refresh of the customers' kept end dates,
    run here (each claimed once); `now` defaults to the clock."""
    return await catch_up(ctx, now, CUSTOMER_DATE_JOBS)


@rides_out_database_outages
async def customer_dates_tick(ctx: dict[str, Any], now: str | None = None) -> int:
    """Every minute: run the daily refresh of the customers' kept end dates once
    its occurrence (00:00 UTC) is due: the day's, days missed in an outage, the
    latest one only on a fresh install. Returns how many ran."""
    return len(await run_customer_dates(ctx, datetime.fromisoformat(now) if now else None))
