"""Periodic jobs that catch up: the Sunday calling rollup, the daily trial
expiry and the daily report retention (PERIODIC_JOBS, each occurrence a job of
its own), the daily upkeep of call-leg partitions and retention (UPKEEP_JOBS:
quick, run within their tick; workers/crons.py), and the daily refresh of the
customers' kept end dates with the day's attention scan (CUSTOMER_DATE_JOBS:
quick, run within a tick of its own).

Each occurrence a job covers is recorded in `cron_run` (one row per job and
scheduled time). A worker claims an occurrence by INSERTing its row: the unique
(job, occurrence) constraint lets exactly one worker win, whatever the number of
workers, and the others take the IntegrityError as "someone else has it". After
an outage (no worker up, Redis or the database down) the occurrences that fell
in it are found missing, "after the last recorded one", and run once each, in
order, each with its own scheduled time.

Bounds:
- a fresh install (nothing recorded yet) runs only the latest occurrence at or
  before now: it does not replay history;
- catch-up reaches back at most CATCH_UP_LIMIT (8 weeks): older missed
  occurrences are logged and dropped (a dropped Sunday rollup can be rebuilt
  with `partnerhub rollup --week MONDAY`; trial expiry and retention need no
  replay, their latest run covers everything older);
- an occurrence whose worker died (claimed, never finished) may be claimed again
  once its claim is older than the job time limit plus a margin (the worker is
  surely gone: ARQ stops a job at its time limit); a try that failed may be
  claimed again at once. After MAX_ATTEMPTS tries it is recorded as failed with
  its error and the job moves on to its next occurrence.

Row states: running (finished_at and error empty), failed try waiting for the
next one (error set, finished_at empty), done (finished_at set, error empty),
failed for good (both set).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from tortoise.exceptions import IntegrityError

from app.models.system import CronRun
from app.outage import Outage, database_unreachable

log = logging.getLogger(__name__)

# Missed occurrences older than this before now are not run (logged instead).
CATCH_UP_LIMIT = timedelta(weeks=8)
# Tries of one occurrence before it is recorded as failed for good.
MAX_ATTEMPTS = 3
# Added to the job time limit before a claim that was never finished counts as
# its worker's death (ARQ itself re-runs a dead worker's job 10 s after the limit).
STALE_MARGIN = timedelta(seconds=60)
# How long a try that lost the database keeps trying to record that it failed
# (so the next tick retries it, instead of waiting for the claim to go stale).
RECORD_FAILURE_SECONDS = 120.0


@dataclass(frozen=True)
class PeriodicJob:
    """A job that occurs at `first` and then every `every` (UTC, so no DST)."""

    name: str
    first: datetime
    every: timedelta
    what: str

    def latest(self, moment: datetime) -> datetime:
        """The latest occurrence at or before `moment`."""
        return self.first + ((moment - self.first) // self.every) * self.every

    def between(self, after: datetime, until: datetime) -> list[datetime]:
        """The occurrences later than `after`, up to and including `until`, oldest first."""
        out: list[datetime] = []
        occurrence = self.latest(until)
        while occurrence > after:
            out.append(occurrence)
            occurrence -= self.every
        return out[::-1]


# In the order a tick runs them: the quick daily ones are not held up by a long rollup.
EXPIRE_TRIALS = PeriodicJob(
    "expire_trials", datetime(2000, 1, 1, 0, 5, tzinfo=UTC), timedelta(days=1), "daily 00:05 UTC"
)
EXPIRE_REPORTS = PeriodicJob(
    "expire_reports", datetime(2000, 1, 1, 0, 15, tzinfo=UTC), timedelta(days=1), "daily 00:15 UTC"
)
REFRESH_CALLING_WEEK = PeriodicJob(
    # 2000-01-02 was a Sunday.
    "refresh_calling_week",
    datetime(2000, 1, 2, 0, 0, tzinfo=UTC),
    timedelta(weeks=1),
    "Sundays 00:00 UTC",
)
PERIODIC_JOBS: tuple[PeriodicJob, ...] = (EXPIRE_TRIALS, EXPIRE_REPORTS, REFRESH_CALLING_WEEK)
# Upkeep that takes seconds: run within its own tick rather than as a job of its
# own, with the same claim per occurrence and the same catch-up.
MAINTAIN_CALL_LEG_PARTITIONS = PeriodicJob(
    "maintain_call_leg_partitions",
    datetime(2000, 1, 1, 0, 30, tzinfo=UTC),
    timedelta(days=1),
    "daily 00:30 UTC",
)
UPKEEP_JOBS: tuple[PeriodicJob, ...] = (MAINTAIN_CALL_LEG_PARTITIONS,)
# The customers' kept end dates the day has passed, recomputed just after
# midnight (app/domain/customer_columns.py), then the day's scan of every
# customer's attention state and the attention events' retention
# (app/domain/attention_states.py): quick (a second or two at 100,000
# customers), run within a tick of its own that looks every minute, so the
# first tick after midnight (or after an outage) runs it, with the same claim
# per occurrence and the same catch-up.
REFRESH_CUSTOMER_DATES = PeriodicJob(
    "refresh_customer_dates",
    datetime(2000, 1, 1, 0, 0, tzinfo=UTC),
    timedelta(days=1),
    "daily 00:00 UTC",
)
CUSTOMER_DATE_JOBS: tuple[PeriodicJob, ...] = (REFRESH_CUSTOMER_DATES,)
JOBS_BY_NAME = {job.name: job for job in (*PERIODIC_JOBS, *UPKEEP_JOBS, *CUSTOMER_DATE_JOBS)}

# Runs one occurrence (its scheduled time) and says in a few words what it did.
Runner = Callable[[datetime], Awaitable[str]]


def stale_after(job_timeout_seconds: float) -> timedelta:
    """How old an unfinished claim must be before its worker counts as dead."""
    return timedelta(seconds=job_timeout_seconds) + STALE_MARGIN


def when(moment: datetime) -> str:
    """An occurrence as logs and job ids show it, e.g. 2026-11-08T00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


