"""Weekly calling rollups: raw call legs -> per-customer weekly figures.

A week runs Monday 00:00 to Sunday 24:00 UTC. The refresh runs every Sunday
at 00:00 UTC and rolls up the most recent week completed by then (the one
that ended the Sunday before). Rolling up a week deletes that week's rollup
rows and rebuilds them in one transaction, from one read of the week's legs:
one statement stages a row of figures per customer in a temporary table
(`stage_sql`), then one INSERT ... SELECT per rollup table fills it from those
rows (`fill_sql`). Running it twice gives the same rows, and any past week can
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
from app.domain.attention_states import record_quality_declines
from app.models.enums import CallFeature, EndpointType, QueueOutcome

POOR_JITTER_MS, POOR_LATENCY_MS, POOR_LOSS_PCT = 150, 400, 5
UNMEASURED_ENDPOINTS = (EndpointType.ANALOG, EndpointType.THIRD_PARTY)
MEASURED_ENDPOINTS = tuple(e for e in EndpointType if e not in UNMEASURED_ENDPOINTS)
MEASURED = (
    f"endpoint_type NOT IN ({', '.join(repr(e.value) for e in UNMEASURED_ENDPOINTS)})"
    " AND ip_version = 4"
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
FEATURES = tuple(f for f in CallFeature if f is not CallFeature.NONE)
OUTCOMES = tuple(QueueOutcome)
# The staged per-customer figures of the week being rolled up (a temporary table
# of the rollup's transaction).
STAGE = "calling_rollup_stage"


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


def _name(value: str) -> str:
    return value.lower()


# Legs counted per user, then summed per customer: those that carry quality
# metrics (and those that are poor), in all and per endpoint type that can carry
# them. A leg's `quality` code (`_leg_codes`) says which: 0 unmeasured, else
# 2 * (its endpoint type's place in MEASURED_ENDPOINTS) + 1, plus 1 when poor.
_QUALITY = [
    ("quality_legs", "quality > 0"),
    ("poor_legs", "quality > 0 AND quality % 2 = 0"),
    *(
        (f"legs_{_name(e.value)}", f"quality IN ({2 * n + 1}, {2 * n + 2})")
        for n, e in enumerate(MEASURED_ENDPOINTS)
    ),
    *(
        (f"poor_{_name(e.value)}", f"quality = {2 * n + 2}")
        for n, e in enumerate(MEASURED_ENDPOINTS)
    ),
]
_ADDITIVE = ["legs", "seconds", "video_seconds", *(name for name, _ in _QUALITY)]


def _leg_codes() -> str:
    """What the figures need of each of the week's legs."""
    poor = (
        f"jitter_ms > {POOR_JITTER_MS} OR latency_ms > {POOR_LATENCY_MS}"
        f" OR packet_loss_pct > {POOR_LOSS_PCT}"
    )
    endpoints = " ".join(
        f"WHEN '{e.value}' THEN {2 * n + 1}" for n, e in enumerate(MEASURED_ENDPOINTS)
    )
    return f"""customer_id, call_id, user_uuid, duration_seconds, video_seconds,
    CASE WHEN {MEASURED} THEN CASE endpoint_type {endpoints} END
      + CASE WHEN {poor} THEN 1 ELSE 0 END ELSE 0 END AS quality"""


def _call_features(postgres: bool) -> str:
    """The features of a call's legs read so far, as a bit mask (FEATURES[n] is
    bit n); SQLite has no bit_or."""
    if postgres:
        bits = " ".join(f"WHEN '{f.value}' THEN {1 << n}" for n, f in enumerate(FEATURES))
        return f"bit_or(CASE feature {bits} ELSE 0 END) OVER call"
    return " + ".join(
        f"MAX(CASE WHEN feature = '{f.value}' THEN {1 << n} ELSE 0 END) OVER call"
        for n, f in enumerate(FEATURES)
    )


