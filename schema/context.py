"""The per-request context every resolver receives as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as StrawberryInfo

from app.domain.access import Viewer


@dataclass
class Context:
    request: Request
    response: Response | None
    viewer: Viewer


Info = StrawberryInfo[Context, None]
