"""Redis for features that fail open (throttling, persisted queries): short
timeouts, one warning when an outage starts and one line when it ends, and
Redis is not asked again for a few seconds after a failure, so requests do
not each wait for a connection attempt while it is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

T = TypeVar("T")
TIMEOUT_SECONDS = 0.5
RETRY_AFTER_FAILURE_SECONDS = 5.0


class OptionalRedis:
    """One Redis connection pool that a feature can do without."""

    def __init__(self, redis_url: str, feature: str, log: logging.Logger) -> None:
        self.redis_url = redis_url
        self.feature = feature
        self.log = log
        self._redis: Redis | None = None
        self._down_since: float | None = None
        self._skip_until = 0.0

    async def run(self, work: Callable[[Redis], Awaitable[T]]) -> tuple[bool, T | None]:
        """(True, the result of `work`), or (False, None) when Redis is unset,
        resting after a failure, or failing now."""
        if not self.redis_url or time.monotonic() < self._skip_until:
            return False, None
        if self._redis is None:
            self._redis = Redis.from_url(
                self.redis_url,
                socket_timeout=TIMEOUT_SECONDS,
                socket_connect_timeout=TIMEOUT_SECONDS,
            )
        try:
            result = await work(self._redis)
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.log.warning(
                    "%s is off: Redis does not answer (%s); going on without it until it does",
                    self.feature,
                    type(exc).__name__,
                )
            return False, None
        if self._down_since is not None:
            self.log.warning(
                "%s is back on: Redis answers again after %.0f s",
                self.feature,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        return True, result

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