def stage_sql(postgres: bool) -> str:
    """One read of the week's legs into one row of figures per customer: the staged
    table every rollup table is then filled from.

    A distinct count does not add up from coarser groups, so the legs are read
    once, in order of customer, call and user, through a window over each call:
    on each leg it says whether the leg is the call's last and whether it is
    the first of its user in the call, and carries the features, queue outcome
    (the greatest) and queue wait (the longest) of the call's legs so far, so
    the whole call's on its last leg. One aggregate per customer and user then
    counts each call once (on its last leg) and each user's distinct calls (its
    first legs in each call), and sums the legs; the customer's row adds up its
    users and sorts them into volume buckets."""
    last = "last_of_call"
    queue = f"feature = '{CallFeature.CALL_QUEUE.value}'"
    per_user = ",\n    ".join(
        [
            "COUNT(*) FILTER (WHERE first_of_user) AS user_calls",
            f"COUNT(*) FILTER (WHERE {last}) AS calls",
            "COUNT(*) AS legs",
            "SUM(duration_seconds) AS seconds",
            "SUM(video_seconds) AS video_seconds",
            *(f"COUNT(*) FILTER (WHERE {cond}) AS {name}" for name, cond in _QUALITY),
            *(
                f"COUNT(*) FILTER (WHERE {last} AND (features & {1 << n}) <> 0)"
                f" AS calls_{_name(f.value)}"
                for n, f in enumerate(FEATURES)
            ),
            f"COUNT(*) FILTER (WHERE {last} AND outcome IS NOT NULL) AS queue_calls",
            *(
                f"COUNT(*) FILTER (WHERE {last} AND outcome = '{o.value}')"
                f" AS queue_{_name(o.value)}"
                for o in OUTCOMES
            ),
            f"SUM(COALESCE(wait, 0)) FILTER (WHERE {last} AND outcome = 'ANSWERED') AS answer_wait",
            f"SUM(COALESCE(wait, 0)) FILTER (WHERE {last} AND outcome = 'ABANDONED')"
            " AS abandon_wait",
        ]
    )
    summed = [
        "calls",
        *_ADDITIVE,
        *(f"calls_{_name(f.value)}" for f in FEATURES),
        "queue_calls",
        *(f"queue_{_name(o.value)}" for o in OUTCOMES),
        "answer_wait",
        "abandon_wait",
    ]
    per_customer = ",\n  ".join(
        [
            *(f"CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}" for c in summed),
            "COUNT(user_uuid) AS active_users",
            f"COUNT(user_uuid) FILTER (WHERE user_calls <= {LOW_MAX}) AS users_low",
            f"COUNT(user_uuid) FILTER (WHERE user_calls > {LOW_MAX}"
            f" AND user_calls <= {MEDIUM_MAX}) AS users_medium",
            f"COUNT(user_uuid) FILTER (WHERE user_calls > {MEDIUM_MAX}) AS users_high",
        ]
    )
    return f"""CREATE TEMPORARY TABLE {STAGE} AS
WITH legs AS (
  SELECT {_leg_codes()},
    row_number() OVER call = rank() OVER call AS first_of_user,
    lead(1) OVER call IS NULL AS {last},
    {_call_features(postgres)} AS features,
    MAX(CASE WHEN {queue} THEN queue_outcome END) OVER call AS outcome,
    MAX(CASE WHEN {queue} AND queue_outcome IS NOT NULL THEN queue_wait_seconds END)
      OVER call AS wait
  FROM call_leg WHERE started_at >= ? AND started_at < ?
  WINDOW call AS (PARTITION BY customer_id, call_id ORDER BY user_uuid)
),
per_user AS (
  SELECT customer_id, user_uuid,
    {per_user}
  FROM legs GROUP BY customer_id, user_uuid
)
SELECT customer_id,
  {per_customer}
FROM per_user GROUP BY customer_id"""


