"""Per-viewer throttling of GraphQL cost: a leaky bucket kept in Redis, so every
API process of the service draws from the same bucket.

Each viewer's bucket holds up to `capacity` points and regains `restore_rate`
points a second; an operation takes its requested cost from the bucket before
it runs, or is refused when the bucket holds less. The arithmetic runs in one
Lua script on the Redis clock, so replicas agree and no two requests race.

With Redis unreachable, throttling fails open (app/optional_redis.py): requests
are served unthrottled and one warning is logged per outage (and one line when
Redis is back).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from app.optional_redis import OptionalRedis

log = logging.getLogger("partnerhub.throttle")

KEY_PREFIX = "partnerhub:throttle:"

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
        self.capacity = capacity
        self.restore_rate = restore_rate
        self.redis = OptionalRedis(redis_url, "throttling", log)

    def _unthrottled(self) -> ThrottleStatus:
        return ThrottleStatus(True, self.capacity, self.capacity, self.restore_rate)

    async def take(self, viewer_key: str, cost: int) -> ThrottleStatus:
        """Take `cost` points from the viewer's bucket, or say how long to wait."""
        answered, result = await self.redis.run(
            lambda redis: redis.eval(
                _TAKE, 1, KEY_PREFIX + viewer_key, self.capacity, self.restore_rate, cost
            )
        )
        if not answered:
            return self._unthrottled()
        allowed, available = result  # type: ignore[misc]
        left = float(available)
        if int(allowed):
            return ThrottleStatus(True, self.capacity, math.floor(left), self.restore_rate)
        wait = (cost - left) / self.restore_rate
        return ThrottleStatus(
            False, self.capacity, math.floor(left), self.restore_rate, retry_after=wait
        )

    async def close(self) -> None:
        await self.redis.close()
