"""The weekly rollup against a plain-Python recomputation, on randomized weeks of
call legs written straight into call_leg (so anything the table can hold is
covered: legs without a user or without some metric, IPv6, queue outcomes on
legs of other features, calls whose legs have several users, features and
outcomes, call ids shared by two customers, legs on both sides of the week's
bounds). Every row of all four rollup tables is compared, on both databases."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest

from app.db import as_date, execute_many, fetch_all
from app.domain.calling_rollup import ROLLUP_TABLES, rollup_week
from app.models.enums import CallFeature, EndpointType, QueueOutcome
from tests import factories

WEEK = date(2026, 10, 26)  # a Monday
START = datetime(WEEK.year, WEEK.month, WEEK.day, tzinfo=UTC)
END = START + timedelta(weeks=1)
COLUMNS = (
    "customer_id",
    "leg_id",
    "call_id",
    "user_uuid",
    "started_at",
    "duration_seconds",
    "video_seconds",
    "has_audio",
    "has_video",
    "endpoint_type",
    "ip_version",
    "jitter_ms",
    "latency_ms",
    "packet_loss_pct",
    "call_type",
    "feature",
    "queue_outcome",
    "queue_wait_seconds",
)


@dataclass(frozen=True)
class Leg:
    customer_id: int
    leg_id: str
    call_id: str
    user_uuid: uuid.UUID | None
    started_at: datetime
    duration_seconds: int
    video_seconds: int
    endpoint_type: EndpointType
    ip_version: int
    jitter_ms: float | None
    latency_ms: float | None
    packet_loss_pct: float | None
    feature: CallFeature
    queue_outcome: QueueOutcome | None
    queue_wait_seconds: int | None

    def row(self) -> tuple:
        return (
            self.customer_id,
            self.leg_id,
            self.call_id,
            self.user_uuid,
            self.started_at,
            self.duration_seconds,
            self.video_seconds,
            True,
            self.video_seconds > 0,
            self.endpoint_type.value,
            self.ip_version,
            self.jitter_ms,
            self.latency_ms,
            self.packet_loss_pct,
            "NATIONAL",
            self.feature.value,
            self.queue_outcome.value if self.queue_outcome else None,
            self.queue_wait_seconds,
        )


def _metric(rng: random.Random, threshold: float) -> float | None:
    """None, on the threshold (fine), just above it (poor), or anywhere."""
    return rng.choice(
        [None, threshold, threshold + 0.01, round(rng.uniform(0, threshold * 1.3), 2)]
        + [round(rng.uniform(0, threshold), 2)] * 4
    )


def _when(rng: random.Random) -> datetime:
    """Mostly inside the week; now and then on either side of one of its bounds."""
    edges = [
        START,  # Monday 00:00: in
        END - timedelta(microseconds=1),  # Sunday 23:59:59.999999: in
        END,  # next Monday 00:00: out
        START - timedelta(seconds=1),  # the Sunday before: out
    ]
    if rng.random() < 0.08:
        return rng.choice(edges)
    return START + timedelta(seconds=rng.randrange(7 * 86400))


def random_legs(rng: random.Random, customers: list[int]) -> list[Leg]:
    # Users: a pool per customer; one uuid is shared by two customers (it counts
    # once in each). A few heavy callers land in the MEDIUM and HIGH buckets.
    shared = uuid.uuid4()
    pools = {c: [uuid.uuid4() for _ in range(rng.randint(2, 9))] + [shared] for c in customers}
    legs: list[Leg] = []
    n = 0

    def add_leg(customer: int, call_id: str, user: uuid.UUID | None, **fixed: object) -> None:
        nonlocal n
        n += 1
        feature = rng.choice(list(CallFeature) + [CallFeature.NONE] * 4)
        queued = feature is CallFeature.CALL_QUEUE or rng.random() < 0.05
        drawn = Leg(
            customer_id=customer,
            leg_id=f"l{n}",
            call_id=call_id,
            user_uuid=user,
            started_at=_when(rng),
            duration_seconds=rng.randint(0, 3600),
            video_seconds=rng.choice([0, 0, rng.randint(1, 1800)]),
            endpoint_type=rng.choice(list(EndpointType)),
            ip_version=rng.choice([4, 4, 4, 6]),
            jitter_ms=_metric(rng, 150),
            latency_ms=_metric(rng, 400),
            packet_loss_pct=_metric(rng, 5.0),
            feature=feature,
            queue_outcome=rng.choice([None, *QueueOutcome]) if queued else None,
            queue_wait_seconds=rng.choice([None, rng.randint(0, 600)]) if queued else None,
        )
        legs.append(replace(drawn, **fixed))  # type: ignore[arg-type]

    def add_call(customer: int, call_id: str, users: list[uuid.UUID | None]) -> None:
        """A call's legs mostly share its start and feature; some stray."""
        feature = rng.choice(list(CallFeature) + [CallFeature.NONE] * 4)
        started = _when(rng)
        for user in users:
            fixed: dict[str, object] = {}
            if rng.random() < 0.9:
                fixed["started_at"] = started
            if rng.random() < 0.8:
                fixed["feature"] = feature
                if feature is CallFeature.CALL_QUEUE:
                    fixed["queue_outcome"] = rng.choice([None, *QueueOutcome])
                    fixed["queue_wait_seconds"] = rng.choice([None, rng.randint(0, 600)])
            add_leg(customer, call_id, user, **fixed)

    def add_edges(customer: int) -> None:
        """Calls on the rules' edges, inside the week."""
        inside = {"started_at": START + timedelta(days=2)}
        # Five distinct calls over seven legs: LOW (by legs it would be MEDIUM);
        # twenty over twenty-three: MEDIUM (by legs, HIGH).
        for calls, doubled in ((5, 2), (20, 3)):
            user = uuid.uuid4()
            for call in range(calls):
                for _ in range(2 if call < doubled else 1):
                    add_leg(customer, f"e{calls}-{call}", user, **inside)
        # A queued call over three legs by two users: its outcome is the greatest
        # (ANSWERED over ABANDONED), its wait the longest of the legs with an outcome.
        user = uuid.uuid4()
        queue = {**inside, "feature": CallFeature.CALL_QUEUE}
        for outcome, wait, who in (
            (QueueOutcome.ANSWERED, 10, user),
            (QueueOutcome.ABANDONED, 50, None),
            (None, 999, user),
            (QueueOutcome.ABANDONED, None, user),
        ):
            add_leg(
                customer, "queued", who, queue_outcome=outcome, queue_wait_seconds=wait, **queue
            )

    for customer in customers:
        pool = pools[customer]
        for call in range(rng.randint(5, 40)):
            # 1-4 legs, by one or several users (a user may have two legs of a call).
            users = [
                rng.choice(pool) if rng.random() < 0.85 else None
                for _ in range(rng.choice([1, 1, 2, 2, 3, 4]))
            ]
            # Call ids repeat across customers: each customer's calls are its own.
            add_call(customer, f"c{call}", users)
        for heavy, calls in ((pool[0], rng.randint(6, 20)), (pool[1], rng.randint(21, 30))):
            for call in range(calls):
                add_call(customer, f"h{heavy.hex[:6]}-{call}", [heavy])
        add_edges(customer)
    return legs


