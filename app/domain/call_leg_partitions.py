"""Weekly partitions of call legs on PostgreSQL, and call-leg retention on both databases.

On PostgreSQL `call_leg` is range-partitioned on `started_at` (migration 0009):
one partition a week, Monday 00:00 UTC to the next Monday (the weeks the rollups
count, `monday_of` in app/domain/calling_rollup.py), named `call_leg_wYYYYMMDD`
after its Monday, plus the DEFAULT partition `call_leg_default`. SQLite keeps
one table.

Where a leg lands:
- in its week's partition when it exists. The daily job (`maintain`) keeps the
  partitions of the current week and the AHEAD_WEEKS after it; writers of legs
  (ingest, the demo loader) call `ensure_partitions_for_rows` (or
  `ensure_partitions_between`) before they write, which creates any missing week
  of theirs within the kept window first, each in a short transaction of its own;
- otherwise in the DEFAULT partition. A leg is never refused for want of a
  partition: a straggler from before the kept window, a far-future time, a
  writer that did not ask first (the ORM), or a week whose creation was skipped
  because the table was busy. A partition cannot be created on demand at insert
  time (PostgreSQL routes a row before any trigger could add one, and refuses
  to change a table an open statement is inserting into), hence DEFAULT as the
  safety net, and creation before the write.

The DEFAULT partition stays small: PostgreSQL refuses to create a week's
partition while DEFAULT holds rows of that week, so creating one moves that
week's legs out of DEFAULT in the same transaction, and the daily job moves
every week of the kept window out of it. What it keeps are legs older than the
kept window whose week is not rolled up yet, and legs beyond AHEAD_WEEKS.

Retention (`maintain`): the kept window is the current week and the
`call_leg_retention_weeks` weeks before it. The legs of an older week go once
the week is rolled up (a `calling_week` row; the rollup tables are kept): on
PostgreSQL its partition is dropped whole (and its legs in DEFAULT deleted), on
SQLite its legs are deleted. An older week not rolled up keeps its legs (named
in the job's log) until it is; an empty partition goes regardless.

Locks: creating a partition (CREATE TABLE, then ATTACH) takes a SHARE UPDATE
EXCLUSIVE lock on `call_leg`, so reads and writes go on, and briefly an ACCESS
EXCLUSIVE one on DEFAULT; dropping a partition needs ACCESS EXCLUSIVE on
`call_leg`, so it waits for running reads of it (a long report). Each step
waits at most a lock timeout, then is skipped: a writer's rows go to DEFAULT,
and the next daily run does what was skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.db import as_date, connection, is_postgres
from app.domain.calling_rollup import monday_of

log = logging.getLogger(__name__)

PARENT = "call_leg"
DEFAULT_PARTITION = "call_leg_default"
# Weeks after the current one whose partitions exist ahead of their legs.
AHEAD_WEEKS = 4
# Settings.call_leg_retention_weeks by default (writers use it for their window).
DEFAULT_RETENTION_WEEKS = 26
# Advisory lock class of partition changes ("CLP"): one creator at a time.
PARTITION_LOCK_CLASS = 0x434C50
# How long a writer waits for the locks a partition takes before it lets its
# rows go to DEFAULT instead; and how long the daily job waits before it skips a step.
WRITER_LOCK_WAIT_SECONDS = 2.0
MAINTENANCE_LOCK_WAIT_SECONDS = 30.0
_NAME = re.compile(r"^call_leg_w(\d{8})$")
# lock_not_available (lock_timeout), deadlock_detected: the step is skipped.
_BUSY_SQLSTATES = {"55P03", "40P01"}


def partition_name(week: date) -> str:
    """The partition of the week starting on Monday `week`, e.g. call_leg_w20261116."""
    return f"call_leg_w{week:%Y%m%d}"


def week_of(moment: datetime) -> date:
    """Monday of the week (UTC) that `moment` falls in."""
    return monday_of(moment.astimezone(UTC).date())


def week_bounds(week: date) -> tuple[datetime, datetime]:
    """The week's first instant and the next week's (a partition's range)."""
    start = datetime.combine(week, time.min, UTC)
    return start, start + timedelta(weeks=1)


def retention_start(now: datetime, retention_weeks: int) -> date:
    """Monday of the oldest week kept at `now`: the current week and the
    `retention_weeks` weeks before it are kept, older ones are past retention."""
    return week_of(now) - timedelta(weeks=retention_weeks)


def _weeks(first: date, last: date) -> list[date]:
    out: list[date] = []
    week = first
    while week <= last:
        out.append(week)
        week += timedelta(weeks=1)
    return out


def _literal(moment: datetime) -> str:
    return f"'{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def _sqlstate(exc: BaseException) -> str | None:
    for one in (exc, exc.__cause__, exc.__context__):
        state = getattr(one, "sqlstate", None)
        if state:
            return str(state)
    return None


async def weekly_partitions(conn: BaseDBAsyncClient | None = None) -> list[date]:
    """Mondays of the weekly partitions that exist, oldest first (none on SQLite)."""
    conn = conn or connection()
    if not is_postgres(conn):
        return []
    rows = await conn.execute_query_dict(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'call_leg'::regclass"
    )
    weeks = []
    for row in rows:
        match = _NAME.match(row["relname"])
        if match:
            weeks.append(datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(weeks)


Outcome = Literal["created", "exists", "busy"]


@dataclass
class _Changes:
    created: list[date] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


async def create_week_partition(week: date, lock_wait_seconds: float) -> tuple[Outcome, int]:
    """Create the partition of `week` (a Monday), moving in the legs of that week
    that DEFAULT holds; returns what happened and how many legs moved. "busy":
    a lock was not had within `lock_wait_seconds`, nothing changed."""
    if week.weekday() != 0:
        raise ValueError(f"{week.isoformat()} is not a Monday: a week starts on Monday")
    name = partition_name(week)
    start, end = week_bounds(week)
    try:
        async with in_transaction() as conn:
            await conn.execute_query(f"SET LOCAL lock_timeout = {int(lock_wait_seconds * 1000)}")
            await conn.execute_query("SELECT pg_advisory_xact_lock($1, 0)", [PARTITION_LOCK_CLASS])
            if week in await weekly_partitions(conn):
                return "exists", 0
            await conn.execute_query(f'CREATE TABLE "{name}" (LIKE {PARENT})')
            _, rows = await conn.execute_query(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION}"
                " WHERE started_at >= $1 AND started_at < $2 RETURNING *),"
                f' put AS (INSERT INTO "{name}" SELECT * FROM moved RETURNING 1)'
                " SELECT count(*) AS n FROM put",
                [start, end],
            )
            await conn.execute_query(
                f'ALTER TABLE {PARENT} ATTACH PARTITION "{name}"'
                f" FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
            )
    except Exception as exc:
        if _sqlstate(exc) in _BUSY_SQLSTATES:
            return "busy", 0
        raise
    return "created", int(rows[0]["n"])


async def _create_weeks(weeks: Iterable[date], lock_wait_seconds: float) -> _Changes:
    changes = _Changes()
    for week in sorted(set(weeks)):
        outcome, moved = await create_week_partition(week, lock_wait_seconds)
        if outcome == "created":
            changes.created.append(week)
            log.info(
                "created call leg partition %s%s",
                partition_name(week),
                f" ({moved} leg(s) moved in from {DEFAULT_PARTITION})" if moved else "",
            )
        elif outcome == "busy":
            changes.busy.append(f"create {partition_name(week)}")
            log.warning(
                "call leg partition %s not created: call_leg was busy for %.0f s (its legs "
                "go to %s until the daily job creates it)",
                partition_name(week),
                lock_wait_seconds,
                DEFAULT_PARTITION,
            )
    return changes


async def ensure_week_partitions(
    weeks: Iterable[date],
    *,
    now: datetime | None = None,
    retention_weeks: int = DEFAULT_RETENTION_WEEKS,
) -> list[date]:
    """Before writing legs of `weeks` (Mondays): create the missing partitions of
    those that fall in the kept window (the `retention_weeks` weeks before the
    current one up to AHEAD_WEEKS after it). Returns the weeks created; a no-op
    on SQLite, and one catalog query when they all exist. Legs of other weeks, or
    of a week whose partition could not be created for a busy table, land in
    DEFAULT."""
    if not is_postgres():
        return []
    now = now or utcnow()
    first = retention_start(now, retention_weeks)
    last = week_of(now) + timedelta(weeks=AHEAD_WEEKS)
    wanted = {week for week in weeks if first <= week <= last}
    if not wanted:
        return []
    missing = wanted - set(await weekly_partitions())
    if not missing:
        return []
    return (await _create_weeks(missing, WRITER_LOCK_WAIT_SECONDS)).created


async def ensure_partitions_between(
    earliest: datetime,
    latest: datetime,
    *,
    now: datetime | None = None,
    retention_weeks: int = DEFAULT_RETENTION_WEEKS,
) -> list[date]:
    """`ensure_week_partitions` for every week from `earliest` to `latest` (a
    loader that fills each week in between, like the demo)."""
    return await ensure_week_partitions(
        _weeks(week_of(earliest), week_of(latest)), now=now, retention_weeks=retention_weeks
    )


async def ensure_partitions_for_rows(
    table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[date]:
    """`ensure_week_partitions` for the weeks of rows about to be written to
    `table` (values in `columns` order); a no-op unless the table is call_leg, so
    a generic writer can call it for every table."""
    if table != PARENT or not rows or not is_postgres():
        return []
    at = list(columns).index("started_at")
    times = [row[at] for row in rows]
    first, last = week_of(min(times)), week_of(max(times))
    if last - first <= timedelta(weeks=1):  # the usual batch: its weeks without a pass
        weeks = {first, last}
    else:
        weeks = {week_of(t) for t in times}
    return await ensure_week_partitions(weeks)


@dataclass(frozen=True)
class Maintenance:
    """What one run of `maintain` did."""

    created: list[date]  # partitions created (PostgreSQL)
    dropped: list[date]  # partitions dropped past retention (PostgreSQL)
    deleted_legs: int  # legs deleted past retention (SQLite; DEFAULT on PostgreSQL)
    emptied_weeks: list[date]  # weeks whose legs those were
    kept: list[date]  # weeks past retention kept because they are not rolled up
    busy: list[str]  # steps skipped for a busy table (the next run does them)

    def summary(self) -> str:
        def weeks(days: list[date]) -> str:
            if not days:
                return "none"
            if len(days) <= 3:
                return ", ".join(d.isoformat() for d in days)
            return f"{len(days)}, {days[0].isoformat()} to {days[-1].isoformat()}"

        parts = [
            f"created partitions of weeks: {weeks(self.created)}",
            f"dropped partitions of weeks: {weeks(self.dropped)}",
            f"deleted {self.deleted_legs} leg(s) of weeks: {weeks(self.emptied_weeks)}",
        ]
        if self.kept:
            parts.append(f"kept (not rolled up) weeks: {weeks(self.kept)}")
        if self.busy:
            parts.append(f"skipped (busy): {', '.join(self.busy)}")
        return "call legs: " + "; ".join(parts)


async def _rolled_up_before(week: date) -> set[date]:
    rows = await connection().execute_query_dict(
        "SELECT week_start FROM calling_week WHERE week_start < "
        + ("$1" if is_postgres() else "?"),
        [week],
    )
    return {as_date(r["week_start"]) for r in rows}


async def _weeks_with_legs(table: str, before: datetime | None = None) -> list[date]:
    """Weeks of the legs in `table` (that start before `before`), oldest first."""
    conn = connection()
    if is_postgres(conn):
        week = "(date_trunc('week', started_at AT TIME ZONE 'UTC'))::date"
        mark = "$1"
    else:  # back to the Monday on or before the day (SQLite's 'weekday 1' goes forward)
        week, mark = "date(started_at, '-6 days', 'weekday 1')", "?"
    where = f" WHERE started_at < {mark}" if before else ""
    rows = await conn.execute_query_dict(
        f"SELECT DISTINCT {week} AS week FROM {table}{where}", [before] if before else []
    )
    return sorted(as_date(r["week"]) for r in rows)


async def _delete_week(table: str, week: date) -> int:
    start, end = week_bounds(week)
    conn = connection()
    marks = ("$1", "$2") if is_postgres(conn) else ("?", "?")
    count, _ = await conn.execute_query(
        f"DELETE FROM {table} WHERE started_at >= {marks[0]} AND started_at < {marks[1]}",
        [start, end],
    )
    return count


DropOutcome = Literal["dropped", "kept", "busy", "gone"]


async def _drop_partition(
    week: date, lock_wait_seconds: float, *, only_if_empty: bool
) -> DropOutcome:
    """Drop the week's partition (`only_if_empty`: unless it holds legs, which
    are then kept). call_leg is locked first, so no leg arrives between the look
    and the drop (and in the order DROP itself takes its locks: parent, then
    partition). "busy": a lock was not had in time, nothing changed; "gone":
    another run dropped it first."""
    name = partition_name(week)
    try:
        async with in_transaction() as conn:
            await conn.execute_query(f"SET LOCAL lock_timeout = {int(lock_wait_seconds * 1000)}")
            await conn.execute_query("SELECT pg_advisory_xact_lock($1, 0)", [PARTITION_LOCK_CLASS])
            if week not in await weekly_partitions(conn):
                return "gone"
            await conn.execute_query(f"LOCK TABLE ONLY {PARENT} IN ACCESS EXCLUSIVE MODE")
            if only_if_empty:
                rows = await conn.execute_query_dict(
                    f'SELECT EXISTS (SELECT 1 FROM "{name}") AS legs'
                )
                if rows[0]["legs"]:
                    return "kept"
            await conn.execute_query(f'DROP TABLE "{name}"')
    except Exception as exc:
        if _sqlstate(exc) in _BUSY_SQLSTATES:
            return "busy"
        raise
    return "dropped"


async def maintain(
    now: datetime,
    retention_weeks: int,
    *,
    ahead_weeks: int = AHEAD_WEEKS,
    lock_wait_seconds: float = MAINTENANCE_LOCK_WAIT_SECONDS,
) -> Maintenance:
    """The daily upkeep as of `now`: on PostgreSQL, create the partitions of the
    current week and `ahead_weeks` after it and of every kept week DEFAULT holds
    legs of; on both, remove the legs of weeks past retention that are rolled up
    (dropping their partitions on PostgreSQL). Logs what it changed."""
    if retention_weeks < 1:
        raise ValueError("call_leg_retention_weeks is at least 1")
    postgres = is_postgres()
    oldest_kept = retention_start(now, retention_weeks)
    cutoff, _ = week_bounds(oldest_kept)
    current = week_of(now)
    changes = _Changes()
    dropped: list[date] = []
    kept: list[date] = []
    if postgres:
        stray = [
            w
            for w in await _weeks_with_legs(DEFAULT_PARTITION)
            if oldest_kept <= w <= current + timedelta(weeks=ahead_weeks)
        ]
        wanted = set(_weeks(current, current + timedelta(weeks=ahead_weeks))) | set(stray)
        changes = await _create_weeks(wanted - set(await weekly_partitions()), lock_wait_seconds)
    rolled = await _rolled_up_before(oldest_kept)
    if postgres:
        for week in await weekly_partitions():
            if week >= oldest_kept:
                continue
            outcome = await _drop_partition(
                week, lock_wait_seconds, only_if_empty=week not in rolled
            )
            if outcome == "kept":
                kept.append(week)
            elif outcome == "dropped":
                dropped.append(week)
                log.info(
                    "dropped call leg partition %s (past the %d-week retention%s)",
                    partition_name(week),
                    retention_weeks,
                    ", rolled up" if week in rolled else ", empty",
                )
            elif outcome == "busy":
                changes.busy.append(f"drop {partition_name(week)}")
                log.warning(
                    "call leg partition %s not dropped: call_leg was busy for %.0f s "
                    "(the next daily run drops it)",
                    partition_name(week),
                    lock_wait_seconds,
                )
    table = DEFAULT_PARTITION if postgres else PARENT
    deleted, emptied = 0, []
    for week in await _weeks_with_legs(table, cutoff):
        if week in rolled:
            count = await _delete_week(table, week)
            deleted += count
            emptied.append(week)
            log.info(
                "deleted %d call leg(s) of the week of %s (past the %d-week retention, rolled up)",
                count,
                week.isoformat(),
                retention_weeks,
            )
        elif week not in kept:
            kept.append(week)
    if kept:
        log.warning(
            "call legs of %d week(s) past the %d-week retention are kept until their week is "
            "rolled up (`partnerhub rollup --week MONDAY`): %s",
            len(kept),
            retention_weeks,
            ", ".join(w.isoformat() for w in sorted(kept)),
        )
    return Maintenance(
        created=changes.created,
        dropped=dropped,
        deleted_legs=deleted,
        emptied_weeks=emptied,
        kept=sorted(kept),
        busy=changes.busy,
    )
