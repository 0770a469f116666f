"""`partnerhub status` as an operator runs it: the database, Redis, the
workers alive and the queue, exit code 0 only when the service can do its
work, else 1 with the reason on one line; and the heartbeats of real workers,
in `status` and /healthz alike, until a worker is killed.

`serve` with PostgreSQL and no PARTNERHUB_PUBLIC_BASE_URL warns (once, on
stderr) that links would point at http://127.0.0.1:8000, and starts anyway.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from app.worker_health import WorkerBeat
from tests.cli_process import cli_env, free_port, run_cli
from tests.test_health import beat_workers, queue_jobs, valkey_server
from tests.test_serve import running, wait_healthy

NO_WORKER = "error: no worker is alive: start `partnerhub worker` (as many as you like)"


def status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(["status"], env, timeout=60)


def test_status_names_what_is_wrong_in_one_line_and_exits_1_until_a_worker_beats(
    tmp_path: Path,
) -> None:
    help_text = run_cli(["status", "--help"], cli_env(None, tmp_path / "unused"))
    assert help_text.returncode == 0 and "Exit code 0 when" in help_text.stdout

    with valkey_server() as valkey:
        url = valkey.connection_url  # type: ignore[attr-defined]
        env = cli_env(f"sqlite://{tmp_path / 'partnerhub.sqlite3'}", tmp_path / "var", url)
        assert run_cli(["migrate"], env).returncode == 0

        found = status(env)
        assert found.returncode == 1
        assert found.stdout.splitlines() == [
            "database  ok (SQLite)",
            f"redis     ok ({url})",
            "workers   0 alive",
            "queue     0 ready, 0 deferred",
        ]
        assert found.stderr.strip() == NO_WORKER

        now = time.time()
        asyncio.run(
            beat_workers(
                url,
                WorkerBeat(id="host-a:101:aaaaaa", started_at=now, running_jobs=1),
                WorkerBeat(id="host-b:202:bbbbbb", started_at=now, draining=True),
            )
        )
        asyncio.run(queue_jobs(url, waiting_seconds=40))
        found = status(env)
        assert found.returncode == 0, found.stderr
        assert found.stderr == ""
        lines = found.stdout.splitlines()
        assert lines[:3] == ["database  ok (SQLite)", f"redis     ok ({url})", "workers   2 alive"]
        assert re.fullmatch(r" +host-a:101:aaaaaa  1 running job, last beat \d+ s ago", lines[3])
        assert re.fullmatch(
            r" +host-b:202:bbbbbb  0 running jobs, last beat \d+ s ago, draining", lines[4]
        )
        queue = re.fullmatch(
            r"queue     1 ready, 1 deferred; the oldest ready job has waited (\d+) s", lines[5]
        )
        assert queue is not None and 40 <= int(queue[1]) < 120, lines[5]

        valkey.stop()  # type: ignore[attr-defined]
        found = status(env)
        assert found.returncode == 1
        assert found.stdout.splitlines()[1:] == [
            f"redis     unreachable ({url})",
            "workers   unknown (Redis does not answer)",
        ]
        assert found.stderr.strip() == (
            f"error: Redis at {url} does not answer: start it or fix REDIS_URL"
        )

    # A database nobody listens for: said at once, in one line.
    env = cli_env(f"postgres://postgres@127.0.0.1:{free_port()}/partnerhub", tmp_path / "var", url)
    started = time.monotonic()
    found = status(env)
    assert found.returncode == 1
    assert found.stdout.splitlines()[0] == "database  unreachable (PostgreSQL)"
    assert len(found.stderr.strip().splitlines()) == 1
    assert found.stderr.startswith("error: cannot reach the database at postgres://"), found.stderr
    assert time.monotonic() - started < 30

    # A Redis password never reaches the screen, whether Redis answers or not.
    secret_url = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"
    env = cli_env(f"sqlite://{tmp_path / 'partnerhub.sqlite3'}", tmp_path / "var", secret_url)
    found = status(env)
    assert found.returncode == 1
    masked = secret_url.replace("s3cret-pass", "***")
    assert f"redis     unreachable ({masked})" in found.stdout.splitlines()
    assert found.stderr.strip().startswith(f"error: Redis at {masked} does not answer")
    assert "s3cret-pass" not in found.stdout + found.stderr
    refused = run_cli(["worker", "--burst"], env, timeout=60)
    assert refused.returncode == 1 and masked in refused.stderr
    assert "s3cret-pass" not in refused.stdout + refused.stderr


def test_in_the_embedded_default_status_reads_the_valkey_serve_started(tmp_path: Path) -> None:
    """No REDIS_URL: the workers run inside `partnerhub serve`, on the Valkey it
    started; status says so when serve is not running, and reads that Valkey
    when it is."""
    env = cli_env(None, tmp_path / "var")
    assert run_cli(["migrate"], env).returncode == 0
    found = status(env)
    assert found.returncode == 1
    assert "redis     not running" in found.stdout
    assert "`partnerhub serve`" in found.stderr and "GET /healthz" in found.stderr
    assert len(found.stderr.strip().splitlines()) == 1

    port = free_port()
    log = tmp_path / "serve.log"
    with running(["serve", "--port", str(port)], env, log) as server:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, log)
        deadline = time.monotonic() + 30
        while (found := status(env)).returncode != 0:  # the in-process worker's first beat
            assert time.monotonic() < deadline, (found.stdout, found.stderr, log.read_text())
            time.sleep(0.5)
        assert "the embedded Valkey of `partnerhub serve`; its workers run inside it" in (
            found.stdout
        )
        assert "workers   1 alive" in found.stdout
        assert f":{server.pid}:" in found.stdout  # the worker inside serve
        health = httpx.get(f"{base}/healthz", timeout=10).json()
        assert health["workersAlive"] == 1 and f":{server.pid}:" in health["workers"][0]["id"]
    assert "PUBLIC_BASE_URL" not in log.read_text()  # SQLite: the local set-up, no warning


async def _fresh_postgres(postgres_url: str) -> str:
    name = f"status_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    parts = urlsplit(postgres_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _workers_alive(base: str) -> list[dict]:
    body = httpx.get(f"{base}/healthz", timeout=10).json()
    return body["workers"]


def test_a_real_worker_shows_up_in_status_and_healthz_and_drops_out_after_kill_9(
    postgres_url: str, tmp_path: Path
) -> None:
    database_url = asyncio.run(_fresh_postgres(postgres_url))
    with valkey_server() as valkey:
        url = valkey.connection_url  # type: ignore[attr-defined]
        env = cli_env(database_url, tmp_path / "var", url)  # no PARTNERHUB_PUBLIC_BASE_URL
        assert run_cli(["migrate"], env).returncode == 0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
        with (
            running(["serve", "--port", str(port)], env, serve_log) as server,
            running(["worker"], env, worker_log) as worker,
        ):
            wait_healthy(base, server, serve_log)
            deadline = time.monotonic() + 30
            while not (workers := _workers_alive(base)):
                assert worker.poll() is None, worker_log.read_text()
                assert time.monotonic() < deadline, worker_log.read_text()
                time.sleep(0.3)
            assert [w["id"].split(":")[1] for w in workers] == [str(worker.pid)]
            assert workers[0]["runningJobs"] == 0 and workers[0]["secondsSinceBeat"] < 10
            found = status(env)
            assert found.returncode == 0, found.stderr
            assert "workers   1 alive" in found.stdout and f":{worker.pid}:" in found.stdout

            worker.kill()
            worker.wait(timeout=10)
            killed = time.monotonic()
            while _workers_alive(base):
                assert time.monotonic() - killed < 25, "a killed worker is still listed"
                time.sleep(0.5)
            found = status(env)
            assert found.returncode == 1
            assert "workers   0 alive" in found.stdout
            assert found.stderr.strip() == NO_WORKER
            assert server.poll() is None
    warnings = [line for line in serve_log.read_text().splitlines() if "PUBLIC_BASE_URL" in line]
    assert warnings == [
        "warning: PARTNERHUB_PUBLIC_BASE_URL is not set: report download links (in the API and "
        "in webhooks) will point at http://127.0.0.1:8000; set it to the address clients reach this service at "
        "(e.g. https://partnerhub.example.com)"
    ], warnings
