"""Attention events written with their causes (app/domain/attention_states.py):
each type by its real cause (trial mutations, ingest of admin sign-ins, days
passing through the daily job, the weekly rollup); the event and its change
commit or roll back together; a customer's first state is recorded silently; a
scripted fortnight yields exactly the events a plain-Python recomputation of
the customers' states expects, once each, with two evaluators at once every
day; retention. Both engines."""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
import pytest
from tortoise.transactions import in_transaction

from app.config import Settings
from app.db import execute_many
from app.domain.access import Viewer
from app.domain.attention import NewEvent, write_events
from app.domain.attention_states import (
    Change,
    _compare_and_set,
    record_changes,
    record_quality_declines,
    scan_all,
)
from app.domain.calling_rollup import refreshed_week, rollup_week
from app.domain.cron_runs import REFRESH_CALLING_WEEK
from app.domain.customer_columns import refresh_customer_columns
from app.domain.errors import MutationRejected
from app.domain.ingest import ingest
from app.domain.statuses import StatusClock
from app.domain.subscription_analytics import SubscriptionAnalytics
from app.domain.trials import (
    NewCustomer,
    TrialLicenseRequest,
    cancel_trial,
    expire_due_trials,
    extend_trial,
    start_trial,
)
from app.models.attention import AttentionDelivery, AttentionEvent, AttentionWebhook
from app.models.customers import Customer
from app.models.enums import (
    FAMILY_LICENSE_TYPES,
    LICENSE_PRODUCT,
    AdminRole,
    AttentionEventType,
    LicenseType,
    Product,
    ProductFamily,
    Region,
    SubscriptionKind,
    SubscriptionStatus,
    TrialStatus,
)
from app.models.subscriptions import LicenseLine, Subscription
from app.models.trials import Trial
from app.queue import JobQueue
from tests import factories
from tests.cli_process import cli_env, run_cli
from tests.kept_columns import recomputed
from tests.world import subscription as add_subscription
from workers.crons import catch_up, run_customer_dates

S = SubscriptionStatus
HOLDING = {"ACTIVE", "SUSPENDED", "PENDING_SETUP"}


@pytest.fixture
async def ctx(db: Settings, redis_url: str) -> AsyncIterator[dict[str, Any]]:
    """What a worker hands its jobs: settings and the queue."""
    queue = JobQueue(redis_url)
    try:
        yield {"settings": db, "queue": queue}
    finally:
        await queue.close()


async def _viewer(org: Any, role: AdminRole = AdminRole.FULL_ADMIN) -> Viewer:
    member = await factories.admin(org, role)
    await member.admin.fetch_related("partner")
    return Viewer(admin=member.admin, partner=member.admin.partner)


def _at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def _text(value: Any) -> str:
    return getattr(value, "value", value)


Event = tuple[int, str, str | None, str]  # customer, type, status, detail as sorted JSON


def _event(customer_id: int, kind: str, status: str | None, detail: dict[str, Any]) -> Event:
    return (customer_id, kind, status, orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode())


async def _events_after(last_id: int = 0) -> list[Event]:
    rows = await AttentionEvent.filter(id__gt=last_id).order_by("id")
    return [
        _event(r.customer_id, _text(r.type), _text(r.status) if r.status else None, r.detail)
        for r in rows
    ]


async def _last_event_id() -> int:
    last = await AttentionEvent.all().order_by("-id").first()
    return last.id if last else 0


def _status(kind: str, customer_id: int, status: str) -> Event:
    return _event(customer_id, kind, status, {"status": status})


def _gained(customer_id: int, *statuses: str) -> list[Event]:
    return [_status("STATUS_GAINED", customer_id, s) for s in statuses]


def _lost(customer_id: int, *statuses: str) -> list[Event]:
    return [_status("STATUS_LOST", customer_id, s) for s in statuses]


# ------------------------------------------------- a plain-Python model ----


def _band(total: int) -> int:
    return 1 if total <= 50 else 2 if total <= 250 else 3 if total <= 1000 else 4


