"""The customers' kept list columns (app/domain/customer_columns.py): after each
kind of write they equal a recomputation in plain Python from the rows
(tests/kept_columns.py); the daily job keeps them exact as days pass, and runs
each day's occurrence once however many workers run it; the lists sort by
them as a plain sort of the recomputed values does; a write that fails leaves
neither its rows nor the columns changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from tortoise.transactions import in_transaction

from app.config import Settings
from app.domain.access import Viewer
from app.domain.customer_columns import refresh_customer_columns
from app.domain.customers import (
    CustomerFilter,
    CustomerOrder,
    CustomerOrderField,
    list_customers,
)
from app.domain.statuses import StatusClock, statuses_of
from app.domain.trials import (
    NewCustomer,
    TrialLicenseRequest,
    align_trial_subscriptions,
    cancel_trial,
    expire_due_trials,
    extend_trial,
    start_trial,
)
from app.models.customers import Customer
from app.models.enums import (
    AdminRole,
    CustomerStatus,
    LicenseType,
    Product,
    Region,
    SubscriptionKind,
    SubscriptionStatus,
    TrialStatus,
)
from app.models.subscriptions import LicenseLine, Subscription
from app.models.system import CronRun
from app.models.trials import Trial
from app.queue import JobQueue
from tests import factories
from tests.cli_process import cli_env, run_cli
from tests.kept_columns import assert_kept_columns_exact, recomputed
from tests.test_ingest import TABLES, ndjson, post, samples
from tests.test_ingest import world as ingest_world  # noqa: F401  (a fixture)
from tests.world import build_status_grid, build_world
from tests.world import subscription as add_subscription
from tests.world import trial as add_trial
from workers.crons import customer_dates_tick, run_customer_dates

S = SubscriptionStatus


@pytest.fixture
async def ctx(db: Settings, redis_url: str) -> AsyncIterator[dict[str, Any]]:
    """What a worker hands its jobs: settings and the queue."""
    queue = JobQueue(redis_url)
    try:
        yield {"settings": db, "queue": queue}
    finally:
        await queue.close()


async def _viewer(role: AdminRole = AdminRole.FULL_ADMIN) -> tuple[Viewer, Any]:
    org = await factories.partner("Northwind Partners", "northwind.example")
    member = await factories.admin(org, role)
    await member.admin.fetch_related("partner")
    return Viewer(admin=member.admin, partner=member.admin.partner), org


def _statuses_from(columns: dict[str, Any], clock: StatusClock, active_at: Any) -> list[str]:
    """A customer's statuses from its recomputed columns, by SPEC.md's definitions."""
    today, soon = clock.today, clock.today + timedelta(days=clock.expiring_soon_days)
    since = clock.now - timedelta(days=clock.no_recent_activity_days)
    trial = columns["trial_end_date"] is not None and columns["trial_end_date"] >= today
    expiring = columns["expiring_end_date"]
    have = {
        "TRIAL": trial,
        "ACTIVE": columns["has_active"],
        "EXPIRING_SOON": expiring is not None and today <= expiring <= soon,
        "LICENSE_OVERAGE": columns["has_overage"],
        "NO_RECENT_ACTIVITY": active_at is None or active_at < since,
        "READY_FOR_ORDER_SETUP": columns["has_pending_setup"],
        "SUSPENDED": columns["has_suspended"],
        "EXPIRED": not columns["holds_licenses"] and not trial,
    }
    return [status for status, held in have.items() if held]


async def _assert_statuses_exact(clock: StatusClock) -> None:
    customers = await Customer.all()
    ids = [c.id for c in customers]
    expected = await recomputed(ids, clock.today)
    got = await statuses_of(ids, clock)
    for c in customers:
        want = _statuses_from(expected[c.id], clock, c.last_admin_activity_at)
        assert [s.value for s in got.get(c.id, [])] == want, c.name


# ----------------------------------------------------------------- writes ----


async def test_the_status_worlds_keep_every_column_exact(db: Settings) -> None:
    """Both hand-made worlds of the customer list tests: every subscription and
    trial state at every boundary, written by the builders as a writer would."""
    grid = await build_status_grid()
    world = await build_world()
    assert await assert_kept_columns_exact(world.today) > 40
    await _assert_statuses_exact(StatusClock(now=grid.now))


async def test_each_trial_write_keeps_the_columns_exact(db: Settings) -> None:
    viewer, org = await _viewer()
    today = datetime.now(UTC).date()
    acme = await factories.customer(org, "Acme")
    await add_subscription(
        acme, S.ACTIVE, today + timedelta(days=90), lines=[(LicenseType.MEETINGS, 10, 12, 1)],
        today=today,
    )  # fmt: skip
    bolt = await factories.customer(org, "Bolt")
    await assert_kept_columns_exact(today)

    trial = await start_trial(
        viewer,
        customer_id=bolt.id,
        new_customer=None,
        products=[
            TrialLicenseRequest(Product.CALLING, 25),
            TrialLicenseRequest(Product.MEETINGS, 5),
        ],
        duration_days=20,
    )
    await assert_kept_columns_exact(today)
    assert (await Customer.get(id=bolt.id)).total_licenses == 30
    await start_trial(
        viewer,
        customer_id=None,
        new_customer=NewCustomer("Fresh Co", "admin@fresh.example", Region.EU),
        products=[TrialLicenseRequest(Product.MESSAGING, 7)],
        duration_days=10,
    )
    await assert_kept_columns_exact(today)
    fresh = await Customer.get(name="Fresh Co")
    assert fresh.trial_end_date == today + timedelta(days=10) == fresh.next_end_date

    await extend_trial(viewer, trial.id, 9)
    await assert_kept_columns_exact(today)
    assert (await Customer.get(id=bolt.id)).trial_end_date == today + timedelta(days=29)

    await cancel_trial(viewer, trial.id)
    await assert_kept_columns_exact(today)
    bolt = await Customer.get(id=bolt.id)
    assert (bolt.trial_end_date, bolt.total_licenses, bolt.next_end_date) == (None, 0, None)


async def test_the_trial_expiry_job_and_the_alignment_keep_the_columns_exact(db: Settings) -> None:
    _, org = await _viewer()
    today = datetime.now(UTC).date()
    ended = await factories.customer(org, "Ended")
    trial = await factories.trial(ended, today - timedelta(days=30), today - timedelta(days=1))
    ongoing = await factories.customer(org, "Ongoing")
    await factories.trial(ongoing, today - timedelta(days=3), today + timedelta(days=3))
    # The trial's end date passed: no longer TRIAL even before the job runs.
    held = (await statuses_of([ended.id], StatusClock(now=datetime.now(UTC))))[ended.id]
    assert CustomerStatus.EXPIRED in held and CustomerStatus.TRIAL not in held
    await assert_kept_columns_exact(today)

    assert await expire_due_trials(today) == 1
    await assert_kept_columns_exact(today)
    assert (await Customer.get(id=ended.id)).trial_end_date is None

    # An older release's CONVERTED trial whose subscription stayed ACTIVE.
    await Trial.filter(id=trial.id).update(status=TrialStatus.CONVERTED)
    await Subscription.filter(trial_id=trial.id).update(status=S.ACTIVE, end_date=today)
    await refresh_customer_columns([ended.id], today)  # as that writer would have
    assert (await Customer.get(id=ended.id)).next_end_date == today
    assert await align_trial_subscriptions(today) == 1
    await assert_kept_columns_exact(today)
    assert (await Customer.get(id=ended.id)).next_end_date is None


@pytest.mark.parametrize("kind", list(TABLES))
async def test_ingest_of_every_kind_keeps_the_columns_exact(
    client: httpx.AsyncClient, ingest_world: dict, kind: str
) -> None:
    """No kind writes subscriptions or their lines; a kind that did would have to
    keep the columns, which this checks after a batch of each."""
    today = datetime.now(UTC).date()
    customer = ingest_world["customer"]
    await refresh_customer_columns([customer.id], today)  # the fixture wrote rows directly
    await assert_kept_columns_exact(today)
    token = ingest_world["team"][AdminRole.FULL_ADMIN].token
    answer = await post(client, token, kind, ndjson(samples(ingest_world)[kind]))
    assert answer.status_code == 200, answer.text
    await assert_kept_columns_exact(today)


async def test_a_demo_load_keeps_the_columns_exact(db: Settings) -> None:
    from app.demo import load_demo

    now = datetime.now(UTC)
    await load_demo(40, seed=5, now=now)
    assert await assert_kept_columns_exact(now.date()) == 40
    assert await Customer.filter(has_overage=True).exists()
    assert await Customer.filter(trial_end_date__isnull=False).exists()


async def test_a_write_that_fails_leaves_neither_rows_nor_columns(db: Settings) -> None:
    _, org = await _viewer()
    today = datetime.now(UTC).date()
    customer = await factories.customer(org, "Acme")
    await factories.trial(customer, today - timedelta(days=20), today - timedelta(days=1))
    before = await Customer.get(id=customer.id)
    with pytest.raises(RuntimeError, match="after the change"):
        async with in_transaction():
            assert await expire_due_trials(today) == 1
            assert (await Customer.get(id=customer.id)).trial_end_date is None  # changed inside
            raise RuntimeError("after the change")
    after = await Customer.get(id=customer.id)
    assert after.trial_end_date == before.trial_end_date is not None
    assert await Trial.filter(customer_id=customer.id, status=TrialStatus.ACTIVE).count() == 1
    await assert_kept_columns_exact(today)


# ------------------------------------------------------------ days passing ----


async def _days_world(today: date) -> tuple[Viewer, list[Customer]]:
    viewer, org = await _viewer()
    customers = []
    plan = [
        # (name, [(status, ends in days, auto renew, quantity, assigned)], trial ends in days)
        ("a", [(S.ACTIVE, 1, False, 10, 2), (S.ACTIVE, 4, False, 5, 0)], None),
        ("b", [(S.ACTIVE, 2, True, 30, 40), (S.SUSPENDED, 6, False, 1, 0)], None),
        ("c", [(S.PENDING_SETUP, 3, False, 8, 8)], 2),
        ("d", [(S.EXPIRED, -3, False, 50, 60)], 5),
        ("e", [(S.ACTIVE, 40, False, 3, 1), (S.ACTIVE, 1, False, 4, 0)], None),
        ("f", [], None),
        ("g", [(S.CANCELLED, 3, False, 9, 0)], 1),
    ]
    for name, subs, trial_ends in plan:
        customer = await factories.customer(org, name)
        for status, ends, renew, quantity, assigned in subs:
            await add_subscription(
                customer, status, today + timedelta(days=ends), auto_renew=renew,
                lines=[(LicenseType.MEETINGS, quantity, assigned, 0)], today=today,
            )  # fmt: skip
        if trial_ends is not None:
            await add_trial(customer, today + timedelta(days=trial_ends), today=today)
        customers.append(customer)
    return viewer, customers


def _at(day: date, hour: int = 0, minute: int = 0, second: int = 30) -> datetime:
    return datetime.combine(day, time(hour, minute, second), UTC)


async def test_days_pass_and_the_daily_job_keeps_the_columns_exact(
    ctx: dict[str, Any],
) -> None:
    today = datetime.now(UTC).date()
    viewer, customers = await _days_world(today)
    await assert_kept_columns_exact(today)
    await CronRun.create(
        job="refresh_customer_dates", occurrence=_at(today, second=0), attempts=1,
        claimed_at=_at(today), finished_at=_at(today),
    )  # fmt: skip
    for n in range(1, 8):
        day = today + timedelta(days=n)
        clock = StatusClock(now=_at(day, hour=0, minute=0, second=10))
        # Midnight passed, the job not yet run: statuses are exact all the same.
        await _assert_statuses_exact(clock)
        assert await customer_dates_tick(ctx, _at(day).isoformat()) == 1
        await assert_kept_columns_exact(day)
        await _assert_statuses_exact(clock)
        expected = await recomputed([c.id for c in customers], day)
        for descending in (False, True):
            for field in (CustomerOrderField.NEXT_END_DATE, CustomerOrderField.TOTAL_LICENSES):
                page = await list_customers(
                    viewer, clock, first=100, order=CustomerOrder(field, descending)
                )
                assert [c.id for c in page.items] == _sorted(expected, field, descending), (
                    day,
                    field,
                    descending,
                )
        # A minute later nothing is due.
        assert await customer_dates_tick(ctx, _at(day, minute=1).isoformat()) == 0


def _sorted(
    expected: dict[int, dict[str, Any]], field: CustomerOrderField, desc: bool
) -> list[int]:
    if field is CustomerOrderField.TOTAL_LICENSES:
        keyed = [((v["total_licenses"], cid), cid) for cid, v in expected.items()]
    else:  # no next end date: last either way
        far = date.min if desc else date.max
        keyed = [((v["next_end_date"] or far, cid), cid) for cid, v in expected.items()]
    return [cid for _, cid in sorted(keyed, reverse=desc)]


async def test_after_an_outage_the_missed_days_run_once_each_in_order(
    ctx: dict[str, Any],
) -> None:
    today = datetime.now(UTC).date()
    await _days_world(today)
    await CronRun.create(
        job="refresh_customer_dates", occurrence=_at(today, second=0), attempts=1,
        claimed_at=_at(today), finished_at=_at(today),
    )  # fmt: skip
    later = today + timedelta(days=4)
    ran = await run_customer_dates(ctx, _at(later, hour=9))
    assert [(r.occurrence.date(), r.outcome) for r in ran] == [
        (today + timedelta(days=n), "done") for n in range(1, 5)
    ]
    await assert_kept_columns_exact(later)


async def test_two_workers_running_the_daily_job_at_once_run_it_once(
    ctx: dict[str, Any],
) -> None:
    today = datetime.now(UTC).date()
    _, customers = await _days_world(today)
    day = today + timedelta(days=3)
    as_kept = await recomputed([c.id for c in customers], today)
    passed = [
        cid
        for cid, v in as_kept.items()
        if any(v[k] is not None and v[k] < day for k in ("next_end_date", "expiring_end_date"))
    ]
    assert len(passed) == 5  # a, b, c, e and g: something of theirs ends within 3 days
    first, second = await asyncio.gather(
        run_customer_dates(ctx, _at(day)), run_customer_dates(ctx, _at(day))
    )
    ran = first + second
    assert [(r.job, r.occurrence, r.outcome) for r in ran] == [
        ("refresh_customer_dates", _at(day, second=0), "done")
    ]
    assert f"recomputed {len(passed)} customer(s)" in ran[0].detail
    runs = await CronRun.filter(job="refresh_customer_dates").values_list("occurrence", "attempts")
    assert [(o.astimezone(UTC), a) for o, a in runs] == [(_at(day, second=0), 1)]
    await assert_kept_columns_exact(day)


async def test_a_line_or_status_change_through_refresh_is_seen_by_the_filters(
    db: Settings,
) -> None:
    """The list filters read the kept columns: a writer that changes rows and
    refreshes is seen at once by every status filter (one definition for a
    page's statuses and the filters)."""
    viewer, customers = await _days_world(datetime.now(UTC).date())
    clock = StatusClock(now=datetime.now(UTC))

    async def filtered(status: CustomerStatus) -> set[int]:
        page = await list_customers(viewer, clock, first=100, flt=CustomerFilter(statuses=[status]))
        return {c.id for c in page.items}

    statuses = await statuses_of([c.id for c in customers], clock)
    for status in CustomerStatus:
        assert await filtered(status) == {
            cid for cid, held in statuses.items() if status in held
        }, status
    a = customers[0]
    await LicenseLine.filter(subscription__customer_id=a.id).update(assigned=99)
    await refresh_customer_columns([a.id], clock.today)
    assert a.id in await filtered(CustomerStatus.LICENSE_OVERAGE)
    await Subscription.filter(customer_id=a.id, kind=SubscriptionKind.SUBSCRIPTION).update(
        status=S.EXPIRED
    )
    await refresh_customer_columns([a.id], clock.today)
    assert a.id in await filtered(CustomerStatus.EXPIRED)
    assert a.id not in await filtered(CustomerStatus.LICENSE_OVERAGE)
    await assert_kept_columns_exact(clock.today)


async def test_the_command_recomputes_passed_dates_or_every_customer(
    db: Settings, database_url: str
) -> None:
    today = datetime.now(UTC).date()
    _, customers = await _days_world(today)
    # Rows written behind the writers' back (a repair is what --all is for).
    await LicenseLine.filter(subscription__customer_id=customers[0].id).update(quantity=1)
    await Subscription.filter(customer_id=customers[1].id).update(status=S.SUSPENDED)
    env = cli_env(database_url, db.var_dir)

    result = await asyncio.to_thread(run_cli, ["refresh-customer-columns"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"recomputed 0 customer(s) whose kept end dates were before {today.isoformat()}"
    )
    with pytest.raises(AssertionError, match="kept columns differ"):
        await assert_kept_columns_exact(today)

    result = await asyncio.to_thread(run_cli, ["refresh-customer-columns", "--all"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"recomputed the kept columns of all {len(customers)} customer(s) as of {today}"
    )
    await assert_kept_columns_exact(today)
    help_text = await asyncio.to_thread(run_cli, ["refresh-customer-columns", "--help"], env)
    assert help_text.returncode == 0 and "--all" in help_text.stdout
