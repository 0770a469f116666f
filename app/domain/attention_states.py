"""Attention states: what the attention feed announces (app/domain/attention.py)
and how changes of it are found.

A customer's attention state is a set of bits (`customer.attention_flags`, the
state last announced; NULL: none taken yet):
- one per customer status (app/domain/statuses.py, the customer list's own
  definitions, read from the kept columns);
- TRIAL_ENDING: its ACTIVE trial (the latest, whose end date the customer keeps
  as `trial_end_date`) ends between today and today + the setting's days;
- one per product family: it has a subscription in that family's
  low-assignment section of the subscription analytics (below half its peer
  group's median assignment, over every partner's subscriptions).

One SQL expression computes the fresh bits of customers `c`; an evaluation
compares them with the kept ones and, for the customers whose bits changed,
writes the new bits with a compare-and-set (`UPDATE ... WHERE attention_flags
= the bits it read`, RETURNING what it changed), so two evaluations at once
write each change once: the second waits for the first one's row lock and then
finds the bits changed under it. The events of each change go through
`write_events` in the same transaction: STATUS_GAINED / STATUS_LOST per status
bit, TRIAL_ENDING and LOW_LICENSE_ASSIGNMENT when their bit is gained. A
customer whose bits are NULL is given its state without events (existing
customers do not flood the feed).

Who evaluates:
- `record_changes(customer_ids, now)`: every writer of subscriptions, license
  lines and trials (through `refresh_customer_columns`) and the ingest of admin
  sign-ins, in their transaction. The low-assignment bits need every partner's
  subscriptions (the peer medians): a write keeps them as they are, and leaves
  a customer with no state yet (NULL) to the daily scan.
- `scan_all(now)`: the daily job (workers/crons.py) and the repair/demo
  refresh of every customer: every bit of every customer, low assignment
  included.
- `record_quality_declines(week, now)`: after the weekly calling rollup.

The instant evaluated is never earlier than the wall clock: a job caught up
late (its occurrence hours ago) evaluates as of now, so it cannot take back
what an evaluation made since then announced (a status flapping back and
forth). A chosen later instant (tests, one-off runs ahead of time) is used as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import orjson
from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.config import Settings, get_settings
from app.db import as_date, execute, fetch_all, is_postgres
from app.domain.attention import NewEvent, write_events
from app.domain.sql import TRUE, Sql, one_of
from app.domain.statuses import StatusClock, status_condition
from app.domain.subscription_analytics import (
    LOW_ASSIGNMENT_MIN_AGE_DAYS,
    low_peer_condition,
    medians_sql,
    pct,
)
from app.models.enums import AttentionEventType, CustomerStatus, ProductFamily

# The bits of `customer.attention_flags`. Stored: a bit keeps its meaning for ever
# (a new state takes a new bit).
STATUS_BITS: dict[CustomerStatus, int] = {
    CustomerStatus.TRIAL: 1 << 0,
    CustomerStatus.ACTIVE: 1 << 1,
    CustomerStatus.EXPIRING_SOON: 1 << 2,
    CustomerStatus.LICENSE_OVERAGE: 1 << 3,
    CustomerStatus.NO_RECENT_ACTIVITY: 1 << 4,
    CustomerStatus.READY_FOR_ORDER_SETUP: 1 << 5,
    CustomerStatus.SUSPENDED: 1 << 6,
    CustomerStatus.EXPIRED: 1 << 7,
}
TRIAL_ENDING_BIT = 1 << 8
LOW_ASSIGNMENT_BITS: dict[ProductFamily, int] = {
    ProductFamily.MEETINGS: 1 << 9,
    ProductFamily.CALLING: 1 << 10,
}
LOW_ASSIGNMENT_MASK = sum(LOW_ASSIGNMENT_BITS.values())


@dataclass(frozen=True)
class AttentionRules:
    """The settings' windows an evaluation uses."""

    expiring_soon_days: int = 30
    no_recent_activity_days: int = 30
    trial_ending_days: int = 14

    @classmethod
    def of(cls, settings: Settings) -> AttentionRules:
        return cls(
            settings.expiring_soon_days,
            settings.no_recent_activity_days,
            settings.attention_trial_ending_days,
        )

    def clock(self, now: datetime) -> StatusClock:
        return StatusClock(now, self.expiring_soon_days, self.no_recent_activity_days)