async def _last_recorded(job: PeriodicJob) -> CronRun | None:
    return await CronRun.filter(job=job.name).order_by("-occurrence").first()


def _missed(job: PeriodicJob, last: CronRun | None, now: datetime) -> list[datetime]:
    if last is None:
        return [job.latest(now)]
    return job.between(last.occurrence, now)


async def due_occurrences(job: PeriodicJob, now: datetime) -> list[datetime]:
    """Every occurrence after the last recorded one up to `now`, oldest first,
    within the catch-up bound; with nothing recorded yet, only the latest one
    at or before `now`."""
    oldest = now - CATCH_UP_LIMIT
    return [o for o in _missed(job, await _last_recorded(job), now) if o > oldest]


@dataclass(frozen=True)
class Due:
    """The next occurrence of a job to run, which try of it that would be, and
    whether it is recorded already (a retry) or still to be claimed first."""

    job: PeriodicJob
    occurrence: datetime
    attempt: int
    recorded: bool = False


def _retryable(run: CronRun, now: datetime, stale: timedelta) -> bool:
    return run.finished_at is None and (run.error is not None or run.claimed_at <= now - stale)


async def next_due(job: PeriodicJob, now: datetime, stale: timedelta) -> Due | None:
    """What of `job` should run now: its last recorded occurrence again (a try
    failed, or its worker died), else the oldest due one; None while its last
    occurrence is running (one occurrence of a job at a time, in order) or when
    nothing is due. A dead worker's occurrence that had its last try is recorded
    here as failed, and the next occurrence becomes due."""
    last = await _last_recorded(job)
    if last is not None and last.finished_at is None:
        if not _retryable(last, now, stale):
            return None
        if last.attempts < MAX_ATTEMPTS:
            return Due(job, last.occurrence, last.attempts + 1, recorded=True)
        error = last.error or (
            f"its worker stopped without finishing (claimed {when(last.claimed_at)})"
        )
        gave_up = await CronRun.filter(id=last.id, attempts=last.attempts, finished_at=None).update(
            finished_at=now, error=f"gave up after {last.attempts} tries: {error}"[:2000]
        )
        if gave_up:
            log.error(
                "%s %s: gave up after %d tries (%s); going on with the next occurrence",
                job.name,
                when(last.occurrence),
                last.attempts,
                error,
            )
    due = await due_occurrences(job, now)
    return Due(job, due[0], 1) if due else None


