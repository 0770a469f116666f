"""ASGI middleware of the HTTP edge: request ids, body limits, and access logs
that leak no credential."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable

import orjson
import structlog
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.logs import redact
from app.outage import Outage, database_unreachable

REQUEST_ID_HEADER = "x-request-id"
# Any of these query parameters makes a GET an operation (GraphQL over HTTP).
OPERATION_PARAMETERS = frozenset({"query", "operationname", "variables", "extensions"})


def wants_graphiql_page(method: str, parameter_names: Iterable[str], accept: str) -> bool:
    """A browser asking for the GraphiQL page itself: a GET of HTML with no
    operation parameter (the names as decoded from the URL, any case)."""
    return (
        method == "GET"
        and not any(name.strip().lower() in OPERATION_PARAMETERS for name in parameter_names)
        and "text/html" in accept
    )


_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def error_response(
    status: int,
    message: str,
    code: str,
    headers: dict[str, str] | None = None,
    *,
    extensions: dict[str, str] | None = None,
) -> Response:
    """An HTTP error as GraphQL clients read errors: JSON with `errors` and a code
    (and any other `extensions`). A message may quote the client (an operation
    name): lone surrogates become escapes, as no JSON encoder writes them."""
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    body = orjson.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **(extensions or {})}}]}
    )
    return Response(body, status_code=status, media_type="application/json", headers=headers)


# The database away: what a client is told (HTTP 503, `UNAVAILABLE`) and when
# to try again. PostgreSQL restarts in seconds; connections are made again on
# the next request (app/db.py), so a short wait is enough.
DATABASE_UNREACHABLE = "The database is unreachable right now: retry in a few seconds."
DATABASE_RETRY_AFTER_SECONDS = 5

# The database as this process's HTTP requests see it: one warning when they
# start failing for want of it, one line when it answers again, not a line (or
# a traceback) per request.
DATABASE_OUTAGE = Outage("Database (HTTP requests)", logging.getLogger("partnerhub.http"))


def unavailable_response(message: str = DATABASE_UNREACHABLE) -> Response:
    """HTTP 503 with a JSON error (`UNAVAILABLE`) and `Retry-After`."""
    return error_response(
        503, message, "UNAVAILABLE", {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    )


class _ResponseStarted:
    """An ASGI `send` that notes when the response has started (after which an
    error can no longer be answered with a response of its own)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class JsonErrors:
    """The last word on an exception that no route handled: a JSON error instead
    of Starlette's text/plain 500. A lost database answers 503 `UNAVAILABLE`
    with `Retry-After` (the outage logged once, no traceback); anything else
    500 `INTERNAL_SERVER_ERROR` with the request id, logged once with its
    traceback. It sits inside RequestId and CORS, so the answer carries
    `X-Request-ID` and the CORS headers a page needs to read it. An exception
    after the response started cannot be answered any more: it goes on up."""

    log = logging.getLogger("partnerhub.http")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _ResponseStarted(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if tracked.started:
                raise
            if database_unreachable(exc):
                DATABASE_OUTAGE.failed(exc)
                response = unavailable_response()
            else:
                request_id = scope.get("state", {}).get("request_id") or "-"
                self.log.error(
                    "unexpected error in %s %s (request %s)",
                    scope["method"],
                    scope["path"],
                    request_id,
                    exc_info=exc,
                )
                response = error_response(
                    500,
                    f"Unexpected error (request {request_id}).",
                    "INTERNAL_SERVER_ERROR",
                    extensions={"requestId": request_id},
                )
            await response(scope, receive, send)


class RequestId:
    """Gives every request an id (the client's `X-Request-ID` when it is a sane
    one, else a new one), kept in `request.state.request_id`, bound to the
    logging context for the request (app/logs.py) and returned in the
    response's `X-Request-ID` (a websocket's in its handshake answer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        # The partner id and operation name bound further in leave with the request.
        context = structlog.contextvars.get_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(**context)


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over `max_bytes` on the given paths with HTTP 413 and
    a JSON error: at once when Content-Length says so, else as soon as the bytes
    read pass the limit (nothing more is buffered)."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths

    def _too_large(self) -> Response:
        return error_response(
            413,
            f"The request body is over the limit of {self.max_bytes} bytes.",
            "PAYLOAD_TOO_LARGE",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isascii() or not declared.isdigit()):
            await error_response(400, "Content-Length is not a number.", "BAD_REQUEST")(
                scope, receive, send
            )
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        tracked = _ResponseStarted(send)
        try:
            await self.app(scope, counted_receive, tracked)
        except _BodyTooLarge:
            if tracked.started:  # pragma: no cover - the view reads the whole body first
                raise
            await self._too_large()(scope, receive, send)


class RedactCredentials(logging.Filter):
    """Access-log lines show request targets without signatures or tokens (also
    when uvicorn's own log format is in use, not app/logs.py's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.redact(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        return True

    @classmethod
    def redact(cls, text: str) -> str:
        return redact(text)  # app/logs.py: the same redaction as every log line


def redact_access_log() -> None:
    """Install RedactCredentials on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactCredentials) for f in access.filters):
        access.addFilter(RedactCredentials())


# The embedded default (`make run`) also serves a local dev server (Vite on 5173 ...).
LOCAL_ORIGINS = r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?"
EXPOSED_HEADERS = ["Content-Disposition", "X-Checksum-SHA256", "X-Request-ID", "Retry-After"]


def cors_options(settings: Settings) -> dict:
    """Starlette CORSMiddleware's options: the allowed origins of the settings,
    bearer tokens in a header (no cookies), the download headers exposed."""
    return {
        "allow_origins": settings.allowed_origins,
        "allow_origin_regex": LOCAL_ORIGINS if settings.is_embedded_default else None,
        "allow_methods": ["GET", "POST", "HEAD"],
        "allow_headers": ["Authorization", "Content-Type", "X-Request-ID"],
        "expose_headers": EXPOSED_HEADERS,
        "allow_credentials": False,
        "max_age": 600,
    }


def origin_allowed(settings: Settings, origin: str) -> bool:
    """True when a browser page of `origin` may use the API (CORS and websockets)."""
    if origin in settings.allowed_origins:
        return True
    return settings.is_embedded_default and re.fullmatch(LOCAL_ORIGINS, origin) is not None