async def _low_assignment(now: datetime) -> dict[int, set[str]]:
    """Per customer, the families it has a low-assignment subscription of (SPEC.md:
    below half the median assignment of its size band's peers, every partner's
    subscriptions in a holding status, added 30 days or more ago), from the rows."""
    subs = await Subscription.filter(status__in=list(HOLDING))
    lines: dict[int, list[LicenseLine]] = defaultdict(list)
    for line in await LicenseLine.filter(subscription_id__in=[s.id for s in subs]):
        lines[line.subscription_id].append(line)
    out: dict[int, set[str]] = defaultdict(set)
    for family, types in FAMILY_LICENSE_TYPES.items():
        peers = []
        for s in subs:
            mine = [x for x in lines[s.id] if _text(x.license_type) in {t.value for t in types}]
            total = sum(x.quantity for x in mine)
            if mine and total > 0:
                peers.append((s, _band(total), sum(x.assigned for x in mine) / total))
        by_band: dict[int, list[float]] = defaultdict(list)
        for _, band, ratio in peers:
            by_band[band].append(ratio)
        medians = {band: statistics.median(ratios) for band, ratios in by_band.items()}
        for s, band, ratio in peers:
            if s.added_at <= now - timedelta(days=30) and ratio < 0.5 * medians[band]:
                out[s.customer_id].add(family.value)
    return out


async def _states(now: datetime, customer_ids: Iterable[int] | None = None) -> dict[int, set[str]]:
    """Every customer's attention states as of `now`, from its rows in plain Python:
    the customer list's statuses (SPEC.md), TRIAL_ENDING (its latest active trial
    ends within 14 days) and LOW:<family>."""
    customers = {c.id: c for c in await Customer.all()}
    ids = list(customer_ids) if customer_ids is not None else list(customers)
    today = now.date()
    columns = await recomputed(ids, today)
    low = await _low_assignment(now)
    out: dict[int, set[str]] = {}
    for cid in ids:
        col = columns[cid]
        active_at = customers[cid].last_admin_activity_at
        trial = col["trial_end_date"] is not None and col["trial_end_date"] >= today
        expiring = col["expiring_end_date"]
        held = {
            "TRIAL": trial,
            "ACTIVE": col["has_active"],
            "EXPIRING_SOON": expiring is not None and today <= expiring <= today + timedelta(30),
            "LICENSE_OVERAGE": col["has_overage"],
            "NO_RECENT_ACTIVITY": active_at is None or active_at < now - timedelta(days=30),
            "READY_FOR_ORDER_SETUP": col["has_pending_setup"],
            "SUSPENDED": col["has_suspended"],
            "EXPIRED": not col["holds_licenses"] and not trial,
            "TRIAL_ENDING": trial and col["trial_end_date"] <= today + timedelta(days=14),
        }
        out[cid] = {name for name, on in held.items() if on} | {f"LOW:{f}" for f in low[cid]}
    return out


class Model:
    """What the feed should say: the announced state of each customer, and the
    events each evaluation should write (once keys remembered)."""

    def __init__(self) -> None:
        self.announced: dict[int, set[str] | None] = {}
        self.once_keys: set[tuple[int, str]] = set()
        self.expected: list[Event] = []

    async def evaluate(
        self, now: datetime, customer_ids: Iterable[int] | None = None, *, whole: bool
    ) -> list[Event]:
        """An evaluation as of `now` of these customers (None: all): `whole` (the
        daily scan) or a write's (low assignment kept, no first state)."""
        fresh = await _states(now, customer_ids)
        trials = {
            t.customer_id: t
            for t in await Trial.filter(status=TrialStatus.ACTIVE).order_by("end_date", "id")
        }
        events: list[Event] = []
        for cid in sorted(fresh):
            before = self.announced.get(cid)
            state = fresh[cid]
            if not whole:
                if before is None:
                    continue
                state = {s for s in state if not s.startswith("LOW:")} | {
                    s for s in before if s.startswith("LOW:")
                }
            self.announced[cid] = state
            if before is None:
                continue
            events += _lost(
                cid, *sorted(s for s in before - state if ":" not in s and s != "TRIAL_ENDING")
            )
            events += _gained(
                cid, *sorted(s for s in state - before if ":" not in s and s != "TRIAL_ENDING")
            )
            if "TRIAL_ENDING" in state - before:
                t = trials[cid]
                key = (cid, f"trial_ending:{t.id}:{t.end_date.isoformat()}")
                if key not in self.once_keys:
                    self.once_keys.add(key)
                    events.append(
                        _event(
                            cid,
                            "TRIAL_ENDING",
                            None,
                            {
                                "trialId": t.id,
                                "endDate": t.end_date.isoformat(),
                                "daysLeft": (t.end_date - now.date()).days,
                            },
                        )
                    )
            for family in sorted(s for s in state - before if s.startswith("LOW:")):
                events.append(_event(cid, "LOW_LICENSE_ASSIGNMENT", None, {"family": family[4:]}))
        self.expected += events
        return events