@dataclass
class Claim:
    """An occurrence this caller holds; `attempts` is the try it is on (it also
    guards the updates: a claim taken over by another has more attempts)."""

    id: int
    job: PeriodicJob
    occurrence: datetime
    attempts: int


async def claim(due: Due, now: datetime) -> Claim | None:
    """Take `due` for this caller: INSERT its row (a first try) or, for a retry,
    compare-and-set the row's attempts. None when another caller won."""
    if not due.recorded:
        try:
            run = await CronRun.create(
                job=due.job.name, occurrence=due.occurrence, claimed_at=now, attempts=1
            )
        except IntegrityError:
            return None
        await _log_dropped(due.job, due.occurrence, now)
        return Claim(run.id, due.job, due.occurrence, 1)
    taken = await CronRun.filter(
        job=due.job.name,
        occurrence=due.occurrence,
        attempts=due.attempt - 1,
        finished_at=None,
    ).update(attempts=due.attempt, claimed_at=now, error=None)
    if not taken:
        return None
    run = await CronRun.get(job=due.job.name, occurrence=due.occurrence)
    return Claim(run.id, due.job, due.occurrence, due.attempt)


async def _log_dropped(job: PeriodicJob, occurrence: datetime, now: datetime) -> None:
    """Say which occurrences before `occurrence` fell out of the catch-up bound
    (logged once: by the caller that won the first occurrence after them)."""
    before = (
        await CronRun.filter(job=job.name, occurrence__lt=occurrence)
        .order_by("-occurrence")
        .first()
    )
    if before is None:
        return
    dropped = job.between(before.occurrence, occurrence - job.every)
    if not dropped:
        return
    hint = (
        "; rebuild those weeks with `partnerhub rollup --week MONDAY` if needed"
        if job is REFRESH_CALLING_WEEK
        else "; the run of " + when(occurrence) + " covers them"
    )
    log.warning(
        "%s: %d missed occurrence(s) from %s to %s are older than the %d-week catch-up "
        "bound and are not run%s",
        job.name,
        len(dropped),
        when(dropped[0]),
        when(dropped[-1]),
        CATCH_UP_LIMIT // timedelta(weeks=1),
        hint,
    )


async def finish(claim: Claim, now: datetime) -> bool:
    """Record the claimed occurrence as done (False if another took it over)."""
    return bool(
        await CronRun.filter(id=claim.id, attempts=claim.attempts, finished_at=None).update(
            finished_at=now, error=None
        )
    )


async def record_failure(claim: Claim, now: datetime, error: str) -> bool:
    """Record a failed try: the next tick tries again, unless it was the last
    try (then the occurrence is failed for good and the job goes on)."""
    final = claim.attempts >= MAX_ATTEMPTS
    return bool(
        await CronRun.filter(id=claim.id, attempts=claim.attempts, finished_at=None).update(
            error=error[:2000], finished_at=now if final else None
        )
    )


async def give_back(claim: Claim) -> bool:
    """Hand the occurrence back without counting the try (a worker stopping):
    the next tick runs it again."""
    return bool(
        await CronRun.filter(id=claim.id, attempts=claim.attempts, finished_at=None).update(
            attempts=claim.attempts - 1, error="given back by a worker that was stopping"
        )
    )


Outcome = Literal["done", "failed", "gave up", "given back"]


