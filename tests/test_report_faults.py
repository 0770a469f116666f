"""A worker killed (SIGKILL) while it writes a report: another worker retries
the job, the report ends SUCCEEDED exactly once, and no partial file is left.
Real `partnerhub worker` processes on real Valkey, on both databases."""

from __future__ import annotations

import asyncio
import csv
import signal
import subprocess
import time
from pathlib import Path

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
JOB_TIMEOUT = 8  # seconds; a dead worker's job is retried 10 s after this


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            [PARTNERHUB, "worker"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def read(log: Path) -> str:
    return log.read_text()


async def wait_for(condition, limit: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not seen in {limit}s:\n{read(log)}")


async def test_a_killed_worker_leaves_no_partial_file_and_the_retry_succeeds_once(
    db: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    from app.domain.reports import ReportRequest, create_report

    await flush_queue(redis_url)
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    customer = await factories.customer(org, "Big Customer")
    await _add_devices(customer.id, ROWS, 0)
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")

    env = cli_env(database_url, db.var_dir, redis_url)
    env["PARTNERHUB_JOB_TIMEOUT_SECONDS"] = str(JOB_TIMEOUT)
    env["PARTNERHUB_REPORT_CHUNK_ROWS"] = "100"  # slow enough to be killed midway
    log = tmp_path / "workers.log"
    queue = JobQueue(redis_url)
    try:
        report = await create_report(
            org.id, ReportRequest(template, None, None, None), admin.id, queue, factories.NOW.date()
        )
    finally:
        await queue.close()
    storage = LocalStorage(db.report_folder)
    partial = storage.partial_path(report.storage_key)

    first = start_worker(env, log)
    try:

        async def writing() -> bool:
            current = await Report.get(id=report.id)
            return (
                current.status == ReportStatus.RUNNING
                and partial.exists()
                and partial.stat().st_size > 50_000
            )

        await wait_for(writing, 60, "a report being written", log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    killed = await Report.get(id=report.id)
    assert killed.status == ReportStatus.RUNNING and killed.attempts == 1
    assert not await storage.exists(report.storage_key)  # nothing under the real name

    second = start_worker(env, log)
    try:

        async def finished() -> bool:
            return (await Report.get(id=report.id)).status in (
                ReportStatus.SUCCEEDED,
                ReportStatus.FAILED,
            )

        await wait_for(finished, JOB_TIMEOUT + 60, "the retried report finishing", log)
        await asyncio.sleep(1)  # let a duplicate run show itself, if there were one
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
    done = await Report.get(id=report.id)
    assert done.status == ReportStatus.SUCCEEDED, (done.error, log.read_text())
    assert done.attempts == 2  # the killed try and the retry, nothing more
    assert done.row_count == ROWS
    assert not partial.exists()
    files = [p for p in storage.root.rglob("*") if p.is_file()]
    assert files == [storage.root / report.storage_key]
    with (storage.root / report.storage_key).open(newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) == ROWS + 1
    assert done.byte_size == (storage.root / report.storage_key).stat().st_size
