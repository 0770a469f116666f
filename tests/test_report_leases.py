"""Leases on running reports (app/domain/report_leases.py), on both databases:
one job holds a report at a time, a lost lease stops the writer before its file
is moved into place, and the tick queues again what a dead worker left."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.domain import report_leases
from app.domain.report_generation import run_report
from app.domain.report_leases import MAX_TRIES, LeaseLost, LeaseTerms
from app.domain.reports import ReportRequest, create_report, report_job_id
from app.models.enums import AdminRole, ReportStatus
from app.models.reports import Report, ReportTemplate
from app.queue import JobQueue
from app.storage import LocalStorage
from tests import factories
from tests.report_helpers import flush_queue
from tests.test_report_memory import _add_devices
from workers.reports import report_tick
from workers.settings import build_worker

NOW = factories.NOW


async def queued_report(rows: int = 0) -> Report:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    customer = await factories.customer(org, "Big Customer")
    if rows:
        await _add_devices(customer.id, rows, 0)
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    return await create_report(
        org.id, ReportRequest(template, None, None, None), admin.id, None, NOW.date()
    )


async def another_report(like: Report) -> Report:
    """A second QUEUED report of the same partner, template and admin."""
    return await create_report(
        like.partner_id,
        ReportRequest(await like.template, None, None, None),
        like.requested_by_id,
        None,
        NOW.date(),
    )


def terms(owner: str, seconds: float = 30, renew: float = 10) -> LeaseTerms:
    return LeaseTerms(owner=owner, seconds=seconds, renew_seconds=renew)


async def test_one_job_at_a_time_holds_a_report(db: Settings) -> None:
    report = await queued_report()
    results = await asyncio.gather(
        *(report_leases.take(report.id, terms(f"job-{i}"), NOW) for i in range(6))
    )
    assert sorted(results) == [False] * 5 + [True]
    held = await Report.get(id=report.id)
    assert held.status == ReportStatus.RUNNING and held.attempts == 1
    assert held.lease_expires_at == NOW + timedelta(seconds=30)

    # A live lease is not taken; a lapsed one is, as one more try.
    assert not await report_leases.take(report.id, terms("late"), NOW + timedelta(seconds=29))
    assert await report_leases.take(report.id, terms("next"), NOW + timedelta(seconds=31))
    again = await Report.get(id=report.id)
    assert (again.lease_owner, again.attempts) == ("next", 2)

    # Only the holder renews.
    with pytest.raises(LeaseLost):
        await report_leases.renew(report.id, terms(held.lease_owner or ""), NOW)
    await report_leases.renew(report.id, terms("next"), NOW + timedelta(seconds=40))
    assert (await Report.get(id=report.id)).lease_expires_at == NOW + timedelta(seconds=70)


async def test_a_writer_that_loses_its_lease_stops_and_moves_no_file_into_place(
    db: Settings,
) -> None:
    report = await queued_report(rows=30_000)
    storage = LocalStorage(db.report_folder)
    partial = storage.partial_path(report.storage_key or "")
    mine = terms("slow-worker", seconds=5, renew=0.2)

    async def steal_when_writing() -> None:
        for _ in range(2000):
            if partial.exists() and partial.stat().st_size > 10_000:
                break
            await asyncio.sleep(0.005)
        # What the tick and another job do when they believe this one dead.
        await Report.filter(id=report.id).update(
            lease_owner="other-worker", lease_expires_at=NOW + timedelta(days=1)
        )

    thief = asyncio.create_task(steal_when_writing())
    with pytest.raises(LeaseLost):
        await run_report(report.id, storage, chunk_rows=100, lease=mine)
    await thief
    assert not await storage.exists(report.storage_key or "")
    assert not partial.exists()
    after = await Report.get(id=report.id)
    assert (after.status, after.lease_owner) == (ReportStatus.RUNNING, "other-worker")


async def test_the_renewal_keeps_a_long_report_s_lease_alive(db: Settings) -> None:
    report = await queued_report()
    lease = terms("steady", seconds=1.5, renew=0.3)
    assert await report_leases.take(report.id, lease, factories.NOW)
    from app.clock import utcnow

    async with report_leases.kept(report.id, lease):
        await asyncio.sleep(2.5)  # longer than the lease itself
        held = await Report.get(id=report.id)
        assert held.lease_expires_at is not None and held.lease_expires_at > utcnow()
    # Nobody took it meanwhile, whatever the tick does now.
    assert (await report_leases.sweep_lapsed(utcnow() - timedelta(seconds=1))).requeued == []


async def test_the_tick_queues_again_a_lapsed_report_and_fails_one_out_of_tries(
    db: Settings, redis_url: str
) -> None:
    await flush_queue(redis_url)
    dead = await queued_report()
    assert await report_leases.take(dead.id, terms("dead-worker", seconds=6), NOW)
    worn = await another_report(dead)
    await Report.filter(id=worn.id).update(attempts=MAX_TRIES - 1)
    assert await report_leases.take(worn.id, terms("last-try", seconds=6), NOW)
    await report_leases.let_lapse(worn.id, terms("last-try"), NOW, "OSError: disk full")
    alive = await another_report(dead)
    assert await report_leases.take(alive.id, terms("alive", seconds=600), NOW)

    worker = build_worker(redis_url, in_process=True, settings=db)
    ctx = {**worker.ctx}
    try:
        await report_tick(ctx, (NOW + timedelta(seconds=10)).isoformat())
    finally:
        await ctx["queue"].close()
        await worker.close()

    requeued = await Report.get(id=dead.id)
    assert (requeued.status, requeued.attempts, requeued.lease_owner) == (
        ReportStatus.QUEUED,
        1,
        None,
    )
    failed = await Report.get(id=worn.id)
    assert failed.status == ReportStatus.FAILED
    assert failed.error and "5 tries" in failed.error and "disk full" in failed.error
    assert (await Report.get(id=alive.id)).status == ReportStatus.RUNNING
    redis = Redis.from_url(redis_url)
    try:
        # A new job id: the dead job's id stays taken until ARQ gives up on it.
        assert report_job_id(requeued).endswith(":1")
        assert await redis.exists(f"arq:job:{report_job_id(requeued)}")
        assert not await redis.exists(f"arq:job:{report_job_id(failed)}")
    finally:
        await redis.aclose()


async def test_the_tick_queues_again_a_report_whose_job_redis_lost(
    db: Settings, redis_url: str
) -> None:
    await flush_queue(redis_url)
    queue = JobQueue(redis_url)
    report = await queued_report()
    try:
        await queue.enqueue(
            "generate_report", report.id, report.storage_key, job_id=report_job_id(report)
        )
    finally:
        await queue.close()
    await flush_queue(redis_url)  # a Redis restarted without persistence
    redis = Redis.from_url(redis_url)
    worker = build_worker(redis_url, in_process=True, settings=db)
    ctx = {**worker.ctx}
    try:
        # Within two minutes of queueing, the job is presumed still queued.
        await report_tick(ctx, (report.queued_at + timedelta(seconds=60)).isoformat())
        assert not await redis.exists(f"arq:job:{report_job_id(report)}")
        await report_tick(ctx, (report.queued_at + timedelta(minutes=3)).isoformat())
        assert await redis.exists(f"arq:job:{report_job_id(report)}")
    finally:
        await redis.aclose()
        await ctx["queue"].close()
        await worker.close()