@dataclass(frozen=True)
class Ran:
    """One occurrence this caller ran (or tried to)."""

    job: str
    occurrence: datetime
    attempt: int
    outcome: Outcome
    detail: str


async def run_claimed(
    claim: Claim,
    run: Runner,
    now: datetime,
    *,
    draining: Callable[[], bool] = lambda: False,
    time_limit_seconds: float | None = None,
) -> Ran:
    """Run a claimed occurrence and record how it ended. `now` is the claim's
    time; the finish is recorded that much later as the run took. A run cut by
    a stopping worker (`draining`) is given back uncounted; one cut by the time
    limit, or that failed, is recorded as a failed try."""
    started = time.monotonic()

    def later() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    label = f"{claim.job.name} {when(claim.occurrence)}"
    try:
        detail = await run(claim.occurrence)
    except asyncio.CancelledError:
        if draining():
            await asyncio.shield(_settle(give_back(claim), label))
            log.info("%s: given back (worker stopping); the next tick runs it", label)
            raise
        limit = f"{time_limit_seconds:.0f} s" if time_limit_seconds else "its time limit"
        error = f"stopped after {limit} (the job time limit)"
        await asyncio.shield(_settle(record_failure(claim, later(), error), label))
        log.error("%s: %s (try %d of %d)", label, error, claim.attempts, MAX_ATTEMPTS)
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if database_unreachable(exc):
            await _settle_through_outage(claim, error, label, later)
        else:
            log.exception("%s: try %d of %d failed", label, claim.attempts, MAX_ATTEMPTS)
            await _settle(record_failure(claim, later(), error), label)
        final = claim.attempts >= MAX_ATTEMPTS
        return Ran(
            claim.job.name,
            claim.occurrence,
            claim.attempts,
            "gave up" if final else "failed",
            error,
        )
    await finish(claim, later())
    return Ran(claim.job.name, claim.occurrence, claim.attempts, "done", detail)


async def _settle(step: Awaitable[bool], label: str) -> None:
    try:
        await step
    except Exception:
        log.exception("%s: could not record how the try ended (its claim goes stale)", label)


async def _settle_through_outage(
    claim: Claim, error: str, label: str, later: Callable[[], datetime]
) -> None:
    """The try lost the database: record it as failed once the database answers
    again (within RECORD_FAILURE_SECONDS), so the next tick retries it."""
    outage = Outage(f"Database (recording {label})", log)
    deadline = time.monotonic() + RECORD_FAILURE_SECONDS
    while True:
        try:
            await record_failure(claim, later(), error)
        except Exception as exc:
            if not database_unreachable(exc) or time.monotonic() > deadline:
                log.error("%s: could not record its failed try (its claim goes stale)", label)
                return
            await outage.wait_after(exc)
        else:
            outage.recovered()
            log.warning("%s: try %d lost the database: %s", label, claim.attempts, error)
            return


async def run_due(
    due: Due,
    run: Runner,
    now: datetime,
    *,
    draining: Callable[[], bool] = lambda: False,
    time_limit_seconds: float | None = None,
) -> Ran | None:
    """Claim `due` and run it; None when another caller has it."""
    held = await claim(due, now)
    if held is None:
        return None
    return await run_claimed(
        held, run, now, draining=draining, time_limit_seconds=time_limit_seconds
    )


async def catch_up(
    job: PeriodicJob,
    run: Runner,
    now: datetime,
    stale: timedelta,
    *,
    draining: Callable[[], bool] = lambda: False,
) -> list[Ran]:
    """Run every due occurrence of `job` here, oldest first, each once: stops at
    an occurrence another caller holds, and after a failed try (the next call
    retries it)."""
    done: list[Ran] = []
    started = time.monotonic()
    while not draining():
        moment = now + timedelta(seconds=time.monotonic() - started)
        due = await next_due(job, moment, stale)
        if due is None:
            break
        ran = await run_due(due, run, moment, draining=draining)
        if ran is None:
            break
        done.append(ran)
        if ran.outcome == "failed":
            break
    return done
