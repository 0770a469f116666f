"""Per-viewer throttling of GraphQL cost: a leaky bucket kept in Redis, so every
API process of the service draws from the same bucket.

Each viewer's bucket holds up to `capacity` points and regains `restore_rate`
points a second; an operation takes its requested cost from the bucket before
it runs, or is refused when the bucket holds less. The arithmetic runs in one
Lua script on the Redis clock, so replicas agree and no two requests race.

With Redis unreachable, throttling fails open: requests are served unthrottled
and one warning is logged per outage (and one line when Redis is back).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("partnerhub.throttle")

KEY_PREFIX = "partnerhub:throttle:"
# After a failure, Redis is not asked again for this long (requests are not slowed
# by a connection attempt each while it is down).
RETRY_AFTER_FAILURE_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.5

_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'available', 'at')
local available = tonumber(state[1])
local at = tonumber(state[2])
if available == nil or at == nil then
  available = capacity
  at = now
end
available = math.min(capacity, available + math.max(0, now - at) * rate)
local allowed = 0
if cost <= available then
  available = available - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'available', tostring(available), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {allowed, tostring(available)}
"""


@dataclass(frozen=True)
class ThrottleStatus:
    """What a viewer's bucket said about one operation."""

    allowed: bool
    maximum_available: int
    currently_available: int
    restore_rate: float
    # Seconds until the bucket holds the cost again (when refused).
    retry_after: float = 0.0


class Throttle:
    """The buckets of every viewer, on one Redis."""

    def __init__(self, redis_url: str, capacity: int, restore_rate: float) -> None:
        self.redis_url = redis_url
        self.capacity = capacity
        self.restore_rate = restore_rate
        self._redis: Redis | None = None
        self._down_since: float | None = None
        self._skip_until = 0.0

    def _client(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(
                self.redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        return self._redis

    def _unthrottled(self) -> ThrottleStatus:
        return ThrottleStatus(True, self.capacity, self.capacity, self.restore_rate)

    async def take(self, viewer_key: str, cost: int) -> ThrottleStatus:
        """Take `cost` points from the viewer's bucket, or say how long to wait."""
        if not self.redis_url or time.monotonic() < self._skip_until:
            return self._unthrottled()
        try:
            allowed, available = await self._client().eval(
                _TAKE, 1, KEY_PREFIX + viewer_key, self.capacity, self.restore_rate, cost
            )
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning(
                    "throttling is off: Redis does not answer (%s); requests are served "
                    "unthrottled until it does",
                    type(exc).__name__,
                )
            return self._unthrottled()
        if self._down_since is not None:
            log.warning(
                "throttling is back on: Redis answers again after %.0f s",
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        left = float(available)
        status = ThrottleStatus(
            allowed=bool(int(allowed)),
            maximum_available=self.capacity,
            currently_available=math.floor(left),
            restore_rate=self.restore_rate,
        )
        if status.allowed:
            return status
        wait = (cost - left) / self.restore_rate
        return ThrottleStatus(
            False, self.capacity, math.floor(left), self.restore_rate, retry_after=wait
        )

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
