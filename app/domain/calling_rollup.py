"""Weekly calling rollups: raw call legs -> per-customer weekly figures.

A week runs Monday 00:00 to Sunday 24:00 UTC. The refresh runs every Sunday
at 00:00 UTC and rolls up the most recent week completed by then (the one
that ended the Sunday before). Rolling up a week deletes that week's rollup
rows and rebuilds them with one INSERT ... SELECT ... GROUP BY per table, in
one transaction: running it twice gives the same rows, and any past week can
be rebuilt. Two rollups of one week at once (the Sunday job and `partnerhub
rollup`, or two of either) serialize: the second waits for the first to commit,
then rebuilds the same rows (PostgreSQL: an advisory lock on the week, taken in
the transaction; SQLite: the database's write lock, waited for as long).

Quality: a leg carries metrics unless it comes from an analog phone, a
third-party device or an IPv6 endpoint; a measured leg is poor when jitter >
150 ms, latency > 400 ms or packet loss > 5 %. Unmeasured legs count in usage
and in no quality figure.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.db import DatabaseError, execute, is_postgres, unbounded_statements

POOR_JITTER_MS, POOR_LATENCY_MS, POOR_LOSS_PCT = 150, 400, 5
MEASURED = (
    "endpoint_type NOT IN ('ANALOG', 'THIRD_PARTY') AND ip_version = 4"
    " AND jitter_ms IS NOT NULL AND latency_ms IS NOT NULL AND packet_loss_pct IS NOT NULL"
)
POOR = (
    f"({MEASURED}) AND (jitter_ms > {POOR_JITTER_MS} OR latency_ms > {POOR_LATENCY_MS}"
    f" OR packet_loss_pct > {POOR_LOSS_PCT})"
)
# Calls per user in the week: LOW 1-5, MEDIUM 6-20, HIGH more.
LOW_MAX, MEDIUM_MAX = 5, 20
ROLLUP_TABLES = (
    "calling_weekly_customer",
    "calling_weekly_endpoint",
    "calling_weekly_feature",
    "calling_weekly_queue",
)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def last_refresh(now: datetime) -> datetime:
    """The most recent Sunday 00:00 UTC at or before `now`."""
    today = now.astimezone(UTC).date()
    sunday = today - timedelta(days=(today.weekday() + 1) % 7)
    return datetime.combine(sunday, time.min, UTC)


def refreshed_week(now: datetime) -> date:
    """Monday of the week the latest Sunday refresh rolled up: the most recent
    week completed by that Sunday 00:00 (it ended the Sunday before)."""
    return monday_of(last_refresh(now).date()) - timedelta(weeks=1)


def _week_bounds(week_start: date) -> tuple[datetime, datetime]:
    start = datetime.combine(week_start, time.min, UTC)
    return start, start + timedelta(weeks=1)


LEGS = "legs AS (SELECT * FROM call_leg WHERE started_at >= ? AND started_at < ?)"

CUSTOMER_SQL = f"""
WITH {LEGS},
per_user AS (
  SELECT customer_id, user_uuid, COUNT(DISTINCT call_id) AS calls
  FROM legs WHERE user_uuid IS NOT NULL GROUP BY customer_id, user_uuid
),
buckets AS (
  SELECT customer_id,
         SUM(CASE WHEN calls <= {LOW_MAX} THEN 1 ELSE 0 END) AS users_low,
         SUM(CASE WHEN calls > {LOW_MAX} AND calls <= {MEDIUM_MAX} THEN 1 ELSE 0 END)
           AS users_medium,
         SUM(CASE WHEN calls > {MEDIUM_MAX} THEN 1 ELSE 0 END) AS users_high
  FROM per_user GROUP BY customer_id
)
INSERT INTO calling_weekly_customer (customer_id, week_start, total_calls, total_legs,
  call_minutes, video_minutes, active_users, users_low, users_medium, users_high,
  quality_legs, poor_legs)
SELECT legs.customer_id, ?, COUNT(DISTINCT legs.call_id), COUNT(*),
       (SUM(legs.duration_seconds) + 30) / 60, (SUM(legs.video_seconds) + 30) / 60,
       COUNT(DISTINCT legs.user_uuid),
       COALESCE(MAX(b.users_low), 0), COALESCE(MAX(b.users_medium), 0),
       COALESCE(MAX(b.users_high), 0),
       SUM(CASE WHEN {MEASURED} THEN 1 ELSE 0 END), SUM(CASE WHEN {POOR} THEN 1 ELSE 0 END)
FROM legs LEFT JOIN buckets b ON b.customer_id = legs.customer_id
GROUP BY legs.customer_id
"""

ENDPOINT_SQL = f"""
WITH {LEGS}
INSERT INTO calling_weekly_endpoint
  (customer_id, week_start, endpoint_type, total_legs, poor_legs)
