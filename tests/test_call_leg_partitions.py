"""Call legs partitioned by week on PostgreSQL (app/domain/call_leg_partitions.py,
migration 0009), and call-leg retention on both databases: legs land in their
week's partition (or in DEFAULT until it exists), retention removes only the
legs of old weeks that are rolled up, and rollups and the Calling usage report
give the same figures before and after, on SQLite and PostgreSQL.

Each test uses weeks of a year of its own: partitions outlive a test's emptied
tables within the session's database."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from tortoise.exceptions import IntegrityError

from app.config import Settings
from app.db import as_date, fetch_all, is_postgres
from app.domain.call_leg_partitions import (
    create_week_partition,
    ensure_partitions_between,
    ensure_partitions_for_rows,
    maintain,
    weekly_partitions,
)
from app.domain.calling_rollup import POOR_JITTER_MS, rollup_week
from app.domain.cron_runs import MAINTAIN_CALL_LEG_PARTITIONS
from app.domain.report_generation import run_report
from app.domain.reports import ReportRequest, create_report
from app.models.calling import CallLeg
from app.models.customers import Customer
from app.models.enums import AdminRole, CallType, EndpointType, ReportStatus, ReportType
from app.models.reports import ReportTemplate
from app.models.system import CronRun
from app.storage import LocalStorage
from tests import factories
from tests.cli_process import cli_env, run_cli
from tests.test_ingest import ndjson, post
from workers.crons import run_upkeep, upkeep_tick

DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)


def monday(day: date) -> date:
    """The Monday on or before `day` (written here, not taken from the product)."""
    return date.fromordinal(day.toordinal() - day.weekday())


def start_of(week: date) -> datetime:
    return datetime.combine(week, time.min, UTC)


def expected_partition(moment: datetime) -> str:
    return "call_leg_w" + monday(moment.astimezone(UTC).date()).strftime("%Y%m%d")


async def acme() -> tuple[Customer, Customer]:
    org = await factories.partner("Northwind Partners", "northwind.example")
    return await factories.customer(org, "Acme"), await factories.customer(org, "Bolt")


def leg(
    customer: Customer,
    key: str,
    at: datetime,
    *,
    call: str | None = None,
    seconds: int = 120,
    poor: bool = False,
    user: uuid.UUID | None = None,
) -> CallLeg:
    return CallLeg(
        customer=customer,
        leg_id=key,
        call_id=call or key,
        user_uuid=user or uuid.uuid5(uuid.NAMESPACE_OID, f"{customer.id}-{key}"),
        started_at=at,
        duration_seconds=seconds,
        endpoint_type=EndpointType.APP,
        call_type=CallType.NATIONAL,
        jitter_ms=POOR_JITTER_MS + 1 if poor else 10.0,
        latency_ms=100.0,
        packet_loss_pct=1.0,
    )


async def seed_week(customer: Customer, week: date, legs: int, tag: str = "") -> None:
    """`legs` one-leg calls of two minutes on the Tuesday of `week`."""
    await CallLeg.bulk_create(
        [
            leg(
                customer,
                f"{tag}{week.isoformat()}-{n}",
                start_of(week) + DAY + n * timedelta(minutes=5),
            )
            for n in range(legs)
        ]
    )


async def legs_by_week() -> dict[date, int]:
    rows = await fetch_all("SELECT started_at FROM call_leg")
    counts: dict[date, int] = defaultdict(int)
    for row in rows:
        started = row["started_at"]
        moment = started if isinstance(started, datetime) else datetime.fromisoformat(started)
        counts[monday(moment.astimezone(UTC).date())] += 1
    return dict(counts)


async def where_legs_are() -> dict[str, str]:
    """leg_id -> the table PostgreSQL stored it in."""
    rows = await fetch_all("SELECT leg_id, tableoid::regclass::text AS part FROM call_leg")
    return {r["leg_id"]: r["part"] for r in rows}


async def partitions_of_call_leg() -> set[str]:
    rows = await fetch_all(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'call_leg'::regclass"
    )
    return {r["relname"] for r in rows}


async def rollup_rows() -> dict[str, list[tuple]]:
    """Every weekly rollup table, ids and refresh times left out."""
    out = {}
    for table, key in (
        ("calling_weekly_customer", "customer_id, week_start"),
        ("calling_weekly_endpoint", "customer_id, week_start, endpoint_type"),
        ("calling_weekly_feature", "customer_id, week_start, feature"),
        ("calling_weekly_queue", "customer_id, week_start"),
    ):
        rows = await fetch_all(f"SELECT * FROM {table} ORDER BY {key}")
        out[table] = [
            tuple(as_date(v) if k == "week_start" else v for k, v in r.items() if k != "id")
            for r in rows
        ]
    return out


# ------------------------------------------------------------- where legs go


async def test_legs_spanning_several_weeks_land_in_their_partitions(postgres_db: Settings) -> None:
    now = datetime.now(UTC)
    this_week = monday(now.date())
    customer, _ = await acme()
    moments = {
        "three-weeks-ago": start_of(this_week - 3 * WEEK) + timedelta(days=2, hours=9),
        "last-sunday-night": start_of(this_week) - timedelta(microseconds=1),
        "monday-midnight": start_of(this_week),
        "next-week": start_of(this_week + WEEK) + timedelta(days=4, hours=23),
        "in-four-weeks": start_of(this_week + 4 * WEEK) + timedelta(hours=1),
    }
    await ensure_partitions_between(min(moments.values()), max(moments.values()))
    existing = await partitions_of_call_leg()
    for moment in moments.values():
        assert expected_partition(moment) in existing
    # Far before the kept window (26 weeks) and beyond the weeks made ahead: DEFAULT.
    stragglers = {
        "from-long-ago": start_of(this_week - 60 * WEEK) + DAY,
        "far-future": start_of(this_week + 40 * WEEK) + DAY,
    }
    batch = [leg(customer, key, at) for key, at in {**moments, **stragglers}.items()]
    columns = ("leg_id", "started_at")
    rows = [(x.leg_id, x.started_at) for x in batch]
    # What a writer asks before it writes: only the stragglers' weeks are missing.
    assert await ensure_partitions_for_rows("call_leg", columns, rows) == []
    assert await ensure_partitions_for_rows("device", columns, rows) == []

    await CallLeg.bulk_create(batch)

    placed = await where_legs_are()
    assert {k: placed[k] for k in moments} == {k: expected_partition(m) for k, m in moments.items()}
    assert {placed[k] for k in stragglers} == {"call_leg_default"}
    # The rollup reads the week across its partition (and DEFAULT) the same way.
    await rollup_week(this_week - WEEK)
    rows = await fetch_all(
        "SELECT total_legs FROM calling_weekly_customer WHERE week_start = ?", [this_week - WEEK]
    )
    assert [r["total_legs"] for r in rows] == [1]


async def test_creating_a_weeks_partition_moves_its_legs_out_of_default(
    postgres_db: Settings,
) -> None:
    now = datetime(2031, 3, 12, 10, 0, tzinfo=UTC)
    customer, other = await acme()
    future = monday(now.date()) + 6 * WEEK  # beyond the four weeks made ahead at `now`
    await seed_week(customer, future, 3)
    await seed_week(other, future, 2)
    assert set((await where_legs_are()).values()) == {"call_leg_default"}
    # A leg of the same week again: the natural key holds started_at.
    with pytest.raises(IntegrityError):
        await CallLeg.create(
            **_fields(leg(customer, f"{future.isoformat()}-0", start_of(future) + DAY))
        )

    # Two weeks later the week is within the weeks ahead: the daily run creates it.
    done = await maintain(now + 2 * WEEK, retention_weeks=26)

    assert future in done.created
    assert set((await where_legs_are()).values()) == {expected_partition(start_of(future))}
    assert await legs_by_week() == {future: 5}
    assert await fetch_all("SELECT count(*) AS n FROM call_leg_default") == [{"n": 0}]


def _fields(one: CallLeg) -> dict[str, Any]:
    return {
        k: getattr(one, k)
        for k in (
            "customer_id", "leg_id", "call_id", "user_uuid", "started_at", "duration_seconds",
            "endpoint_type", "call_type", "jitter_ms", "latency_ms", "packet_loss_pct",
        )
    }  # fmt: skip


async def test_a_busy_table_skips_the_partition_and_the_legs_go_to_default(
    postgres_db: Settings, postgres_url: str
) -> None:
    week = date(2031, 5, 5)
    customer, _ = await acme()
    holder = await asyncpg.connect(postgres_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE call_leg_default IN ACCESS EXCLUSIVE MODE")
        assert await create_week_partition(week, lock_wait_seconds=0.2) == ("busy", 0)
        await transaction.rollback()
    finally:
        await holder.close()
    assert week not in await weekly_partitions()
    await seed_week(customer, week, 2)
    assert set((await where_legs_are()).values()) == {"call_leg_default"}
    assert await create_week_partition(week, lock_wait_seconds=5) == ("created", 2)
    assert await create_week_partition(week, lock_wait_seconds=5) == ("exists", 0)
    assert set((await where_legs_are()).values()) == {"call_leg_w20310505"}


# ------------------------------------------------------------------ retention


async def test_retention_removes_only_old_weeks_that_are_rolled_up(db: Settings) -> None:
    now = datetime(2032, 6, 16, 10, 0, tzinfo=UTC)  # a Wednesday
    oldest_kept = monday(now.date()) - 4 * WEEK  # retention 4 weeks: 2032-05-17
    customer, other = await acme()
    old_rolled = oldest_kept - 2 * WEEK
    old_not_rolled = oldest_kept - WEEK
    straggler_week = oldest_kept - 4 * WEEK  # rolled up, its legs in DEFAULT on PostgreSQL
    calls = {
        straggler_week: 1,
        old_rolled: 3,
        old_not_rolled: 2,
        oldest_kept: 4,
        oldest_kept + WEEK: 5,
    }
    await ensure_partitions_between(start_of(old_rolled), start_of(oldest_kept + WEEK), now=now)
    for week, n in calls.items():
        await seed_week(customer, week, n)
        await seed_week(other, week, 1, tag="o")
    for week in (straggler_week, old_rolled, oldest_kept, oldest_kept + WEEK):
        await rollup_week(week, now=now)
    rolled_before = await rollup_rows()
    if is_postgres():
        placed = await where_legs_are()
        assert placed[f"{straggler_week.isoformat()}-0"] == "call_leg_default"
        assert placed[f"{old_rolled.isoformat()}-0"] == expected_partition(start_of(old_rolled))

    done = await maintain(now, retention_weeks=4)

    assert await legs_by_week() == {
        old_not_rolled: 3,  # past retention but not rolled up: kept
        oldest_kept: 5,  # the oldest week kept, rolled up
        oldest_kept + WEEK: 6,
    }
    assert done.kept == [old_not_rolled]
    assert await rollup_rows() == rolled_before  # rollups are kept
    if is_postgres():
        assert old_rolled in done.dropped and old_not_rolled not in done.dropped
        partitions = set(await weekly_partitions())
        assert old_rolled not in partitions
        assert {old_not_rolled, oldest_kept, oldest_kept + WEEK} <= partitions
        assert (done.deleted_legs, done.emptied_weeks) == (2, [straggler_week])  # from DEFAULT
    else:
        assert done.dropped == []
        assert (done.deleted_legs, done.emptied_weeks) == (2 + 4, [straggler_week, old_rolled])

    # Once the old week is rolled up, the next run removes it; then nothing is left to do.
    await rollup_week(old_not_rolled, now=now)
    again = await maintain(now + DAY, retention_weeks=4)
    assert await legs_by_week() == {oldest_kept: 5, oldest_kept + WEEK: 6}
    assert again.kept == []
    assert (again.dropped if is_postgres() else again.emptied_weeks) == [old_not_rolled]
    third = await maintain(now + DAY, retention_weeks=4)
    assert (third.dropped, third.deleted_legs, third.kept) == ([], 0, [])


# ------------------------------------------------- same figures, both engines


async def _calling_usage(tmp_path: Path, first: date, last: date) -> dict[str, tuple[int, ...]]:
    """The Calling usage detail report over [first, last]: customer -> (calls, legs, minutes)."""
    customer = await Customer.first().prefetch_related("partner")
    assert customer is not None
    admin = await factories.admin(customer.partner, AdminRole.FULL_ADMIN)
    template = await ReportTemplate.get(
        report_type=ReportType.CALLING_USAGE_DETAIL, partner_id=None
    )
    report = await create_report(
        admin.admin.partner_id, ReportRequest(template, first, last, None), admin.admin.id,
        None, date.today(),
    )  # fmt: skip
    outcome = await run_report(report.id, LocalStorage(tmp_path / "reports"), chunk_rows=2)
    assert outcome.report.status == ReportStatus.SUCCEEDED, outcome.report.error
    body = (tmp_path / "reports" / (report.storage_key or "")).read_bytes()
    header, *rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    at = {
        title: header.index(title) for title in ("Total calls", "Total call legs", "Call minutes")
    }
    return {r[header.index("Customer name")]: tuple(int(r[i]) for i in at.values()) for r in rows}


async def test_rollups_and_the_usage_report_are_the_same_before_and_after_upkeep(
    db: Settings, tmp_path: Path
) -> None:
    now = datetime(2033, 5, 18, 10, 0, tzinfo=UTC)
    weeks = [monday(now.date()) - n * WEEK for n in (3, 2, 1)]
    acme_, bolt = await acme()
    legs: list[CallLeg] = []
    for w, week in enumerate(weeks):
        for n in range(4 + w):
            at = start_of(week) + timedelta(days=n % 7, hours=n)
            legs.append(
                leg(
                    acme_,
                    f"a{w}-{n}",
                    at,
                    call=f"a{w}-{n // 2}",
                    seconds=61 + 7 * n,
                    poor=n % 3 == 0,
                )
            )
        legs.append(
            leg(
                bolt,
                f"b{w}",
                start_of(week) + 6 * DAY + timedelta(hours=23, minutes=59),
                seconds=45,
            )
        )
    # The week's edges: Monday 00:00 is in the week, the next Monday 00:00 is not.
    legs.append(leg(acme_, "edge", start_of(weeks[1]), seconds=30))
    # PostgreSQL: the weeks have no partition yet, so these land in DEFAULT.
    await CallLeg.bulk_create(legs)

    def expected(week: date) -> dict[int, tuple[int, int, int, int]]:
        """customer -> (calls, legs, minutes, poor legs) of the week, from the legs."""
        start, end = start_of(week), start_of(week + WEEK)
        out = {}
        for customer in (acme_, bolt):
            mine = [x for x in legs if x.customer_id == customer.id and start <= x.started_at < end]
            out[customer.id] = (
                len({x.call_id for x in mine}),
                len(mine),
                (sum(x.duration_seconds for x in mine) + 30) // 60,
                sum(1 for x in mine if (x.jitter_ms or 0) > POOR_JITTER_MS),
            )
        return out

    async def figures() -> tuple[dict, dict]:
        for week in weeks:
            await rollup_week(week, now=now)
        rows = await fetch_all(
            "SELECT customer_id, week_start, total_calls, total_legs, call_minutes, poor_legs"
            " FROM calling_weekly_customer"
        )
        by_week: dict[date, dict[int, tuple]] = defaultdict(dict)
        for r in rows:
            by_week[as_date(r["week_start"])][r["customer_id"]] = (
                r["total_calls"], r["total_legs"], r["call_minutes"], r["poor_legs"]
            )  # fmt: skip
        return dict(by_week), await _calling_usage(tmp_path, weeks[0], weeks[-1] + 6 * DAY)

    in_range = [x for x in legs if start_of(weeks[0]) <= x.started_at < start_of(weeks[-1] + WEEK)]
    report_expected = {
        name: (
            len({x.call_id for x in in_range if x.customer_id == c.id}),
            sum(1 for x in in_range if x.customer_id == c.id),
            (sum(x.duration_seconds for x in in_range if x.customer_id == c.id) + 30) // 60,
        )
        for name, c in (("Acme", acme_), ("Bolt", bolt))
    }

    before = await figures()
    done = await maintain(now, retention_weeks=26)
    after = await figures()

    assert before == after
    assert before[0] == {week: expected(week) for week in weeks}
    assert before[1] == report_expected
    if is_postgres():  # the legs moved from DEFAULT into their weeks' partitions
        assert set(weeks) <= set(done.created)
        placed = await where_legs_are()
        assert {placed[x.leg_id] for x in legs} == {expected_partition(start_of(w)) for w in weeks}
    else:
        assert done.created == []


# ------------------------------------------------------------ the daily job


async def test_the_daily_job_runs_once_per_occurrence_and_applies_the_setting(
    db: Settings,
) -> None:
    now = datetime(2034, 9, 13, 10, 0, tzinfo=UTC)  # a Wednesday
    customer, _ = await acme()
    kept_from = monday(now.date()) - 2 * WEEK
    old = kept_from - WEEK
    await ensure_partitions_between(start_of(old), start_of(kept_from), now=now)
    await seed_week(customer, old, 3)
    await seed_week(customer, kept_from, 2)
    await rollup_week(old, now=now)
    await rollup_week(kept_from, now=now)
    ctx = {"settings": db.model_copy(update={"call_leg_retention_weeks": 2})}

    # Two workers' ticks at once: the day's occurrence (00:30 UTC) runs once.
    first, second = await asyncio.gather(run_upkeep(ctx, now), run_upkeep(ctx, now))
    ran = first + second
    occurrence = datetime(2034, 9, 13, 0, 30, tzinfo=UTC)
    assert [(r.job, r.occurrence, r.outcome) for r in ran] == [
        (MAINTAIN_CALL_LEG_PARTITIONS.name, occurrence, "done")
    ]
    assert await legs_by_week() == {kept_from: 2}
    if is_postgres():
        # (with the emptied partitions earlier tests of this session left behind)
        assert "dropped partitions of weeks: " in ran[0].detail
        assert old.isoformat() in ran[0].detail
        assert old not in await weekly_partitions()
        ahead = {monday(now.date()) + n * WEEK for n in range(5)}
        assert ahead <= set(await weekly_partitions())
    else:
        assert f"deleted 3 leg(s) of weeks: {old.isoformat()}" in ran[0].detail
    assert await upkeep_tick(ctx, (now + timedelta(minutes=10)).isoformat()) == 0

    # Three days without a worker: each missed day runs once, in order.
    assert await upkeep_tick(ctx, (now + 3 * DAY).isoformat()) == 3
    runs = await CronRun.filter(job=MAINTAIN_CALL_LEG_PARTITIONS.name).order_by("occurrence")
    assert [(r.occurrence, r.attempts, r.finished_at is not None, r.error) for r in runs] == [
        (occurrence + n * DAY, 1, True, None) for n in range(4)
    ]


async def test_the_upkeep_command_does_what_the_daily_job_does(
    db: Settings, database_url: str
) -> None:
    now = datetime.now(UTC)
    customer, _ = await acme()
    old = monday(now.date()) - 30 * WEEK  # past the default 26-week retention
    await seed_week(customer, old, 2)
    await rollup_week(old, now=now)

    result = await asyncio.to_thread(
        run_cli, ["call-leg-upkeep"], cli_env(database_url, db.var_dir)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("call legs: created partitions of weeks: ")
    assert old.isoformat() in result.stdout
    assert await legs_by_week() == {}
    if is_postgres():
        ahead = {monday(now.date()) + n * WEEK for n in range(5)}
        assert ahead <= set(await weekly_partitions())


async def test_ingested_legs_land_in_their_weeks_partitions(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, AdminRole.FULL_ADMIN)
    customer = await factories.customer(org, "Acme")
    this_week = monday(datetime.now(UTC).date())
    moments = [start_of(this_week - n * WEEK) + timedelta(days=n, hours=n) for n in range(17, 21)]
    if is_postgres():  # none of their weeks has a partition yet (earlier tests may have made one)
        for at in moments:
            await fetch_all(f"DROP TABLE IF EXISTS {expected_partition(at)}")
    lines = [
        {
            "orgId": str(customer.org_id),
            "legId": f"leg-{n}",
            "callId": f"call-{n}",
            "startedAt": at.isoformat().replace("+00:00", "Z"),
            "durationSeconds": 60,
            "endpointType": "APP",
            "callType": "NATIONAL",
        }
        for n, at in enumerate(moments)
    ]

    response = await post(client, full.token, "call-legs", ndjson(lines))

    assert response.status_code == 200, response.text
    assert await legs_by_week() == {monday(at.date()): 1 for at in moments}
    if is_postgres():
        placed = await where_legs_are()
        assert placed == {f"leg-{n}": expected_partition(at) for n, at in enumerate(moments)}