def _rules(rules: AttentionRules | None) -> AttentionRules:
    return rules if rules is not None else AttentionRules.of(get_settings())


def evaluated_instant(now: datetime) -> datetime:
    """The instant an evaluation asked for `now` evaluates: `now`, or the wall
    clock when that is later (see the module's docstring)."""
    return max(now, utcnow())


def state_flags_sql(clock: StatusClock, trial_ending_days: int) -> Sql:
    """The status and trial-ending bits of the customer `c` as of `clock`: one
    expression, the statuses' own SQL conditions (app/domain/statuses.py)."""
    parts: list[Sql] = []
    for status, bit in STATUS_BITS.items():
        condition = status_condition(status, clock)
        parts.append(Sql(f"CASE WHEN ({condition.text}) THEN {bit} ELSE 0 END", condition.params))
    today = clock.today
    parts.append(
        Sql(
            "CASE WHEN c.trial_end_date >= ? AND c.trial_end_date <= ?"
            f" THEN {TRIAL_ENDING_BIT} ELSE 0 END",
            (today, today + timedelta(days=trial_ending_days)),
        )
    )
    return Sql(" + ".join(f"({p.text})" for p in parts), tuple(v for p in parts for v in p.params))


def low_assignment_sql(now: datetime) -> Sql:
    """`(customer_id, bits)`: the low-assignment bits of every customer that has
    any, set-wise: per family, the subscription analytics' peers and medians
    (one grouping of every partner's subscriptions with lines of the family) and
    its low-assignment rule (added at least LOW_ASSIGNMENT_MIN_AGE_DAYS ago,
    ratio below half its band's median), as `_low_pass` reads them."""
    low = low_peer_condition(now - timedelta(days=LOW_ASSIGNMENT_MIN_AGE_DAYS))
    branches: list[str] = []
    for family, bit in LOW_ASSIGNMENT_BITS.items():
        branches.append(
            f"""SELECT * FROM (WITH {medians_sql(family)}
SELECT DISTINCT p.customer_id, {bit} AS bit
FROM peers p JOIN medians ON medians.band = p.band
WHERE {low.text}
) AS low_{family.value.lower()}"""
        )
    return Sql(
        "SELECT customer_id, SUM(bit) AS bits FROM ("
        + "\nUNION ALL\n".join(branches)
        + ") AS low GROUP BY customer_id",
        low.params * len(branches),
    )


def fresh_flags_sql(
    where: Sql, clock: StatusClock, rules: AttentionRules, with_low_assignment: bool
) -> Sql:
    """`(id, partner_id, old, fresh)` of the customers `c` matching `where` whose
    fresh bits differ from their kept ones (or who have none kept). Without
    `with_low_assignment` the low-assignment bits are kept as they are."""
    state = state_flags_sql(clock, rules.trial_ending_days)
    if with_low_assignment:
        low = low_assignment_sql(clock.now)
        fresh = Sql(f"({state.text}) + COALESCE(low.bits, 0)", state.params)
        source = Sql(
            f"customer c LEFT JOIN ({low.text}) AS low ON low.customer_id = c.id", low.params
        )
    else:
        fresh = Sql(
            f"({state.text}) + (COALESCE(c.attention_flags, 0) & {LOW_ASSIGNMENT_MASK})",
            state.params,
        )
        source = Sql("customer c")
    return Sql(
        "SELECT id, partner_id, old, fresh FROM ("
        f"SELECT c.id, c.partner_id, c.attention_flags AS old, {fresh.text} AS fresh"
        f" FROM {source.text} WHERE {where.text}"
        ") AS f WHERE old IS NULL OR old <> fresh",
        (*fresh.params, *source.params, *where.params),
    )


