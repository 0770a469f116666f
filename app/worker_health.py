"""Worker heartbeats and the queue's state, kept in Redis for `partnerhub status`,
/healthz and /metrics.

Each worker writes `partnerhub:worker:<id>` every HEARTBEAT_SECONDS with a time
to live of three beats: a worker that stops beating (killed, hung, cut off)
drops out of the list by itself.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field

import orjson
from redis.asyncio import Redis

from app.queue import QUEUE_NAME

HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL_SECONDS = 3 * HEARTBEAT_SECONDS
KEY_PREFIX = "partnerhub:worker:"


def new_worker_id() -> str:
    """host:pid:random, unique per worker process (and per in-process worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerBeat:
    """What a worker says of itself on each beat."""

    id: str
    started_at: float  # unix time
    running_jobs: int = 0
    jobs_complete: int = 0
    jobs_failed: int = 0
    jobs_retried: int = 0
    draining: bool = False
    beat_at: float = field(default_factory=time.time)


async def beat(redis: Redis, worker: WorkerBeat) -> None:
    """Record one heartbeat (raises the Redis error when Redis is away)."""
    worker.beat_at = time.time()
    await redis.set(
        KEY_PREFIX + worker.id, orjson.dumps(asdict(worker)), px=int(HEARTBEAT_TTL_SECONDS * 1000)
    )


async def forget(redis: Redis, worker_id: str) -> None:
    """A worker that stops cleanly leaves the list at once."""
    await redis.delete(KEY_PREFIX + worker_id)


@dataclass(frozen=True)
class QueueHealth:
    workers: list[WorkerBeat]
    ready_jobs: int  # queued and due now
    deferred_jobs: int  # queued for later (retries, deferred webhooks)
    oldest_ready_seconds: float | None  # how long the oldest due job has waited


async def queue_health(redis: Redis) -> QueueHealth:
    """The live workers (newest beat first) and the queue's depth."""
    workers = []
    async for key in redis.scan_iter(match=KEY_PREFIX + "*", count=500):
        raw = await redis.get(key)
        if raw:
            workers.append(WorkerBeat(**orjson.loads(raw)))
    workers.sort(key=lambda w: w.id)
    now_ms = time.time() * 1000
    ready = await redis.zcount(QUEUE_NAME, "-inf", now_ms)
    total = await redis.zcard(QUEUE_NAME)
    oldest = await redis.zrangebyscore(QUEUE_NAME, "-inf", now_ms, start=0, num=1, withscores=True)
    oldest_seconds = max(0.0, (now_ms - oldest[0][1]) / 1000) if oldest else None
    return QueueHealth(workers, ready, total - ready, oldest_seconds)
