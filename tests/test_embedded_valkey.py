"""The embedded default's Valkey is supervised: `partnerhub serve` (no
REDIS_URL) starts it again when it dies, on the same port and with the same
data folder, says so in one log line, and carries on without a restart:
/healthz is 200 again, jobs queued before the crash are still queued, and the
in-process worker runs the next report. At shutdown it is stopped for good.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psutil
from arq.connections import create_pool
from arq.jobs import Job, JobStatus

from app.demo import demo_admins
from app.queue import QUEUE_NAME, redis_settings
from tests.cli_process import cli_env, free_port, run_cli
from tests.test_serve import running, wait_healthy

RESTARTED = "started it again on port"
GENERATE = """mutation($t: ID!) {
  generateReport(input: {templateId: $t}) { report { id status } userErrors { message } }
}"""


def valkey_child(serve: psutil.Process) -> psutil.Process:
    """The valkey-server process that `serve` started (waits for it, bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = [p for p in serve.children(recursive=True) if "valkey" in p.name()]
        if children and children[0].status() != psutil.STATUS_ZOMBIE:
            return children[0]
        time.sleep(0.1)
    raise AssertionError("no valkey-server child of serve")


def valkeys_in(data_dir: str) -> list[int]:
    """Live valkey-server processes working in `data_dir`."""
    found = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        info = process.info
        if "valkey" in (info["name"] or "") and info["cwd"] == data_dir:
            if info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
    return found


def listening_port(process: psutil.Process) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ports = [c.laddr.port for c in process.net_connections("tcp") if c.status == "LISTEN"]
        if ports:
            return ports[0]
        time.sleep(0.1)
    raise AssertionError(f"valkey-server {process.pid} listens on no port")


async def queue_deferred_job(redis_url: str, job_id: str) -> None:
    """A job due in an hour: it must still be queued after the crash."""
    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:
        await pool.enqueue_job("generate_report", 0, "", _job_id=job_id, _defer_by=3600)
    finally:
        await pool.aclose()


async def job_status(redis_url: str, job_id: str) -> JobStatus:
    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:
        return await Job(job_id, pool, _queue_name=QUEUE_NAME).status()
    finally:
        await pool.aclose()


def wait_for_line(log: Path, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log.read_text()}"
        time.sleep(0.1)


def graphql(base: str, token: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_a_killed_embedded_valkey_is_started_again_and_serve_carries_on(tmp_path: Path) -> None:
    env = cli_env(None, tmp_path / "var")
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24"], env).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    token = demo_admins(1)[0].token
    with running(["serve", "--port", str(port)], env, log) as server:
        wait_healthy(base, server, log)
        first = valkey_child(psutil.Process(server.pid))
        valkey_port, data_dir = listening_port(first), first.cwd()
        assert Path(data_dir) == (tmp_path / "var" / "valkey").resolve()
        assert valkeys_in(data_dir) == [first.pid]
        redis_url = f"redis://127.0.0.1:{valkey_port}"
        asyncio.run(queue_deferred_job(redis_url, "queued-before-the-crash"))

        first.kill()  # kill -9
        first.wait(timeout=10)
        wait_healthy(base, server, log, timeout=30)  # back to 200, same serve process
        second = valkey_child(psutil.Process(server.pid))
        assert second.pid != first.pid
        assert listening_port(second) == valkey_port  # every client's URL stays right
        assert second.cwd() == data_dir  # the same data (appendonly)
        wait_for_line(log, RESTARTED)
        assert asyncio.run(job_status(redis_url, "queued-before-the-crash")) == JobStatus.deferred

        # The in-process worker takes the next report after the crash.
        templates = graphql(base, token, "{ reportTemplates { id reportType } }")
        devices = next(
            t["id"] for t in templates["reportTemplates"] if t["reportType"] == "DEVICES"
        )
        generated = graphql(base, token, GENERATE, {"t": devices})["generateReport"]
        assert generated["userErrors"] == []
        report_id = generated["report"]["id"]
        deadline, status = time.monotonic() + 60, ""
        while time.monotonic() < deadline and status != "SUCCEEDED":
            status = graphql(
                base, token, "query($id: ID!) { report(id: $id) { status } }", {"id": report_id}
            )["report"]["status"]
            assert status != "FAILED"
            time.sleep(0.3)
        assert status == "SUCCEEDED", log.read_text()[-4000:]
    # Stopped with the service, and not started again while stopping.
    assert valkeys_in(data_dir) == []
    assert log.read_text().count(RESTARTED) == 1, log.read_text()
    assert "Application shutdown complete" in log.read_text()
