"""`partnerhub serve` under a real uvicorn, as a user runs it.

Tortoise keeps its state in a contextvar: an app that works through httpx's
ASGITransport can still fail every request under uvicorn. These tests start
the real processes and talk HTTP to them.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx
from arq.connections import create_pool

from app.demo import demo_admins
from app.queue import QUEUE_NAME, redis_settings
from tests.cli_process import PARTNERHUB, ROOT, cli_env, free_port, run_cli

QUERY = "{ viewer { email role } organization { name setupCompleted } }"


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        process = subprocess.Popen(
            [PARTNERHUB, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(base: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited early:\n{log.read_text()}"
        try:
            response = httpx.get(f"{base}/healthz", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server not healthy in {timeout}s:\n{log.read_text()}")


def ask(base: str, token: str) -> dict:
    response = httpx.post(
        f"{base}/graphql",
        json={"query": QUERY},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_embedded_default_serves_graphql_with_demo_data(tmp_path: Path) -> None:
    """No settings: SQLite under var/, embedded Valkey, worker in the process."""
    env = cli_env(None, tmp_path / "var")
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24", "--if-empty"], env).returncode == 0
    assert (tmp_path / "var").exists()
    port = free_port()
    log = tmp_path / "serve.log"
    with running(["serve", "--port", str(port)], env, log) as server:
        base = f"http://127.0.0.1:{port}"
        health = wait_healthy(base, server, log)
        assert (health["status"], health["database"], health["redis"]) == ("ok", "ok", "ok")
        for admin in demo_admins(1):
            answer = ask(base, admin.token)
            assert answer["data"]["viewer"] == {"email": admin.email, "role": admin.role.value}
            assert answer["data"]["organization"]["setupCompleted"] == (
                admin.partner == "Northwind Partners"
            )
        assert httpx.post(f"{base}/graphql", json={"query": QUERY}).status_code == 401
        page = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
    # uvicorn re-raises SIGTERM after a graceful shutdown.
    assert server.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
    assert "embedded Valkey" in log.read_text()
    # The embedded Valkey server (its config lives under var/valkey) stopped with the service.
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert [
        line for line in processes.splitlines() if "valkey" in line and str(tmp_path) in line
    ] == []


def test_production_set_up_serves_and_a_separate_worker_runs_jobs(
    fresh_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """DATABASE_URL + REDIS_URL: serve runs no worker inside; `partnerhub worker` does the jobs."""
    env = cli_env(fresh_database_url, tmp_path / "var", redis_url=redis_url)
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24"], env).returncode == 0
    port = free_port()
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    with (
        running(["serve", "--port", str(port)], env, serve_log) as server,
        running(["worker"], env, worker_log) as worker,
    ):
        base = f"http://127.0.0.1:{port}"
        assert wait_healthy(base, server, serve_log)["redis"] == "ok"
        admin = demo_admins(1)[0]
        assert ask(base, admin.token)["data"]["viewer"]["email"] == admin.email
        # A proxy on this machine (trusted by default) names the client it forwards.
        forwarded = httpx.get(f"{base}/livez", headers={"X-Forwarded-For": "198.51.100.4"})
        assert forwarded.status_code == 200

        # A job queued in Redis is run by the separate worker process, against the
        # same database: far in the future every demo trial has ended.
        async def run_job() -> int:
            queue = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
            try:
                job = await queue.enqueue_job(
                    "expire_trials", (date.today() + timedelta(days=400)).isoformat()
                )
                assert job is not None
                return await job.result(timeout=60)
            finally:
                await queue.aclose()

        expired = asyncio.run(run_job())
        assert expired > 0, worker_log.read_text()
        assert worker.poll() is None
    assert "embedded" not in serve_log.read_text()
    assert '198.51.100.4:0 - "GET /livez' in serve_log.read_text()
