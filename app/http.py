"""The Starlette app: /graphql (Strawberry, GET and POST, GraphiQL), the health
probes /livez, /readyz and /healthz (app/health.py).

This module and app/cli.py are the composition root: they wire the GraphQL
layer (schema/) and the workers (workers/) into a process. The rest of app/
imports neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from structlog.contextvars import bind_contextvars

from app.auth import bearer_token
from app.clock import utcnow
from app.config import Settings, get_settings
from app.db import close_database, open_database
from app.domain.downloads import DownloadRefused, check_download
from app.domain.ingest import IngestRejected, ingest
from app.domain.reports import download_file_name
from app.health import healthz, livez, readyz
from app.heap import settle_for_serving
from app.metrics import HttpMetrics, metrics_endpoint
from app.middleware import (
    BodyLimit,
    JsonErrors,
    RequestId,
    cors_options,
    error_response,
    redact_access_log,
    wants_graphiql_page,
)
from app.models.enums import ReportStatus
from app.models.reports import Report
from app.oidc import OidcVerifier
from app.persisted_queries import QueryStore, TrustedDocuments
from app.queue import EmbeddedValkey, JobQueue, ping
from app.sign_in import SignIn, SignInRefused, remember_sign_in, sign_in
from app.storage import open_storage
from app.throttle import Throttle

log = logging.getLogger(__name__)

# /metrics checks PARTNERHUB_METRICS_TOKEN itself (app/metrics.py).
# The health probes answer load balancers and monitors, which hold no token.
PUBLIC_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
GRAPHQL_PATHS = frozenset({"/graphql"})
# Signed report downloads: the URL is the credential (app/domain/downloads.py).
PUBLIC_PREFIXES = ("/reports/",)


def json_response(body: dict, status_code: int = 200, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def unauthorized(message: str) -> Response:
    return error_response(
        401, message, "UNAUTHENTICATED", {"WWW-Authenticate": 'Bearer realm="partnerhub"'}
    )


def _is_graphiql_page(scope: Scope) -> bool:
    """A browser asking for the GraphiQL page itself (it sends its token with each
    query). Decided on the decoded parameters, as Strawberry reads them: any
    operation parameter, however it is encoded, needs a viewer."""
    return scope["path"] == "/graphql" and wants_graphiql_page(
        scope["method"],
        QueryParams(scope.get("query_string", b"")).keys(),
        Headers(scope=scope).get("accept", ""),
    )


class BearerAuth:
    """Resolves `Authorization: Bearer <token>` (an API token, or an OIDC access
    token when PARTNERHUB_OIDC_ISSUER is set) to a viewer on every request but
    /healthz, signed downloads and the GraphiQL page; a missing or refused token
    gets HTTP 401 with a JSON error saying why. A websocket upgrade needs no
    header: a browser signs in with its `connection_init` (schema/asgi.py)."""

    def __init__(self, app: ASGIApp, verifier: OidcVerifier | None = None) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if (
            path in PUBLIC_PATHS
            or (scope["type"] == "http" and path.startswith(PUBLIC_PREFIXES))
            or (scope["type"] == "http" and _is_graphiql_page(scope))
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope).get("authorization"))
        signed: SignIn | None = None
        refusal: SignInRefused | None = None
        if token is not None:
            try:
                signed = await sign_in(token, self.verifier)
            except SignInRefused as refused:
                refusal = refused
        if signed is not None:
            remember_sign_in(scope.setdefault("state", {}), signed)
            bind_contextvars(partner_id=signed.viewer.partner_id)  # for the logs
        elif scope["type"] == "http":
            if refusal is not None and refusal.status == 503:
                retry_after = {"Retry-After": str(refusal.retry_after_seconds)}
                await error_response(503, str(refusal), "UNAVAILABLE", retry_after)(
                    scope, receive, send
                )
                return
            message = (
                str(refusal)
                if refusal is not None
                else "Missing bearer token: send `Authorization: Bearer <token>` "
                "(create one with `partnerhub token create --email ...`)."
            )
            await unauthorized(message)(scope, receive, send)
            return
        elif refusal is not None and refusal.status == 503:
            # A websocket: its connection_init is refused as unavailable (schema/asgi.py).
            scope.setdefault("state", {})["sign_in_unavailable"] = str(refusal)
        await self.app(scope, receive, send)


@dataclass
class Runtime:
    """What the process started and must stop: embedded Valkey, in-process worker."""

    settings: Settings
    redis_url: str = ""
    valkey: EmbeddedValkey | None = None
    worker_task: asyncio.Task | None = None
    worker: object | None = None
    _queue: JobQueue | None = None
    _throttle: Throttle | None = None
    _query_store: QueryStore | None = None
    trusted_documents: TrustedDocuments | None = None
    oidc_verifier: OidcVerifier | None = None

    @property
    def query_store(self) -> QueryStore:
        """Automatic persisted queries on this process's Redis (opened on first use)."""
        if self._query_store is None:
            self._query_store = QueryStore(self.redis_url)
        return self._query_store

    @property
    def throttle(self) -> Throttle:
        """Per-viewer cost buckets on this process's Redis (opened on first use)."""
        if self._throttle is None:
            self._throttle = Throttle(
                self.redis_url,
                self.settings.throttle_capacity,
                self.settings.throttle_restore_rate,
            )
        return self._throttle

    @property
    def queue(self) -> JobQueue:
        """The job queue on this process's Redis (opened on first use)."""
        if self._queue is None:
            self._queue = JobQueue(self.redis_url)
        return self._queue

    async def close_queue(self) -> None:
        if self._queue is not None:
            await self._queue.close()
            self._queue = None
        if self._throttle is not None:
            await self._throttle.close()
            self._throttle = None
        if self._query_store is not None:
            await self._query_store.close()
            self._query_store = None


