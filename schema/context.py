"""The per-request context every resolver receives as `info.context`: the
viewer, one clock for the whole request, and the request's DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as StrawberryInfo

from app.clock import utcnow
from app.config import Settings
from app.domain.access import Viewer
from app.domain.statuses import StatusClock
from app.queue import JobQueue
from app.throttle import Throttle


@dataclass
class Context:
    request: Request
    response: Response | None
    viewer: Viewer
    settings: Settings
    clock: StatusClock = field(init=False)
    # A websocket's `connection_init` payload (Strawberry sets it; schema/asgi.py reads it).
    connection_params: Any = field(default=None, init=False)
    # `extensions.cost` of the answer, set by schema/limits.py before execution.
    cost: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.clock = StatusClock(
            now=utcnow(),
            expiring_soon_days=self.settings.expiring_soon_days,
            no_recent_activity_days=self.settings.no_recent_activity_days,
        )

    @property
    def public_base_url(self) -> str:
        """PARTNERHUB_PUBLIC_BASE_URL, or the address this request came to."""
        if self.settings.public_base_url:
            return self.settings.public_base_url
        base = str(self.request.base_url).rstrip("/")
        # Over a websocket the request's own address is ws(s)://: links are http(s).
        if base.startswith(("ws://", "wss://")):
            base = "http" + base.removeprefix("ws")
        return base

    @property
    def queue(self) -> JobQueue:
        """The job queue (Redis) of the process serving this request."""
        return self.request.app.state.runtime.queue

    @property
    def throttle(self) -> Throttle | None:
        """The per-viewer cost buckets (Redis) of the process serving this request
        (None for a schema run in process, without the HTTP app: benchmarks)."""
        runtime = getattr(
            getattr(getattr(self.request, "app", None), "state", None), "runtime", None
        )
        return runtime.throttle if runtime is not None else None

    @property
    def request_id(self) -> str | None:
        return getattr(getattr(self.request, "state", None), "request_id", None)

    @cached_property
    def loaders(self):
        from schema.loaders import Loaders

        return Loaders(self.viewer, self.clock)


Info = StrawberryInfo[Context, None]