async def _check(model: Model, since: int, expected: list[Event]) -> int:
    """The events written since `since` are `expected` (as a multiset); returns
    the last event id."""
    got = await _events_after(since)
    assert sorted(got) == sorted(expected)
    return await _last_event_id()


# ------------------------------------------------------ outbox atomicity ----


async def test_a_failure_after_the_change_leaves_neither_change_nor_event(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")
    day = datetime.now(UTC).date() + timedelta(days=1)
    await scan_all(_at(day))  # its first state, silently
    assert await AttentionEvent.all().count() == 0
    flags = (await Customer.get(id=acme.id)).attention_flags
    assert flags is not None
    hook = await AttentionWebhook.create(
        partner=org, url="https://hooks.example/x", topics=["STATUS_GAINED", "STATUS_LOST"],
        created_at=_at(day), updated_at=_at(day),
    )  # fmt: skip

    with pytest.raises(RuntimeError, match="after the change"):
        async with in_transaction():
            await add_subscription(acme, S.SUSPENDED, day + timedelta(days=200), today=day)
            # Inside the transaction the events (and their delivery) are there ...
            assert await AttentionEvent.all().count() == 2  # SUSPENDED gained, EXPIRED lost
            assert await AttentionDelivery.filter(webhook=hook).count() == 2
            raise RuntimeError("after the change")
    # ... and roll back with it.
    assert await Subscription.filter(customer=acme).count() == 0
    assert (await Customer.get(id=acme.id)).attention_flags == flags
    assert await AttentionEvent.all().count() == 0
    assert await AttentionDelivery.all().count() == 0

    # The same write, committed: the change and its events together.
    await add_subscription(acme, S.SUSPENDED, day + timedelta(days=200), today=day)
    assert sorted(await _events_after()) == sorted(
        _gained(acme.id, "SUSPENDED") + _lost(acme.id, "EXPIRED")
    )
    assert await AttentionDelivery.filter(webhook=hook).count() == 2


async def test_a_failed_daily_scan_writes_nothing(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")
    day = datetime.now(UTC).date() + timedelta(days=1)
    await add_subscription(acme, S.ACTIVE, day + timedelta(days=40), today=day)
    await scan_all(_at(day))
    flags = (await Customer.get(id=acme.id)).attention_flags
    with pytest.raises(RuntimeError):
        async with in_transaction():
            done = await scan_all(_at(day + timedelta(days=15)))  # EXPIRING_SOON reached
            assert done.events == 1
            raise RuntimeError("the job died")
    assert (await Customer.get(id=acme.id)).attention_flags == flags
    assert await AttentionEvent.all().count() == 0


# --------------------------------------------------- each type, its cause ----


async def test_trial_mutations_announce_what_they_change(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await _viewer(org)
    acme = await factories.customer(org, "Acme")
    day = datetime.now(UTC).date() + timedelta(days=2)
    await scan_all(_at(day))  # Acme: EXPIRED, NO_RECENT_ACTIVITY, recorded silently
    assert await AttentionEvent.all().count() == 0

    row = await start_trial(
        viewer, customer_id=acme.id, new_customer=None,
        products=[TrialLicenseRequest(Product.CALLING, 10)], duration_days=10, today=day,
    )  # fmt: skip
    trial = await Trial.get(customer_id=acme.id)
    assert row.id == trial.id
    end = day + timedelta(days=10)
    seen = await _last_event_id()
    assert sorted(await _events_after()) == sorted(
        _gained(acme.id, "TRIAL", "EXPIRING_SOON")
        + _lost(acme.id, "EXPIRED")
        + [
            _event(
                acme.id, "TRIAL_ENDING", None,
                {"trialId": trial.id, "endDate": end.isoformat(), "daysLeft": 10},
            )
        ]
    )  # fmt: skip
    ending = await AttentionEvent.get(customer_id=acme.id, type="TRIAL_ENDING")
    assert ending.once_key == f"trial_ending:{trial.id}:{end.isoformat()}"
    assert ending.partner_id == org.id

    # Extended by 30 days: out of both windows (trial ending's loss says nothing).
    await extend_trial(viewer, trial.id, 30, now=_at(day, 11))
    assert await _events_after(seen) == _lost(acme.id, "EXPIRING_SOON")
    seen = await _last_event_id()

    await cancel_trial(viewer, trial.id, now=_at(day, 12))
    assert sorted(await _events_after(seen)) == sorted(
        _lost(acme.id, "TRIAL") + _gained(acme.id, "EXPIRED")
    )
    seen = await _last_event_id()

    # Another viewer's refused mutation writes nothing.
    other = await factories.partner("Contoso", "contoso.example")
    outsider = await _viewer(other)
    with pytest.raises(MutationRejected):
        await start_trial(
            outsider, customer_id=acme.id, new_customer=None,
            products=[TrialLicenseRequest(Product.CALLING, 10)], duration_days=10, today=day,
        )  # fmt: skip
    assert await _events_after(seen) == []


async def test_a_customer_made_by_a_trial_announces_its_first_statuses(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await _viewer(org)
    day = datetime.now(UTC).date() + timedelta(days=2)
    await start_trial(
        viewer, customer_id=None,
        new_customer=NewCustomer("Brand New", "boss@brand-new.example", Region.US),
        products=[TrialLicenseRequest(Product.MEETINGS, 5)], duration_days=30, today=day,
    )  # fmt: skip
    customer = await Customer.get(name="Brand New")
    assert sorted(await _events_after()) == sorted(
        _gained(customer.id, "TRIAL", "EXPIRING_SOON", "NO_RECENT_ACTIVITY")
    )


async def test_a_first_state_is_recorded_without_events(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")
    day = datetime.now(UTC).date() + timedelta(days=1)
    # A write before any evaluation leaves the customer to the daily scan ...
    await add_subscription(acme, S.ACTIVE, day + timedelta(days=10), today=day)
    assert (await Customer.get(id=acme.id)).attention_flags is None
    # ... whose first look records its state silently.
    done = await scan_all(_at(day))
    assert (done.changed, done.first_states, done.events) == (0, 1, 0)
    assert (await Customer.get(id=acme.id)).attention_flags is not None
    assert await AttentionEvent.all().count() == 0
    # Nothing changed: nothing to say, nothing written.
    again = await scan_all(_at(day, 1))
    assert (again.changed, again.first_states, again.events) == (0, 0, 0)


async def test_an_ingest_of_sign_ins_announces_activity(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await _viewer(org)
    acme = await factories.customer(org, "Acme")
    bolt = await factories.customer(org, "Bolt")
    day = datetime.now(UTC).date() + timedelta(days=1)
    await scan_all(_at(day))
    signed_in = _at(day, 8)
    body = b"\n".join(
        orjson.dumps({"orgId": str(c.org_id), "userEmail": "boss@x.example",
                      "signedInAt": signed_in.isoformat()})
        for c in (acme, bolt)
    )  # fmt: skip
    assert await ingest(viewer, "admin-sign-ins", body, now=_at(day, 9)) == 2
    assert sorted(await _events_after()) == sorted(
        _lost(acme.id, "NO_RECENT_ACTIVITY") + _lost(bolt.id, "NO_RECENT_ACTIVITY")
    )
    # Resent: nothing changes, nothing is said.
    seen = await _last_event_id()
    await ingest(viewer, "admin-sign-ins", body, now=_at(day, 10))
    assert await _events_after(seen) == []


async def test_days_passing_are_announced_by_the_daily_job(ctx: dict[str, Any]) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")  # ACTIVE, not renewing, ends in 36 days
    bolt = await factories.customer(org, "Bolt")  # a trial ending in 20 days
    day = datetime.now(UTC).date() + timedelta(days=1)
    await add_subscription(acme, S.ACTIVE, day + timedelta(days=36), today=day)
    await factories.trial(bolt, day - timedelta(days=5), day + timedelta(days=20))
    trial = await Trial.get(customer=bolt)
    await scan_all(_at(day))
    assert await AttentionEvent.all().count() == 0

    ran = await run_customer_dates(ctx, _at(day + timedelta(days=6), 0, 1))
    assert [r.outcome for r in ran] == ["done"]
    assert "2 attention event(s) for 2 customer(s)" in ran[0].detail
    ending = {"trialId": trial.id, "endDate": trial.end_date.isoformat(), "daysLeft": 14}
    assert sorted(await _events_after()) == sorted(
        [_event(bolt.id, "TRIAL_ENDING", None, ending), *_gained(acme.id, "EXPIRING_SOON")]
    )
    event = await AttentionEvent.get(customer_id=acme.id)
    assert event.occurred_at == _at(day + timedelta(days=6))  # the occurrence's instant
    # The next day changes nothing.
    seen = await _last_event_id()
    await run_customer_dates(ctx, _at(day + timedelta(days=7), 0, 1))
    assert await _events_after(seen) == []


async def test_low_assignment_is_announced_by_the_daily_job_as_the_analytics_show_it(
    ctx: dict[str, Any],
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await _viewer(org)
    day = datetime.now(UTC).date() + timedelta(days=1)
    peers = [await factories.customer(org, f"Peer {n}") for n in range(3)]
    for n, peer in enumerate(peers):
        await add_subscription(
            peer, S.ACTIVE, day + timedelta(days=300), auto_renew=True,
            lines=[(LicenseType.MEETINGS, 20, 15 + n, 0), (LicenseType.CALLING_PROFESSIONAL, 20, 16, 0)],
            today=day,
        )  # fmt: skip
    # Low in both families, added 25 days before `day`: low from its 30th day.
    slow = await factories.customer(org, "Slow")
    await add_subscription(
        slow, S.ACTIVE, day + timedelta(days=300), auto_renew=True, added_days_ago=25,
        lines=[(LicenseType.MEETINGS, 20, 2, 0), (LicenseType.CALLING_PROFESSIONAL, 20, 1, 0)],
        today=day,
    )  # fmt: skip
    await scan_all(_at(day))
    assert await AttentionEvent.all().count() == 0
    await run_customer_dates(ctx, _at(day + timedelta(days=4), 0, 1))
    assert await AttentionEvent.all().count() == 0
    later = day + timedelta(days=5)
    await run_customer_dates(ctx, _at(later, 0, 1))
    assert sorted(await _events_after()) == sorted(
        _event(slow.id, "LOW_LICENSE_ASSIGNMENT", None, {"family": f})
        for f in ("CALLING", "MEETINGS")
    )
    # The same customers the subscription analytics list as low-assignment.
    for family in ProductFamily:
        analytics = SubscriptionAnalytics(viewer, family, None, StatusClock(_at(later)))
        assert await analytics.low_customers(family) == {slow.id}
    # A write keeps the bits: no LOW event again, none lost.
    seen = await _last_event_id()
    await refresh_customer_columns([slow.id], later, _at(later, 9))
    assert await _events_after(seen) == []


# ------------------------------------------------------------ call quality ----

LEG_COLUMNS = (
    "customer_id", "leg_id", "call_id", "started_at", "duration_seconds", "video_seconds",
    "has_audio", "has_video", "endpoint_type", "ip_version", "jitter_ms", "latency_ms",
    "packet_loss_pct", "call_type", "feature",
)  # fmt: skip


async def _legs(customer_id: int, week: date, legs: int, poor: int, unmeasured: int = 0) -> None:
    """`legs` measured legs in the week of `week`, `poor` of them poor (jitter
    over 150 ms), and `unmeasured` legs from analog phones (no quality figures)."""
    rows = []
    for n in range(legs + unmeasured):
        measured = n < legs
        rows.append((
            customer_id, f"leg-{uuid.uuid4().hex}", f"call-{n}",
            _at(week + timedelta(days=n % 7), 9) + timedelta(minutes=n), 60, 0, True, False,
            "APP" if measured else "ANALOG", 4,
            (200.0 if n < poor else 10.0) if measured else None,
            50.0 if measured else None, 0.1 if measured else None, "NATIONAL", "NONE",
        ))  # fmt: skip
    await execute_many(
        f"INSERT INTO call_leg ({', '.join(LEG_COLUMNS)}) VALUES ({', '.join('?' * len(LEG_COLUMNS))})",
        rows,
    )


def _share(poor: int, legs: int) -> float:
    return round(100 * poor / legs, 1)


async def _rollup(ctx: dict[str, Any], sunday: datetime) -> None:
    ran = await catch_up(ctx, sunday + timedelta(minutes=1), (REFRESH_CALLING_WEEK,))
    assert [r.outcome for r in ran] == ["done"], ran


async def test_the_weekly_rollup_announces_declining_call_quality_once(ctx: dict[str, Any]) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    worse, same, new, edge = [await factories.customer(org, n) for n in ("W", "S", "N", "E")]
    sunday = _at(datetime.now(UTC).date() + timedelta(days=7))
    sunday -= timedelta(days=(sunday.weekday() + 1) % 7)
    week = refreshed_week(sunday)
    before = week - timedelta(weeks=1)
    await _legs(worse.id, before, 20, 1, unmeasured=5)  # 5 %
    await _legs(worse.id, week, 20, 4, unmeasured=30)  # 20 %: +15 points
    await _legs(same.id, before, 10, 1)
    await _legs(same.id, week, 10, 1)
    await _legs(new.id, week, 10, 9)  # no week before: nothing to compare
    await _legs(edge.id, before, 20, 1)  # 5 %
    await _legs(edge.id, week, 10, 1)  # 10 %: +5 points exactly, the threshold
    await rollup_week(before)  # the Sunday before's
    assert await AttentionEvent.all().count() == 0
    await _rollup(ctx, sunday)
    assert sorted(await _events_after()) == sorted(
        [
            _event(worse.id, "CALL_QUALITY_DECLINING", None,
                   {"week": week.isoformat(), "poorShare": 20.0, "previousPoorShare": 5.0,
                    "risePoints": 15.0}),
            _event(edge.id, "CALL_QUALITY_DECLINING", None,
                   {"week": week.isoformat(), "poorShare": 10.0, "previousPoorShare": 5.0,
                    "risePoints": 5.0}),
        ]
    )  # fmt: skip
    # A re-run of the same week writes nothing new.
    assert await record_quality_declines(week, sunday, 5.0) == 0
    assert await AttentionEvent.all().count() == 2


# ------------------------------------------------------------- retention ----


async def test_the_daily_job_deletes_events_past_retention(ctx: dict[str, Any]) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")
    day = datetime.now(UTC).date() + timedelta(days=1)
    hook = await AttentionWebhook.create(
        partner=org, url="https://hooks.example/x", topics=["STATUS_LOST"],
        created_at=_at(day), updated_at=_at(day),
    )  # fmt: skip
    occurrence = _at(day + timedelta(days=1))
    ages = {"old": 91, "edge": 90, "young": 3}
    async with in_transaction():
        for name, age in ages.items():
            at = occurrence - timedelta(days=age, seconds=1 if name == "old" else 0)
            await write_events(
                [
                    NewEvent(
                        org.id, acme.id, AttentionEventType.STATUS_LOST, at, detail={"status": name}
                    )
                ]
            )
    assert await AttentionDelivery.filter(webhook=hook).count() == 3
    ran = await run_customer_dates(ctx, occurrence + timedelta(seconds=30))
    assert "deleted 1 attention event(s) past retention" in ran[0].detail
    kept = sorted(e.detail["status"] for e in await AttentionEvent.all())
    assert kept == ["edge", "young"]
    assert await AttentionDelivery.filter(webhook=hook).count() == 2


# ------------------------------------------------------ the fortnight ----


async def test_a_scripted_fortnight_yields_exactly_the_expected_events(
    ctx: dict[str, Any], db: Settings
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await _viewer(org)
    other = await factories.partner("Contoso", "contoso.example")
    d0 = datetime.now(UTC).date() + timedelta(days=2)
    model = Model()

    def day(n: int) -> date:
        return d0 + timedelta(days=n)

    # The world on day 0.
    a = await factories.customer(org, "A")  # expiring within 30 days from day 5
    await add_subscription(a, S.ACTIVE, day(35), lines=[(LicenseType.MEETINGS, 10, 8, 0)], today=d0)
    b = await factories.customer(org, "B")  # signs in on day 3; its call quality falls
    await add_subscription(
        b, S.ACTIVE, day(300), auto_renew=True, lines=[(LicenseType.MEETINGS, 10, 7, 0)], today=d0
    )
    c = await factories.customer(org, "C")  # its last sign-in ages past 30 days on day 6
    await add_subscription(c, S.PENDING_SETUP, day(200), today=d0)
    d = await factories.customer(org, "D")  # a trial started on day 1, extended on day 9
    e = await factories.customer(org, "E")  # a 5-day trial from day 0, cancelled on day 2
    f = await factories.customer(other, "F")  # another partner's: a 3-day trial from day 0
    g = await factories.customer(org, "G")  # low assignment from day 5
    await add_subscription(
        g, S.ACTIVE, day(300), auto_renew=True, added_days_ago=25,
        lines=[(LicenseType.MEETINGS, 10, 1, 0)], today=d0,
    )  # fmt: skip
    h = await factories.customer(org, "H")  # a suspended subscription; overage on day 8
    await add_subscription(h, S.SUSPENDED, day(100), today=d0)
    fviewer = await _viewer(other)
    await ingest(
        viewer, "admin-sign-ins",
        orjson.dumps({"orgId": str(c.org_id), "userEmail": "boss@c.example",
                      "signedInAt": (_at(d0, 8) - timedelta(days=25)).isoformat()}),
        now=_at(d0, 0, 1),
    )  # fmt: skip
    # Call legs of the week the first Sunday rolls up, and of the week before.
    sunday = next(day(n) for n in range(1, 8) if day(n).weekday() == 6)
    week = refreshed_week(_at(sunday))
    await _legs(b.id, week - timedelta(weeks=1), 10, 1)
    await _legs(b.id, week, 10, 3)
    await _legs(c.id, week - timedelta(weeks=1), 10, 2)
    await _legs(c.id, week, 10, 2)
    await rollup_week(week - timedelta(weeks=1))  # the Sunday before's

    # Day 0: every customer's first state, silently (two evaluators at once).
    await asyncio.gather(scan_all(_at(d0, 0, 2)), scan_all(_at(d0, 0, 2)))
    await model.evaluate(_at(d0, 0, 2), whole=True)
    assert model.expected == [] and await AttentionEvent.all().count() == 0
    seen = 0

    async def write(customers: list[Any], now: datetime) -> None:
        nonlocal seen
        expected = await model.evaluate(now, [x.id for x in customers], whole=False)
        seen = await _check(model, seen, expected)

    for x, who, duration in ((e, viewer, 5), (f, fviewer, 3)):
        await start_trial(
            who, customer_id=x.id, new_customer=None,
            products=[TrialLicenseRequest(Product.CALLING, 10)], duration_days=duration, today=d0,
        )  # fmt: skip
        await write([x], _at(d0, 10))
    trials = {t.customer_id: t for t in await Trial.all()}

    for n in range(1, 15):
        today = day(n)
        midnight = _at(today)
        # The daily job, run by two workers at once; on odd days first two bare
        # scans at once (the compare-and-set alone keeps each change single).
        if n % 2:
            await asyncio.gather(scan_all(midnight), scan_all(midnight))
        ran = await asyncio.gather(
            run_customer_dates(ctx, midnight + timedelta(seconds=30)),
            run_customer_dates(ctx, midnight + timedelta(seconds=30)),
        )
        assert sorted(r.outcome for runs in ran for r in runs) == ["done"]
        seen = await _check(model, seen, await model.evaluate(midnight, whole=True))
        # The trial expiry job at 00:05: the trials' end is already announced.
        await expire_due_trials(today, now=_at(today, 0, 5))
        await write([f], _at(today, 0, 5))
        if today == sunday:
            await _rollup(ctx, midnight)
            expected = [
                _event(b.id, "CALL_QUALITY_DECLINING", None,
                       {"week": week.isoformat(), "poorShare": _share(3, 10),
                        "previousPoorShare": _share(1, 10), "risePoints": 20.0}),
            ]  # fmt: skip
            model.expected += expected
            seen = await _check(model, seen, expected)
        if n == 1:
            await start_trial(
                viewer, customer_id=d.id, new_customer=None,
                products=[TrialLicenseRequest(Product.CALLING, 5)], duration_days=20, today=today,
            )  # fmt: skip
            await write([d], _at(today, 10))
            trials = {t.customer_id: t for t in await Trial.all()}
        if n == 2:
            await cancel_trial(viewer, trials[e.id].id, now=_at(today, 10))
            await write([e], _at(today, 10))
        if n == 3:
            body = orjson.dumps(
                {"orgId": str(b.org_id), "userEmail": "boss@b.example",
                 "signedInAt": _at(today, 9).isoformat()}
            )  # fmt: skip
            await ingest(viewer, "admin-sign-ins", body, now=_at(today, 10))
            await write([b], _at(today, 10))
        if n == 8:
            sub = await Subscription.create(
                customer=h, subscription_id=f"Sub-{uuid.uuid4().hex[:10]}",
                kind=SubscriptionKind.SUBSCRIPTION, status=S.ACTIVE, start_date=today,
                end_date=day(400), auto_renew=True, added_at=_at(today, 10),
            )  # fmt: skip
            await LicenseLine.create(
                subscription=sub, license_type=LicenseType.MEETINGS,
                product=LICENSE_PRODUCT[LicenseType.MEETINGS], quantity=5, assigned=7,
            )  # fmt: skip
            await refresh_customer_columns([h.id], today, _at(today, 10))
            await write([h], _at(today, 10))
        if n == 9:
            await extend_trial(viewer, trials[d.id].id, 10, now=_at(today, 10))
            await write([d], _at(today, 10))

    everything = await _events_after()
    assert len(everything) == 25  # what the script adds up to (the model agrees)
    assert sorted(everything) == sorted(model.expected)
    assert len(set(everything)) == len(everything)  # once each
    # The script reached every type, and both of a status's directions.
    kinds = {ev[1] for ev in everything}
    assert kinds == {
        "STATUS_GAINED", "STATUS_LOST", "TRIAL_ENDING", "LOW_LICENSE_ASSIGNMENT",
        "CALL_QUALITY_DECLINING",
    }  # fmt: skip
    assert {ev[2] for ev in everything if ev[1] == "STATUS_GAINED"} >= {
        "TRIAL", "EXPIRING_SOON", "NO_RECENT_ACTIVITY", "EXPIRED", "ACTIVE", "LICENSE_OVERAGE",
    }  # fmt: skip
    assert {ev[0] for ev in everything} == {a.id, b.id, c.id, d.id, e.id, f.id, g.id, h.id}
    # Each event is its customer's partner's.
    for event in await AttentionEvent.all().prefetch_related("customer"):
        assert event.partner_id == event.customer.partner_id


async def test_the_command_scans_every_customer_now(db: Settings, database_url: str) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")
    today = datetime.now(UTC).date()
    await add_subscription(acme, S.ACTIVE, today + timedelta(days=10), today=today)
    env = cli_env(database_url, db.var_dir)
    result = await asyncio.to_thread(run_cli, ["attention-scan"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "0 attention event(s) for 0 customer(s) (1 first state(s) recorded silently)"
    )
    assert (await Customer.get(id=acme.id)).attention_flags is not None
    # Announced as nothing: the next scan announces what it carries.
    await Customer.filter(id=acme.id).update(attention_flags=0)
    result = await asyncio.to_thread(run_cli, ["attention-scan"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("3 attention event(s) for 1 customer(s)")
    assert sorted(await _events_after()) == sorted(
        _gained(acme.id, "ACTIVE", "EXPIRING_SOON", "NO_RECENT_ACTIVITY")
    )
    help_text = await asyncio.to_thread(run_cli, ["attention-scan", "--help"], env)
    assert help_text.returncode == 0 and "daily job" in help_text.stdout


# ---------------------------------------------------- two evaluators at once ----


async def test_the_compare_and_set_writes_only_over_the_state_it_read(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")
    await scan_all(_at(datetime.now(UTC).date() + timedelta(days=1)))
    kept = (await Customer.get(id=acme.id)).attention_flags
    assert kept is not None
    stale = Change(acme.id, org.id, kept ^ 1, kept ^ 2)
    assert await _compare_and_set([stale]) == set()
    assert (await Customer.get(id=acme.id)).attention_flags == kept
    assert await _compare_and_set([Change(acme.id, org.id, kept, kept ^ 2)]) == {acme.id}
    assert (await Customer.get(id=acme.id)).attention_flags == kept ^ 2


async def test_an_evaluation_waiting_on_another_writes_nothing_twice(postgres_db: Settings) -> None:
    """PostgreSQL, two connections: a write's evaluation holds the customer's row;
    the daily scan, started meanwhile, read the old state and waits for the row,
    then finds the state changed under it and writes nothing of that customer."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    acme = await factories.customer(org, "Acme")
    day = datetime.now(UTC).date() + timedelta(days=1)
    await add_subscription(acme, S.ACTIVE, day + timedelta(days=36), today=day)
    await scan_all(_at(day))
    later = _at(day + timedelta(days=6))  # EXPIRING_SOON reached
    holding, release = asyncio.Event(), asyncio.Event()

    async def write() -> Any:
        async with in_transaction():
            done = await record_changes([acme.id], later)
            holding.set()
            await release.wait()
            return done

    writer = asyncio.create_task(write())
    await holding.wait()
    scan = asyncio.create_task(scan_all(later))
    await asyncio.sleep(0.5)
    assert not scan.done()  # waiting for the writer's row lock
    release.set()
    written, scanned = await writer, await scan
    assert (written.changed, written.events) == (1, 1)
    assert (scanned.changed, scanned.events) == (0, 0)
    assert await _events_after() == _gained(acme.id, "EXPIRING_SOON")