MAX_INGEST_BYTES = 64 * 1024 * 1024


async def ingest_batch(request: Request) -> Response:
    """POST /ingest/{kind}: one NDJSON batch, validated whole, written in one transaction."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_INGEST_BYTES:
        return json_response({"errors": [{"line": 0, "message": "The batch is over 64 MiB."}]}, 413)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_INGEST_BYTES:
            return json_response(
                {"errors": [{"line": 0, "message": "The batch is over 64 MiB."}]}, 413
            )
    kind = request.path_params["kind"]
    try:
        accepted = await ingest(request.state.viewer, kind, bytes(body))
    except IngestRejected as rejected:
        return json_response({"errors": rejected.errors}, rejected.status)
    return json_response({"kind": kind, "accepted": accepted})


async def download_report(request: Request) -> Response:
    """GET /reports/{id}/download?expires=…&signature=…: the file, for anyone
    holding an unexpired URL that Report.download signed."""
    settings: Settings = request.app.state.runtime.settings
    report_id = request.path_params["report_id"]
    try:
        check_download(
            settings.signing_key(),
            report_id,
            request.query_params.get("expires"),
            request.query_params.get("signature"),
            utcnow(),
        )
    except DownloadRefused as refused:
        return json_response({"error": str(refused)}, 403)
    report = await Report.get_or_none(id=report_id)
    storage = open_storage(settings)
    if report is None or report.status == ReportStatus.EXPIRED or not report.storage_key:
        return json_response({"error": "This report's file was deleted (retention)."}, 410)
    if report.status != ReportStatus.SUCCEEDED or not await storage.exists(report.storage_key):
        return json_response({"error": "This report's file is not available."}, 404)
    name = download_file_name(report, utcnow().date())
    headers = {
        "Content-Disposition": content_disposition(name),
        "Content-Length": str(await storage.size(report.storage_key)),
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if report.checksum:
        headers["X-Checksum-SHA256"] = report.checksum
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=CSV_MEDIA_TYPE)
    return StreamingResponse(
        storage.read(report.storage_key), headers=headers, media_type=CSV_MEDIA_TYPE
    )


CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def content_disposition(file_name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 one (RFC 6266)."""
    fallback = file_name.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name)}"


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown path, method not allowed) as JSON errors."""
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_REQUEST")
    return error_response(exc.status_code, exc.detail, code, dict(exc.headers or {}))


def create_served_app() -> Starlette:
    """The app as `partnerhub serve` runs it (uvicorn's factory,
    `app.http:create_served_app`): `create_app` with the collector set for
    serving once it has started (app/heap.py)."""
    return create_app(serving=True)


def create_app(settings: Settings | None = None, *, serving: bool = False) -> Starlette:
    """The ASGI app. `serving`: a process of its own that only serves it (the
    collector is set for that at the end of startup: app/heap.py)."""
    from schema.asgi import create_graphql_app

    settings = settings or get_settings()
    runtime = Runtime(settings=settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await open_database(
            settings, statement_timeout_seconds=settings.operation_timeout_seconds + 1
        )
        try:
            await _start_queue(runtime)
            if serving:
                settle_for_serving()
            yield
        finally:
            await _stop_queue(runtime)
            await close_database()

    graphql = create_graphql_app(settings)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/ingest/{kind}", ingest_batch, methods=["POST"]),
            Route("/reports/{report_id:int}/download", download_report, methods=["GET", "HEAD"]),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    # The GraphQL websocket endpoint (subscriptions) shares the path.
    app.router.add_websocket_route("/graphql", graphql)
    app.state.runtime = runtime
    runtime.oidc_verifier = OidcVerifier.from_settings(settings)
    if settings.trusted_documents_file is not None:
        runtime.trusted_documents = TrustedDocuments.load(settings.trusted_documents_file)
    # From the outside in: CORS, RequestId, BearerAuth, then BodyLimit (an unknown
    # caller is refused before its body is read).
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, paths=GRAPHQL_PATHS)
    app.add_middleware(BearerAuth, verifier=runtime.oidc_verifier)
    # An exception no route handled: a JSON error (503 for a lost database).
    app.add_middleware(JsonErrors)
    app.add_middleware(RequestId)
    # Outermost: CORS preflights are answered before authentication, and every
    # answer (a 401 too) carries the CORS headers a page needs to read it.
    app.add_middleware(CORSMiddleware, **cors_options(settings))
    # Outside everything: every request counts, refused ones too.
    app.add_middleware(HttpMetrics, routes=app.routes)
    redact_access_log()
    return app


async def _start_queue(runtime: Runtime) -> None:
    """Embedded default: start Valkey and an in-process worker. Otherwise: use REDIS_URL."""
    settings = runtime.settings
    if settings.embedded_redis:
        runtime.valkey = EmbeddedValkey(settings.var_dir)
        runtime.redis_url = await asyncio.to_thread(runtime.valkey.start)
        # Started again (same port and data) if it dies, until _stop_queue.
        runtime.valkey.supervise()
        from workers.settings import build_worker

        runtime.worker = worker = build_worker(
            runtime.redis_url, in_process=True, settings=settings
        )
        runtime.worker_task = asyncio.create_task(worker.async_run(), name="arq-worker")
    else:
        runtime.redis_url = settings.redis_url or ""
        await ping(runtime.redis_url)


async def _stop_queue(runtime: Runtime) -> None:
    await runtime.close_queue()
    if runtime.worker is not None:
        # No new job; running ones get PARTNERHUB_WORKER_DRAIN_SECONDS to finish.
        await runtime.worker.drain()  # type: ignore[attr-defined]
    if runtime.worker_task is not None:
        runtime.worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runtime.worker_task
    if runtime.valkey is not None:
        # Supervision ends first: no restart while stopping.
        await runtime.valkey.aclose()