def measured(leg: Leg) -> bool:
    return (
        leg.endpoint_type not in (EndpointType.ANALOG, EndpointType.THIRD_PARTY)
        and leg.ip_version == 4
        and None not in (leg.jitter_ms, leg.latency_ms, leg.packet_loss_pct)
    )


def poor(leg: Leg) -> bool:
    return measured(leg) and (
        leg.jitter_ms > 150 or leg.latency_ms > 400 or leg.packet_loss_pct > 5  # type: ignore[operator]
    )


def expected_tables(legs: list[Leg], week: date) -> dict[str, set[tuple]]:
    """Every row of the four rollup tables for `week`, computed from the legs."""
    start = datetime(week.year, week.month, week.day, tzinfo=UTC)
    by_customer: dict[int, list[Leg]] = defaultdict(list)
    for leg in legs:
        if start <= leg.started_at < start + timedelta(weeks=1):
            by_customer[leg.customer_id].append(leg)
    tables: dict[str, set[tuple]] = {t: set() for t in ROLLUP_TABLES}
    for customer, week_legs in by_customer.items():
        user_calls: dict[uuid.UUID, set[str]] = defaultdict(set)
        for leg in week_legs:
            if leg.user_uuid is not None:
                user_calls[leg.user_uuid].add(leg.call_id)
        counts = [len(calls) for calls in user_calls.values()]
        tables["calling_weekly_customer"].add(
            (
                customer,
                len({leg.call_id for leg in week_legs}),
                len(week_legs),
                (sum(leg.duration_seconds for leg in week_legs) + 30) // 60,
                (sum(leg.video_seconds for leg in week_legs) + 30) // 60,
                len(user_calls),
                sum(1 for c in counts if c <= 5),
                sum(1 for c in counts if 5 < c <= 20),
                sum(1 for c in counts if c > 20),
                sum(1 for leg in week_legs if measured(leg)),
                sum(1 for leg in week_legs if poor(leg)),
            )
        )
        endpoints: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for leg in week_legs:
            if measured(leg):
                endpoints[leg.endpoint_type.value][0] += 1
                endpoints[leg.endpoint_type.value][1] += poor(leg)
        tables["calling_weekly_endpoint"] |= {
            (customer, endpoint, total, bad) for endpoint, (total, bad) in endpoints.items()
        }
        features: dict[str, set[str]] = defaultdict(set)
        for leg in week_legs:
            if leg.feature is not CallFeature.NONE:
                features[leg.feature.value].add(leg.call_id)
        tables["calling_weekly_feature"] |= {
            (customer, feature, len(calls)) for feature, calls in features.items()
        }
        # A queued call: its CALL_QUEUE legs with an outcome; its outcome is the
        # greatest of theirs (as text), its wait the longest of theirs.
        queued: dict[str, list[Leg]] = defaultdict(list)
        for leg in week_legs:
            if leg.feature is CallFeature.CALL_QUEUE and leg.queue_outcome is not None:
                queued[leg.call_id].append(leg)
        if queued:
            outcomes = {
                call: (
                    max(leg.queue_outcome.value for leg in call_legs),  # type: ignore[union-attr]
                    max(
                        (w for leg in call_legs if (w := leg.queue_wait_seconds) is not None),
                        default=0,
                    ),
                )
                for call, call_legs in queued.items()
            }
            waits = {
                o: [wait for outcome, wait in outcomes.values() if outcome == o.value]
                for o in QueueOutcome
            }
            tables["calling_weekly_queue"].add(
                (
                    customer,
                    len(outcomes),
                    len(waits[QueueOutcome.ANSWERED]),
                    len(waits[QueueOutcome.ABANDONED]),
                    len(waits[QueueOutcome.TIMED_OUT]),
                    len(waits[QueueOutcome.OVERFLOWED]),
                    len(waits[QueueOutcome.TRANSFERRED]),
                    sum(waits[QueueOutcome.ANSWERED]),
                    sum(waits[QueueOutcome.ABANDONED]),
                )
            )
    return tables