@dataclass(frozen=True)
class Change:
    """One customer's bits as kept (None: none yet) and as evaluated."""

    customer_id: int
    partner_id: int
    old: int | None
    fresh: int


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did: customers whose state it changed (with events),
    customers given a first state (silently), events written."""

    changed: int
    first_states: int
    events: int

    def summary(self) -> str:
        return (
            f"{self.events} attention event(s) for {self.changed} customer(s)"
            f" ({self.first_states} first state(s) recorded silently)"
        )


async def _compare_and_set(changes: Sequence[Change]) -> set[int]:
    """Write the fresh bits of each customer whose kept bits are still the ones
    read (NULL compared as -1); returns the customers written."""
    if not changes:
        return set()
    if is_postgres():
        values = Sql(
            "SELECT UNNEST(CAST(? AS INTEGER[])) AS id, UNNEST(CAST(? AS INTEGER[])) AS old,"
            " UNNEST(CAST(? AS INTEGER[])) AS fresh",
            (
                [c.customer_id for c in changes],
                [-1 if c.old is None else c.old for c in changes],
                [c.fresh for c in changes],
            ),
        )
    else:
        triples = [[c.customer_id, -1 if c.old is None else c.old, c.fresh] for c in changes]
        values = Sql(
            "SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS old,"
            " json_extract(value, '$[2]') AS fresh FROM json_each(?)",
            (orjson.dumps(triples).decode(),),
        )
    rows = await fetch_all(
        f"UPDATE customer SET attention_flags = v.fresh FROM ({values.text}) AS v"
        " WHERE customer.id = v.id AND COALESCE(customer.attention_flags, -1) = v.old"
        " RETURNING customer.id",
        values.params,
    )
    return {int(r["id"]) for r in rows}


async def _ending_trials(customer_ids: Sequence[int]) -> dict[int, tuple[int, date]]:
    """The latest ACTIVE trial of each customer: (its id, its end date)."""
    if not customer_ids:
        return {}
    where = one_of("customer_id", list(customer_ids))
    rows = await fetch_all(
        f"SELECT customer_id, id, end_date FROM trial WHERE status = 'ACTIVE' AND {where.text}"
        " ORDER BY customer_id, end_date, id",
        where.params,
    )
    return {int(r["customer_id"]): (int(r["id"]), as_date(r["end_date"])) for r in rows}


def _events(change: Change, now: datetime, trials: dict[int, tuple[int, date]]) -> list[NewEvent]:
    """The events of one change of a customer's bits (it had bits before)."""
    assert change.old is not None
    gained, lost = change.fresh & ~change.old, change.old & ~change.fresh
    base = {"partner_id": change.partner_id, "customer_id": change.customer_id, "occurred_at": now}
    events: list[NewEvent] = []
    for kind, bits in (
        (AttentionEventType.STATUS_LOST, lost),
        (AttentionEventType.STATUS_GAINED, gained),
    ):
        for status, bit in STATUS_BITS.items():
            if bits & bit:
                events.append(
                    NewEvent(type=kind, status=status, detail={"status": status.value}, **base)
                )
    if gained & TRIAL_ENDING_BIT and change.customer_id in trials:
        trial_id, end_date = trials[change.customer_id]
        events.append(
            NewEvent(
                type=AttentionEventType.TRIAL_ENDING,
                detail={
                    "trialId": trial_id,
                    "endDate": end_date.isoformat(),
                    "daysLeft": (end_date - now.date()).days,
                },
                once_key=f"trial_ending:{trial_id}:{end_date.isoformat()}",
                **base,
            )
        )
    for family, bit in LOW_ASSIGNMENT_BITS.items():
        if gained & bit:
            events.append(
                NewEvent(
                    type=AttentionEventType.LOW_LICENSE_ASSIGNMENT,
                    detail={"family": family.value},
                    **base,
                )
            )
    return events


async def _evaluate(
    where: Sql, now: datetime, rules: AttentionRules, with_low_assignment: bool
) -> Evaluation:
    """Find the changes of the customers matching `where`, write them and their
    events (inside the caller's transaction)."""
    now = evaluated_instant(now)
    query = fresh_flags_sql(where, rules.clock(now), rules, with_low_assignment)
    rows = await fetch_all(query.text, query.params)
    if not rows:
        return Evaluation(0, 0, 0)
    changes = sorted(
        (
            Change(
                int(r["id"]),
                int(r["partner_id"]),
                None if r["old"] is None else int(r["old"]),
                int(r["fresh"]),
            )
            for r in rows
        ),
        key=lambda c: c.customer_id,
    )
    written = await _compare_and_set(changes)
    announced = [c for c in changes if c.customer_id in written and c.old is not None]
    ending = [c.customer_id for c in announced if c.fresh & ~(c.old or 0) & TRIAL_ENDING_BIT]
    trials = await _ending_trials(ending)
    events = [e for c in announced for e in _events(c, now, trials)]
    done = await write_events(events)
    return Evaluation(len(announced), len(written) - len(announced), len(done))


