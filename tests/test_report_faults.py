"""Report workers that die or are stopped mid-report, as real `partnerhub
worker` processes on real Valkey, on both databases.

- kill -9: the report's lease lapses (seconds, not the job time limit) and the
  tick queues it again; it ends SUCCEEDED once, with one file and no partial one.
- SIGTERM: the worker drains. Within the grace period the running report
  finishes there; past it, the report goes back to the queue without counting
  the try and another worker finishes it.
"""

from __future__ import annotations

import asyncio
import csv
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg

from app.config import Settings
from app.models.enums import AdminRole, ReportStatus
from app.models.reports import Report, ReportTemplate
from app.queue import JobQueue
from app.storage import LocalStorage
from tests import factories
from tests.cli_process import PARTNERHUB, ROOT, cli_env
from tests.report_helpers import flush_queue
from tests.test_report_memory import _add_devices

ROWS = 60_000
LEASE_SECONDS = 6  # renewed every 2 s; the job time limit stays at its default (1 h)


@contextmanager
def worker(env: dict[str, str], log: Path, **settings: str) -> Iterator[subprocess.Popen]:
    """A real `partnerhub worker`, killed at the end if it is still running."""
    with log.open("a") as out:
        process = subprocess.Popen(
            [PARTNERHUB, "worker"],
            env={**env, **{f"PARTNERHUB_{k.upper()}": v for k, v in settings.items()}},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def tail(log: Path) -> str:
    return log.read_text()[-6000:]


async def wait_for(condition: Callable[[], Awaitable[bool]], limit: float, what: str, log: Path):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not seen in {limit}s:\n{tail(log)}")


@asynccontextmanager
async def stalled_reads(database_url: str) -> AsyncIterator[bool]:
    """On PostgreSQL, the device table locked from another session until the end
    of the block (a report reading it waits, RUNNING); yields whether it did."""
    if not database_url.startswith("postgres"):
        yield False
        return
    locker = await asyncpg.connect(database_url)
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE device IN ACCESS EXCLUSIVE MODE")
        yield True
        await transaction.rollback()
    finally:
        await locker.close()


async def exited(process: subprocess.Popen, limit: float, log: Path) -> int:
    deadline = time.monotonic() + limit
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker did not exit in {limit}s:\n{tail(log)}")
        await asyncio.sleep(0.1)
    return process.returncode


class BigReport:
    """A Devices report of ROWS rows, queued, and what to check of it."""

    def __init__(self, db: Settings, report: Report) -> None:
        self.storage = LocalStorage(db.report_folder)
        self.report = report
        self.partial = self.storage.partial_path(report.storage_key or "")

    @classmethod
    async def queued(cls, db: Settings, redis_url: str) -> BigReport:
        from app.domain.reports import ReportRequest, create_report

        await flush_queue(redis_url)
        org = await factories.partner("Northwind Partners", "northwind.example")
        admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
        customer = await factories.customer(org, "Big Customer")
        await _add_devices(customer.id, ROWS, 0)
        template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
        queue = JobQueue(redis_url)
        try:
            report = await create_report(
                org.id,
                ReportRequest(template, None, None, None),
                admin.id,
                queue,
                factories.NOW.date(),
            )
        finally:
            await queue.close()
        return cls(db, report)

    async def current(self) -> Report:
        return await Report.get(id=self.report.id)

    async def being_written(self) -> bool:
        current = await self.current()
        return (
            current.status == ReportStatus.RUNNING
            and self.partial.exists()
            and self.partial.stat().st_size > 50_000
        )

    async def running(self) -> bool:
        return (await self.current()).status == ReportStatus.RUNNING

    async def finished(self) -> bool:
        return (await self.current()).status in (ReportStatus.SUCCEEDED, ReportStatus.FAILED)

    async def check_written_once(self, log: Path) -> Report:
        done = await self.current()
        assert done.status == ReportStatus.SUCCEEDED, (done.error, tail(log))
        assert done.row_count == ROWS
        assert not self.partial.exists()
        files = [p for p in self.storage.root.rglob("*") if p.is_file()]
        assert files == [self.storage.root / (done.storage_key or "")]
        with files[0].open(newline="") as handle:
            assert sum(1 for _ in csv.reader(handle)) == ROWS + 1
        assert done.byte_size == files[0].stat().st_size
        assert done.lease_owner is None and done.lease_expires_at is None
        return done


def _env(db: Settings, database_url: str, redis_url: str) -> dict[str, str]:
    env = cli_env(database_url, db.var_dir, redis_url)
    env["PARTNERHUB_REPORT_LEASE_SECONDS"] = str(LEASE_SECONDS)
    env["PARTNERHUB_REPORT_LEASE_RENEW_SECONDS"] = "2"
    env["PARTNERHUB_REPORT_CHUNK_ROWS"] = "100"  # slow enough to be stopped midway
    return env


async def test_a_killed_worker_s_report_is_queued_again_when_its_lease_lapses(
    db: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    big = await BigReport.queued(db, redis_url)
    env, log = _env(db, database_url, redis_url), tmp_path / "workers.log"

    with worker(env, log) as first:
        await wait_for(big.being_written, 60, "a report being written", log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    killed = await big.current()
    assert killed.status == ReportStatus.RUNNING and killed.attempts == 1
    assert not await big.storage.exists(killed.storage_key or "")  # nothing under the real name

    with worker(env, log) as second:
        started = time.monotonic()
        # The job time limit is an hour: only the lease (6 s) and the next tick
        # (every 15 s) stand between the kill and the retry.
        await wait_for(big.finished, LEASE_SECONDS + 15 + 60, "the retried report finishing", log)
        retried_within = time.monotonic() - started
        await asyncio.sleep(1)  # let a duplicate run show itself, if there were one
        second.send_signal(signal.SIGTERM)
        assert await exited(second, 30, log) == 0
    done = await big.check_written_once(log)
    assert done.attempts == 2  # the killed try and the retry, nothing more
    assert "queued again" in tail(log)
    print(f"report retried and finished {retried_within:.1f} s after a second worker started")


async def test_sigterm_lets_the_running_report_finish_within_the_grace_period(
    db: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    big = await BigReport.queued(db, redis_url)
    env, log = _env(db, database_url, redis_url), tmp_path / "worker.log"

    with worker(env, log, worker_drain_seconds="120") as draining:
        await wait_for(big.being_written, 60, "a report being written", log)
        draining.send_signal(signal.SIGTERM)
        assert await exited(draining, 150, log) == 0
    done = await big.check_written_once(log)
    assert done.attempts == 1  # finished by the draining worker, in its first try
    assert "draining" in tail(log)


async def test_a_report_cut_at_the_end_of_the_grace_period_is_requeued_uncounted(
    db: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    big = await BigReport.queued(db, redis_url)
    env, log = _env(db, database_url, redis_url), tmp_path / "workers.log"

    async with stalled_reads(database_url) as stalled:
        with worker(env, log, worker_drain_seconds="0.2") as draining:
            # PostgreSQL writes 60,000 rows in well under the grace period: there
            # the report's read is held (the devices table locked) while it runs.
            running = big.running if stalled else big.being_written
            await wait_for(running, 60, "a report being written", log)
            draining.send_signal(signal.SIGTERM)
            assert await exited(draining, 30, log) == 0
    given_back = await big.current()
    assert given_back.status == ReportStatus.QUEUED, tail(log)
    assert given_back.attempts == 0  # the cut try does not count
    assert not big.partial.exists()

    with worker(env, log) as second:
        await wait_for(big.finished, 120, "the requeued report finishing", log)
        second.send_signal(signal.SIGTERM)
        assert await exited(second, 30, log) == 0
    done = await big.check_written_once(log)
    assert done.attempts == 1
