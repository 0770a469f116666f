"""Outages of the servers the service depends on: telling a lost connection
from a bug, and riding one out with capped backoff and two log lines (one when
it starts, one when it ends) instead of a traceback a second."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# asyncpg's errors for a server that went away or refuses connections.
_DATABASE_GONE_NAMES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "InterfaceError",
        "TooManyConnectionsError",
        "InternalClientError",
        "ClientCannotConnectError",
        "ConnectionRejectionError",
    }
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def database_unreachable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database cannot be reached
    now (refused, reset, shut down, timed out connecting), not that a statement
    was wrong. Tortoise wraps asyncpg's errors, so the whole chain is read."""
    for error in _chain(exc):
        if isinstance(error, (ConnectionError, TimeoutError)) and not isinstance(
            error, (RedisConnectionError, RedisTimeoutError)
        ):
            return True
        if isinstance(error, socket.gaierror):  # the host name does not resolve
            return True
        name = type(error).__name__
        text = str(error).lower()
        if name in ("InterfaceError", "InternalClientError"):
            # asyncpg's misuse errors ("another operation is in progress") are
            # bugs: only a closed connection or a closing pool is an outage.
            if "connection is closed" in text or "pool is closing" in text:
                return True
            continue
        if name in _DATABASE_GONE_NAMES:
            return True
        if "connection was closed" in text or "the database system is" in text:
            return True
    return False


def redis_unreachable(exc: BaseException) -> bool:
    """True when `exc` says Redis/Valkey cannot be reached now."""
    return any(
        isinstance(error, (RedisConnectionError, RedisTimeoutError, ConnectionError))
        for error in _chain(exc)
    )


class Outage:
    """One dependency's outage as a process sees it: `failed` on each error
    (logs once, at the start), `recovered` on the next success (logs once, with
    how long it lasted), `delay` the next wait: 0.5 s doubling to `max_delay`."""

    def __init__(self, what: str, log: logging.Logger, max_delay: float = 5.0) -> None:
        self.what = what
        self.log = log
        self.max_delay = max_delay
        self.started: float | None = None
        self._delay = 0.5

    @property
    def ongoing(self) -> bool:
        return self.started is not None

    def failed(self, exc: BaseException) -> float:
        """Note a failure; returns how long to wait before the next try."""
        if self.started is None:
            self.started = time.monotonic()
            self._delay = 0.5
            self.log.warning(
                "%s unreachable (%s: %s); retrying with backoff up to %.0f s",
                self.what,
                type(exc).__name__,
                str(exc)[:200] or "-",
                self.max_delay,
            )
            return self._delay
        self._delay = min(self._delay * 2, self.max_delay)
        return self._delay

    def recovered(self) -> None:
        if self.started is not None:
            self.log.warning(
                "%s reachable again after %.1f s", self.what, time.monotonic() - self.started
            )
            self.started = None

    async def wait_after(self, exc: BaseException) -> None:
        await asyncio.sleep(self.failed(exc))