async def record_changes(
    customer_ids: Sequence[int], now: datetime, rules: AttentionRules | None = None
) -> Evaluation:
    """Announce what changed in these customers' attention states as of `now`,
    inside the caller's transaction (the one that wrote the change). The
    low-assignment bits stay as they are (the daily scan evaluates them), and a
    customer with no state yet is left to the daily scan."""
    ids = sorted(set(customer_ids))
    if not ids:
        return Evaluation(0, 0, 0)
    where = one_of("c.id", ids) & Sql("c.attention_flags IS NOT NULL")
    return await _evaluate(where, now, _rules(rules), with_low_assignment=False)


async def scan_all(now: datetime, rules: AttentionRules | None = None) -> Evaluation:
    """Evaluate every customer's whole attention state as of `now` (the daily job,
    a repair) and announce each change, in one transaction of its own (or the
    caller's): customers without a state yet get theirs silently."""
    async with in_transaction():
        return await _evaluate(TRUE, now, _rules(rules), with_low_assignment=True)


# ---------------------------------------------------------- call quality ----


async def record_quality_declines(
    week_start: date, now: datetime, rise_points: float | None = None
) -> int:
    """CALL_QUALITY_DECLINING for each customer whose share of poor-quality legs
    (poor / measured legs, app/domain/calling_rollup.py) in the rolled-up week
    `week_start` is at least `rise_points` percentage points above the week
    before's (both weeks with measured legs), once per customer and week (a
    re-run writes nothing new), inside the caller's transaction (the rollup's:
    app/domain/calling_rollup.py). Returns how many events it wrote."""
    if rise_points is None:
        rise_points = get_settings().attention_quality_rise_points
    now = evaluated_instant(now)
    previous = week_start - timedelta(weeks=1)
    # Compared exactly, in integers: 100 * (p/q - pp/pq) >= rise  <=>
    # 100 * (p * pq - pp * q) >= rise * q * pq (q, pq > 0).
    rows = await fetch_all(
        """SELECT cur.customer_id, c.partner_id, cur.quality_legs AS q, cur.poor_legs AS p,
       prev.quality_legs AS pq, prev.poor_legs AS pp
FROM calling_weekly_customer cur
JOIN calling_weekly_customer prev
  ON prev.customer_id = cur.customer_id AND prev.week_start = ?
JOIN customer c ON c.id = cur.customer_id
WHERE cur.week_start = ? AND cur.quality_legs > 0 AND prev.quality_legs > 0
  AND 100 * (CAST(cur.poor_legs AS BIGINT) * prev.quality_legs
             - CAST(prev.poor_legs AS BIGINT) * cur.quality_legs)
      >= CAST(? AS DOUBLE PRECISION) * CAST(cur.quality_legs AS BIGINT) * prev.quality_legs
ORDER BY cur.customer_id""",
        [previous, week_start, float(rise_points)],
    )
    events = []
    for r in rows:
        share, before = 100.0 * r["p"] / r["q"], 100.0 * r["pp"] / r["pq"]
        events.append(
            NewEvent(
                partner_id=int(r["partner_id"]),
                customer_id=int(r["customer_id"]),
                type=AttentionEventType.CALL_QUALITY_DECLINING,
                occurred_at=now,
                detail={
                    "week": week_start.isoformat(),
                    "poorShare": pct(r["p"], r["q"]),
                    "previousPoorShare": pct(r["pp"], r["pq"]),
                    "risePoints": round(share - before, 1),
                },
                once_key=f"call_quality:{week_start.isoformat()}",
            )
        )
    return len(await write_events(events))


# ------------------------------------------------------------- retention ----


async def delete_old_events(now: datetime, retention_days: int) -> int:
    """Delete the events that occurred more than `retention_days` before `now`
    (their deliveries with them); returns how many."""
    cutoff = now - timedelta(days=retention_days)
    # The deliveries first: SQLite enforces the foreign keys' cascade only when told to.
    await execute(
        "DELETE FROM attention_delivery WHERE event_id IN"
        " (SELECT id FROM attention_event WHERE occurred_at < ?)",
        [cutoff],
    )
    rows = await fetch_all(
        "DELETE FROM attention_event WHERE occurred_at < ? RETURNING id", [cutoff]
    )
    return len(rows)