SELECT customer_id, ?, endpoint_type, COUNT(*), SUM(CASE WHEN {POOR} THEN 1 ELSE 0 END)
FROM legs WHERE {MEASURED}
GROUP BY customer_id, endpoint_type
"""

FEATURE_SQL = f"""
WITH {LEGS}
INSERT INTO calling_weekly_feature (customer_id, week_start, feature, calls)
SELECT customer_id, ?, feature, COUNT(DISTINCT call_id)
FROM legs WHERE feature <> 'NONE'
GROUP BY customer_id, feature
"""

QUEUE_SQL = f"""
WITH {LEGS},
queued AS (
  SELECT customer_id, call_id, MAX(queue_outcome) AS outcome, MAX(queue_wait_seconds) AS wait
  FROM legs WHERE feature = 'CALL_QUEUE' AND queue_outcome IS NOT NULL
  GROUP BY customer_id, call_id
)
INSERT INTO calling_weekly_queue (customer_id, week_start, total_calls, answered_calls,
  abandoned_calls, timed_out_calls, overflowed_calls, transferred_calls,
  answer_wait_seconds, abandon_wait_seconds)
SELECT customer_id, ?, COUNT(*),
       SUM(CASE WHEN outcome = 'ANSWERED' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'ABANDONED' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'TIMED_OUT' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'OVERFLOWED' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'TRANSFERRED' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'ANSWERED' THEN COALESCE(wait, 0) ELSE 0 END),
       SUM(CASE WHEN outcome = 'ABANDONED' THEN COALESCE(wait, 0) ELSE 0 END)
FROM queued GROUP BY customer_id
"""


# Advisory lock class of weekly rollups (the week's day number is the object).
ROLLUP_LOCK_CLASS = 0x43574B  # "CWK"
# How long a rollup waits for another rollup of the same week, by default: the
# job time limit's default (the other one is stopped by then).
ROLLUP_WAIT_SECONDS = 3600.0


class RollupBusy(DatabaseError):
    """Another rollup (or writer) held the week longer than this one would wait."""


@dataclass(frozen=True)
class Rollup:
    """A rebuilt week, and how long it first waited for another rollup of it."""

    week_start: date
    waited_seconds: float


async def _take_week(conn: BaseDBAsyncClient, week_start: date, wait_seconds: float) -> float:
    """Hold the week for the rest of the transaction; returns the seconds waited.

    PostgreSQL: a transaction-scoped advisory lock on the week, so a second
    rollup of it waits here and then sees the first one's rows (its DELETEs run
    after the first commit). SQLite has one writer at a time: a first write
    takes the database's write lock, waited for up to `wait_seconds` (SQLite's
    own default is 5 s, shorter than a large rollup)."""
    started = clock.monotonic()
    if is_postgres(conn):
        await conn.execute_query(f"SET LOCAL lock_timeout = {int(wait_seconds * 1000)}")
        try:
            await execute(
                "SELECT pg_advisory_xact_lock(?, ?)",
                [ROLLUP_LOCK_CLASS, week_start.toordinal()],
                conn,
            )
        except Exception as exc:  # asyncpg's LockNotAvailableError, not wrapped by Tortoise
            if getattr(exc, "sqlstate", None) != "55P03":
                raise
            raise RollupBusy(
                f"another rollup of the week of {week_start.isoformat()} has run for more "
                f"than {wait_seconds:.0f} s: try again later"
            ) from None
        await conn.execute_query("SET LOCAL lock_timeout TO DEFAULT")
    else:
        usual = (await conn.execute_query_dict("PRAGMA busy_timeout"))[0]["timeout"]
        await conn.execute_query(f"PRAGMA busy_timeout = {int(wait_seconds * 1000)}")
        try:
            await execute(
                "UPDATE calling_week SET refreshed_at = refreshed_at WHERE week_start = ?",
                [week_start],
                conn,
            )
        except OperationalError as exc:
            if "locked" not in str(exc).lower():
                raise
            raise RollupBusy(
                f"another process has written to the database for more than "
                f"{wait_seconds:.0f} s (a rollup of the week of {week_start.isoformat()}?): "
                "try again later"
            ) from None
        finally:
            await conn.execute_query(f"PRAGMA busy_timeout = {int(usual)}")
    return clock.monotonic() - started


async def rollup_week(
    week_start: date, now: datetime | None = None, wait_seconds: float = ROLLUP_WAIT_SECONDS
) -> Rollup:
    """Rebuild the rollups of the week starting on `week_start` (a Monday); waits
    up to `wait_seconds` for another rollup of the same week to finish first."""
    if week_start.weekday() != 0:
        raise ValueError(f"{week_start.isoformat()} is not a Monday: a week starts on Monday")
    start, end = _week_bounds(week_start)
    async with in_transaction() as conn:
        await unbounded_statements(conn)
        waited = await _take_week(conn, week_start, wait_seconds)
        for table in ROLLUP_TABLES:
            await execute(f"DELETE FROM {table} WHERE week_start = ?", [week_start], conn)
        for sql in (CUSTOMER_SQL, ENDPOINT_SQL, FEATURE_SQL, QUEUE_SQL):
            await execute(sql, [start, end, week_start], conn)
        await execute(
            "INSERT INTO calling_week (week_start, refreshed_at) VALUES (?, ?)"
            " ON CONFLICT (week_start) DO UPDATE SET refreshed_at = excluded.refreshed_at",
            [week_start, now or utcnow()],
            conn,
        )
    return Rollup(week_start, waited)