SELECTS = {
    "calling_weekly_customer": "customer_id, total_calls, total_legs, call_minutes,"
    " video_minutes, active_users, users_low, users_medium, users_high, quality_legs, poor_legs",
    "calling_weekly_endpoint": "customer_id, endpoint_type, total_legs, poor_legs",
    "calling_weekly_feature": "customer_id, feature, calls",
    "calling_weekly_queue": "customer_id, total_calls, answered_calls, abandoned_calls,"
    " timed_out_calls, overflowed_calls, transferred_calls, answer_wait_seconds,"
    " abandon_wait_seconds",
}


async def rolled_up(week: date) -> dict[str, set[tuple]]:
    tables: dict[str, set[tuple]] = {}
    for table, columns in SELECTS.items():
        rows = await fetch_all(f"SELECT {columns} FROM {table} WHERE week_start = ?", [week])
        tables[table] = {tuple(r.values()) for r in rows}
        assert len(tables[table]) == len(rows), f"{table}: duplicate rows"
    return tables


async def all_rows() -> dict[str, list[dict]]:
    out = {}
    for table in ROLLUP_TABLES:
        rows = await fetch_all(f"SELECT * FROM {table}")
        out[table] = sorted(
            (
                {k: (as_date(v) if k == "week_start" else v) for k, v in r.items() if k != "id"}
                for r in rows
            ),
            key=repr,
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_rollup_table_matches_a_recomputation_from_the_legs(db, seed: int) -> None:
    rng = random.Random(seed)
    partner = await factories.partner(f"Rollup {seed}", f"rollup{seed}.example")
    customers = [(await factories.customer(partner)).id for _ in range(7)]
    legs = random_legs(rng, customers[:6])  # the seventh has no legs: no rows
    # The week before has legs of its own, rolled up first: rebuilding WEEK leaves it be.
    before = WEEK - timedelta(weeks=1)
    earlier = [
        replace(leg, leg_id=f"{leg.leg_id}-b", started_at=leg.started_at - timedelta(weeks=1))
        for leg in legs[::3]
    ]
    await execute_many(
        f"INSERT INTO call_leg ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [leg.row() for leg in legs + earlier],
    )
    expected = expected_tables(legs + earlier, WEEK)
    # The draw covers what it should.
    week_legs = [leg for leg in legs if START <= leg.started_at < END]
    assert {leg.endpoint_type for leg in week_legs} == set(EndpointType)
    assert {leg.feature for leg in week_legs} == set(CallFeature)
    assert any(leg.user_uuid is None for leg in week_legs)
    assert any(leg.ip_version == 6 for leg in week_legs)
    assert any(not measured(leg) and leg.ip_version == 4 for leg in week_legs)
    assert any(leg.started_at in (START, END - timedelta(microseconds=1)) for leg in week_legs)
    assert any(leg.started_at in (END, START - timedelta(seconds=1)) for leg in legs)
    assert {r[6] for r in expected["calling_weekly_customer"]} - {0}  # someone is LOW ...
    assert {r[7] for r in expected["calling_weekly_customer"]} - {0}  # ... MEDIUM ...
    assert {r[8] for r in expected["calling_weekly_customer"]} - {0}  # ... and HIGH
    assert len(expected["calling_weekly_queue"]) >= 3

    await rollup_week(before)
    before_rows = await rolled_up(before)
    assert before_rows == expected_tables(legs + earlier, before)
    await rollup_week(WEEK)
    assert await rolled_up(WEEK) == expected
    everything = await all_rows()
    await rollup_week(WEEK)  # rebuilding gives the same rows and leaves other weeks be
    assert await all_rows() == everything
    assert await rolled_up(before) == before_rows