def fill_sql() -> tuple[str, ...]:
    """The four rollup tables from the staged figures (one row per customer)."""
    endpoints = " UNION ALL ".join(
        f"SELECT customer_id, '{e.value}' AS endpoint_type, legs_{_name(e.value)} AS total_legs,"
        f" poor_{_name(e.value)} AS poor_legs FROM {STAGE} WHERE legs_{_name(e.value)} > 0"
        for e in MEASURED_ENDPOINTS
    )
    features = " UNION ALL ".join(
        f"SELECT customer_id, '{f.value}' AS feature, calls_{_name(f.value)} AS calls"
        f" FROM {STAGE} WHERE calls_{_name(f.value)} > 0"
        for f in FEATURES
    )
    return (
        f"""INSERT INTO calling_weekly_customer (customer_id, week_start, total_calls, total_legs,
  call_minutes, video_minutes, active_users, users_low, users_medium, users_high,
  quality_legs, poor_legs)
SELECT customer_id, ?, calls, legs, (seconds + 30) / 60, (video_seconds + 30) / 60,
  active_users, users_low, users_medium, users_high, quality_legs, poor_legs
FROM {STAGE} ORDER BY customer_id""",
        f"""INSERT INTO calling_weekly_endpoint
  (customer_id, week_start, endpoint_type, total_legs, poor_legs)
SELECT customer_id, ?, endpoint_type, total_legs, poor_legs FROM ({endpoints}) e
ORDER BY customer_id, endpoint_type""",
        f"""INSERT INTO calling_weekly_feature (customer_id, week_start, feature, calls)
SELECT customer_id, ?, feature, calls FROM ({features}) f ORDER BY customer_id, feature""",
        f"""INSERT INTO calling_weekly_queue (customer_id, week_start, total_calls, answered_calls,
  abandoned_calls, timed_out_calls, overflowed_calls, transferred_calls,
  answer_wait_seconds, abandon_wait_seconds)
SELECT customer_id, ?, queue_calls, queue_answered, queue_abandoned, queue_timed_out,
  queue_overflowed, queue_transferred, answer_wait, abandon_wait
FROM {STAGE} WHERE queue_calls > 0 ORDER BY customer_id""",
    )


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
    declines: int = 0  # CALL_QUALITY_DECLINING events it wrote


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
    week_start: date,
    now: datetime | None = None,
    wait_seconds: float = ROLLUP_WAIT_SECONDS,
    *,
    announce: bool = True,
    rise_points: float | None = None,
) -> Rollup:
    """Rebuild the rollups of the week starting on `week_start` (a Monday); waits
    up to `wait_seconds` for another rollup of the same week to finish first.
    With `announce`, the week's call quality declines (app/domain/attention_states.py,
    `rise_points` or the setting's) are written in the same transaction, once
    per customer and week whatever the number of re-runs."""
    if week_start.weekday() != 0:
        raise ValueError(f"{week_start.isoformat()} is not a Monday: a week starts on Monday")
    start, end = _week_bounds(week_start)
    async with in_transaction() as conn:
        await unbounded_statements(conn)
        waited = await _take_week(conn, week_start, wait_seconds)
        for table in ROLLUP_TABLES:
            await execute(f"DELETE FROM {table} WHERE week_start = ?", [week_start], conn)
        await execute(stage_sql(is_postgres(conn)), [start, end], conn)
        for sql in fill_sql():
            await execute(sql, [week_start], conn)
        await execute(f"DROP TABLE {STAGE}", [], conn)
        await execute(
            "INSERT INTO calling_week (week_start, refreshed_at) VALUES (?, ?)"
            " ON CONFLICT (week_start) DO UPDATE SET refreshed_at = excluded.refreshed_at",
            [week_start, now or utcnow()],
            conn,
        )
        declines = (
            await record_quality_declines(week_start, now or utcnow(), rise_points)
            if announce
            else 0
        )
    return Rollup(week_start, waited, declines)
