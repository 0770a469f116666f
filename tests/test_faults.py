"""The fault suite: a production set-up of real processes (PostgreSQL, Valkey
with an append-only file, two `partnerhub serve` replicas, two `partnerhub
worker` processes; tests/fault_cluster.py) hurt the ways servers get hurt, one
scenario after another on one cluster.

Each scenario asserts that nothing is lost and nothing is duplicated: every
report asked for ends SUCCEEDED exactly once, with exactly one complete file
whose rows are right and no partial file left, and a try is counted only when
the feature says it is. Each starts from a healthy cluster (whatever an
earlier scenario left running or stopped is brought back first).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from app.clock import utcnow
from app.domain.cron_runs import EXPIRE_TRIALS, PERIODIC_JOBS, when
from app.models.customers import Customer
from app.models.enums import TrialStatus
from app.queue import QUEUE_NAME
from tests import factories
from tests.fault_cluster import (
    LEASE_SECONDS,
    TICK_SECONDS,
    FaultCluster,
    Service,
    fault_cluster,
    paused,
)

# How long the stopped servers stay away.
VALKEY_OUTAGE_SECONDS = 4
POSTGRES_OUTAGE_SECONDS = 10


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultCluster]:
    async with fault_cluster(tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture
async def healthy(cluster: FaultCluster) -> FaultCluster:
    """The cluster with every server up and every report finished."""
    await cluster.ensure_running()
    await cluster.wait_finished([r.id for r in await cluster.reports()], 120)
    return cluster


def job_started(log: str, report_id: int) -> bool:
    """ARQ logs `… → report:<id>:<key>…:generate_report(…)` when a worker starts a job."""
    return f"→ report:{report_id}:" in log


async def test_a_worker_killed_mid_report_leaves_its_report_to_the_other_within_a_minute(
    healthy: FaultCluster,
) -> None:
    """kill -9: the report's lease lapses, the tick of the surviving worker
    queues it again and that worker writes the file, once."""
    cluster = healthy
    report_id = await cluster.generate_report(0, "US")
    running = await cluster.wait_running(report_id)
    victim = cluster.worker_of(running)
    (survivor,) = [w for w in cluster.workers if w is not victim]

    with paused(victim):  # killed mid-report, certainly
        killed = await cluster.report(report_id)
        victim.send(signal.SIGKILL)
    assert await victim.exited(10) == -signal.SIGKILL
    killed_at = time.monotonic()
    assert killed.status == "RUNNING" and killed.attempts == 1, killed
    assert not (cluster.reports_dir / (killed.storage_key or "-")).exists()

    # The job time limit is an hour: only the lease and the tick stand between
    # the kill and the retry.
    (done,) = await cluster.wait_finished([report_id], LEASE_SECONDS + 60)
    retried_within = time.monotonic() - killed_at
    await cluster.check_all_written_once([report_id])
    assert done.attempts == 2, done  # the killed try and the retry, nothing more
    assert "queued again" in survivor.text(), survivor.tail()
    # Either replica serves the file the surviving worker wrote (one shared folder).
    for replica in (0, 1):
        assert len(await cluster.download(replica, report_id)) == done.byte_size
    print(f"\nreport finished {retried_within:.1f} s after its worker was killed")
    await cluster.start_worker(victim)


async def test_workers_ride_out_a_valkey_restart_and_lose_no_queued_job(
    healthy: FaultCluster,
) -> None:
    """Valkey stopped for a few seconds while a report runs and others wait in
    the queue: both workers stay up, the running report finishes, the queued
    ones (kept in Valkey's append-only file) run once after, and new jobs are
    taken."""
    cluster = healthy
    running_id = await cluster.generate_report(0, "US")
    await cluster.wait_running(running_id)
    pids = [w.pid for w in cluster.workers]
    marks = [w.mark() for w in cluster.workers]

    # The workers are paused for the second it takes to queue three more
    # reports and stop Valkey, so those jobs are certainly still in the queue
    # (not yet taken) when Valkey goes away: they can only come back from its
    # append-only file. (A pause of a second is well inside the lease.)
    with paused(*cluster.workers):
        queued_ids = [await cluster.generate_report(n % 2, "EU") for n in range(3)]
        redis = Redis.from_url(cluster.valkey.url)
        try:
            assert await redis.zcard(QUEUE_NAME) >= 4  # the running job is still listed too
        finally:
            await redis.aclose()
        cluster.valkey.stop()
    stopped = await cluster.reports([running_id, *queued_ids])
    assert [r.status for r in stopped] == ["RUNNING", "QUEUED", "QUEUED", "QUEUED"], stopped

    deadline = time.monotonic() + VALKEY_OUTAGE_SECONDS
    while time.monotonic() < deadline:
        assert all(w.alive for w in cluster.workers), cluster.logs()
        await asyncio.sleep(0.2)
    cluster.valkey.start()
    back_at = time.time()

    ids = [running_id, *queued_ids]
    await cluster.wait_finished(ids, 90)
    assert [w.pid for w in cluster.workers] == pids and all(w.alive for w in cluster.workers)
    for worker in cluster.workers:
        await cluster.wait_worker_beating(worker, 30, since=back_at)
    rows = await cluster.check_all_written_once(ids)
    assert [r.attempts for r in rows] == [1, 1, 1, 1], rows

    # After the restart the workers take the next job.
    next_id = await cluster.generate_report(1, "EU")
    await cluster.wait_finished([next_id], 60)
    await cluster.check_all_written_once([*ids, next_id])
    for worker, mark in zip(cluster.workers, marks, strict=True):
        during = worker.since(mark)
        assert "unreachable" in during and "reachable again" in during, worker.tail()
        assert "Traceback" not in during, worker.tail()


async def test_a_postgresql_outage_gets_json_503_and_is_recovered_without_restarts(
    healthy: FaultCluster,
) -> None:
    """PostgreSQL stopped for 10 s: both replicas answer JSON 503 (UNAVAILABLE,
    Retry-After) to GraphQL and /readyz, /livez stays 200; once it is back,
    both answer again and the reports finish, with no process restarted."""
    cluster = healthy
    running_id = await cluster.generate_report(0, "US")
    await cluster.wait_running(running_id)
    services = [*cluster.replicas, *cluster.workers]
    pids = [s.pid for s in services]
    marks = [s.mark() for s in services]

    # The workers paused for a second: one report is running and two more are
    # still queued when the database goes.
    with paused(*cluster.workers):
        queued_ids = [await cluster.generate_report(n, "EU") for n in (0, 1)]
        before = await cluster.reports([running_id, *queued_ids])
        assert [r.status for r in before] == ["RUNNING", "QUEUED", "QUEUED"], before
        cluster.postgres.stop("fast")
    stopped_at = time.monotonic()
    seen: dict[int, set[str]] = {0: set(), 1: set()}
    while time.monotonic() < stopped_at + POSTGRES_OUTAGE_SECONDS:
        for replica in (0, 1):
            answer = await cluster.graphql(replica, "{ viewer { email } }", wait_seconds=10)
            assert answer.status_code == 503, (replica, answer.status_code, answer.text)
            assert answer.headers.get("retry-after"), answer.headers
            assert answer.headers["content-type"].startswith("application/json"), answer.headers
            (error,) = answer.json()["errors"]
            assert error["extensions"]["code"] == "UNAVAILABLE", error
            seen[replica].add("graphql")
            ready = await cluster.get(replica, "/readyz")
            assert ready.status_code == 503, (replica, ready.status_code, ready.text)
            seen[replica].add("readyz")
            live = await cluster.get(replica, "/livez")
            assert live.status_code == 200, (replica, live.status_code, live.text)
            seen[replica].add("livez")
        await asyncio.sleep(0.5)
    assert seen == {0: {"graphql", "readyz", "livez"}, 1: {"graphql", "readyz", "livez"}}

    cluster.postgres.start()
    for replica in (0, 1):
        await cluster.until(lambda r=replica: cluster.replica_ready(r), 60, f"replica {replica}")
        ready = await cluster.get(replica, "/readyz")
        assert ready.status_code == 200, ready.text
    ids = [running_id, *queued_ids]
    await cluster.wait_finished(ids, LEASE_SECONDS + TICK_SECONDS + 60)
    assert [s.pid for s in services] == pids
    assert all(s.alive for s in services), cluster.logs()
    rows = await cluster.check_all_written_once(ids)
    # The running report's try may count once more (its lease lapsed meanwhile).
    assert rows[0].attempts <= 2 and [r.attempts for r in rows[1:]] == [1, 1], rows
    # The outage is logged in a line or two, not as tracebacks.
    for service, mark in zip(services, marks, strict=True):
        assert "Traceback" not in service.since(mark), service.tail(6000)


async def test_periodic_occurrences_missed_while_no_worker_ran_run_once_after(
    healthy: FaultCluster,
) -> None:
    """Every worker down over two occurrences of each periodic job (trial
    expiry, report retention, the Sunday calling rollup): when the workers come
    back, each missed occurrence runs once, in order, with its own time; the
    two workers' ticks never run one twice."""
    cluster = healthy
    for worker in cluster.workers:
        worker.stop()
    # The outage, as the database records it: each job's last recorded
    # occurrence is the one before the two latest (the clock cannot be moved
    # back for real processes; the scheduled times that passed are what count).
    now = utcnow()
    last_recorded = {job.name: job.latest(now) - 2 * job.every for job in PERIODIC_JOBS}
    async with cluster.sql() as conn:
        await conn.execute("DELETE FROM cron_run")
        for job in PERIODIC_JOBS:
            occurrence = last_recorded[job.name]
            await conn.execute(
                "INSERT INTO cron_run (job, occurrence, claimed_at, finished_at, attempts) "
                "VALUES ($1, $2, $2, $2, 1)",
                job.name,
                occurrence,
            )
    # A trial that ended before the first missed trial expiry's day: that run
    # (not a later one) expires it, as of its own scheduled time.
    first_missed_expiry = last_recorded[EXPIRE_TRIALS.name] + EXPIRE_TRIALS.every
    ended = first_missed_expiry.date() - timedelta(days=1)
    async with cluster.orm():
        customer = await Customer.get(name="Small Customer")
        trial = await factories.trial(customer, ended - timedelta(days=30), ended)
    marks = [w.mark() for w in cluster.workers]

    for worker in cluster.workers:
        await cluster.start_worker(worker)

    async def caught_up() -> dict[str, list[asyncpg.Record]] | None:
        expected = {
            job.name: job.between(last_recorded[job.name], utcnow()) for job in PERIODIC_JOBS
        }
        async with cluster.sql() as conn:
            rows = await conn.fetch(
                "SELECT job, occurrence, attempts, finished_at, error FROM cron_run "
                "ORDER BY job, occurrence"
            )
        by_job: dict[str, list[asyncpg.Record]] = {job.name: [] for job in PERIODIC_JOBS}
        for row in rows:
            # Only the periodic jobs of this scenario (the daily upkeep may run too).
            if row["job"] in by_job and row["occurrence"] > last_recorded[row["job"]]:
                by_job[row["job"]].append(row)
        done = all(
            [r["occurrence"] for r in by_job[name]] == occurrences
            and all(r["finished_at"] is not None for r in by_job[name])
            for name, occurrences in expected.items()
        )
        return by_job if done else None

    # The periodic tick runs at second 0 of each minute; each missed occurrence
    # then runs as a job of its own, the next one queued when one ends.
    ran = await cluster.until(caught_up, 120, "the missed occurrences run", every=1)
    await asyncio.sleep(2)  # room for a duplicate run to show in the logs, were there one
    logs = "".join(w.since(m) for w, m in zip(cluster.workers, marks, strict=True))
    for name, rows in ran.items():
        assert len(rows) >= 2, (name, rows)
        for row in rows:
            assert row["attempts"] == 1 and row["error"] is None, (name, row)
            assert logs.count(f"{name} {when(row['occurrence'])}: ") == 1, (name, row, logs[-4000:])
    caught = ", ".join(
        f"{name} {when(r['occurrence'])}" for name, rows in ran.items() for r in rows
    )
    print(f"\nran once after the outage: {caught}")
    async with cluster.orm():
        await trial.refresh_from_db()
    assert trial.status == TrialStatus.EXPIRED
    assert trial.ended_at == first_missed_expiry


async def test_sigterm_drains_a_worker_the_running_report_finishes_there(
    healthy: FaultCluster,
) -> None:
    """SIGTERM mid-report with a grace longer than the report: the worker takes
    no new job, finishes the one it runs (one try) and exits 0."""
    cluster = healthy
    report_id = await cluster.generate_report(0, "US")
    running = await cluster.wait_running(report_id)
    draining = cluster.worker_of(running)
    (other,) = [w for w in cluster.workers if w is not draining]
    mark = draining.mark()

    with paused(draining):  # the report is running when the signal comes
        assert (await cluster.report(report_id)).status == "RUNNING"
        draining.send(signal.SIGTERM)
    await cluster.until(lambda: _says(draining, "draining", mark), 20, "the worker draining")
    later_id = await cluster.generate_report(1, "EU")  # for the other worker only
    assert await draining.exited(60) == 0, draining.tail()

    ids = [report_id, later_id]
    rows = await cluster.wait_finished(ids, 60)
    await cluster.check_all_written_once(ids)
    assert rows[0].attempts == 1, rows  # finished by the draining worker, first try
    assert not job_started(other.text(), report_id), other.tail()
    assert not job_started(draining.since(mark), later_id), draining.tail()
    assert job_started(other.text(), later_id), other.tail()
    await cluster.start_worker(draining)


async def test_sigterm_past_the_grace_gives_the_report_back_uncounted(
    healthy: FaultCluster,
) -> None:
    """SIGTERM with a grace shorter than the report: the try is cut, the report
    goes back to the queue without counting it, the other worker writes it."""
    cluster = healthy
    cut, finisher = cluster.workers
    await cluster.restart_worker(cut, worker_drain_seconds="0.2")
    mark = cut.mark()

    # The other worker paused while the report starts, so `cut` runs it.
    with paused(finisher):
        report_id = await cluster.generate_report(0, "US")
        running = await cluster.wait_running(report_id)
        assert running.worker_pid == cut.pid
        with paused(cut):
            assert (await cluster.report(report_id)).status == "RUNNING"
            cut.send(signal.SIGTERM)
    assert await cut.exited(30) == 0, cut.tail()
    assert "given back" in cut.since(mark), cut.tail()
    (done,) = await cluster.wait_finished([report_id], 60)
    await cluster.check_all_written_once([report_id])
    assert done.attempts == 1, done  # the cut try is not counted
    assert job_started(finisher.text(), report_id), finisher.tail()
    await cluster.start_worker(cut)


async def _says(service: Service, text: str, mark: int) -> bool:
    """`text` in the service's log after `mark` (a length of its log)."""
    return text in service.since(mark)
