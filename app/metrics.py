"""Prometheus metrics: what the API and the workers count, and /metrics.

Every name starts with `partnerhub_`:
- `partnerhub_http_requests_total{route,method,status}`: HTTP requests by route
  template (`/graphql`, `/reports/{report_id}/download`; any unknown path is
  `other`), method and status code;
- `partnerhub_graphql_operations_total{operation,outcome}` and
  `partnerhub_graphql_operation_duration_seconds{operation}` (histogram of
  queries and mutations): GraphQL operations by name (anonymous ones as
  `anonymous`; at most MAX_OPERATION_NAMES names a process, the rest `other`)
  and outcome (`ok`, `user_error`, or a code: UNAUTHENTICATED, THROTTLED,
  MAX_COST_EXCEEDED, TIMEOUT, INTERNAL, ...);
- `partnerhub_jobs_total{function,outcome}` and
  `partnerhub_job_duration_seconds{function}`: worker jobs by outcome
  (`complete`, `retried`, `failed`, `cancelled` by the time limit or a drain);
- `partnerhub_queue_ready_jobs`, `partnerhub_queue_deferred_jobs`,
  `partnerhub_queue_oldest_ready_seconds`, `partnerhub_workers_alive`: read
  from Redis at scrape time (absent while Redis is unreachable);
- `partnerhub_report_rows_total`, `partnerhub_report_bytes_total`: rows and
  bytes of the report files written;
- `partnerhub_webhook_deliveries_total{outcome}`: `delivered`, `retry`, `failed`;
- `partnerhub_email_deliveries_total{outcome}`: tries of the e-mails of scheduled
  reports, `sent`, `retry`, `failed` (given up), `skipped` (recipient no longer
  allowed).

`partnerhub serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before
uvicorn starts its processes: each process then keeps its figures in files
there and /metrics sums them (prometheus_client's multiprocess mode), whichever
process answers. `partnerhub worker` serves its own /metrics on
PARTNERHUB_WORKER_METRICS_PORT. When PARTNERHUB_METRICS_TOKEN is set, both ask
for `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from arq import Retry
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    make_wsgi_app,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.middleware import error_response
from app.worker_health import QueueHealth, queue_health

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "partnerhub_http_requests",
    "HTTP requests by route template, method and status code.",
    ["route", "method", "status"],
)
GRAPHQL_OPERATIONS = Counter(
    "partnerhub_graphql_operations",
    "GraphQL operations by operation name and outcome (ok, user_error or an error code).",
    ["operation", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "partnerhub_graphql_operation_duration_seconds",
    "Time to answer a GraphQL query or mutation, by operation name.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
JOBS = Counter(
    "partnerhub_jobs",
    "Worker jobs by function and outcome (complete, retried, failed, cancelled).",
    ["function", "outcome"],
)
JOB_DURATION = Histogram(
    "partnerhub_job_duration_seconds",
    "Time a worker job ran, by function.",
    ["function"],
    buckets=(0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600),
)
REPORT_ROWS = Counter("partnerhub_report_rows", "Rows written to report files.")
REPORT_BYTES = Counter("partnerhub_report_bytes", "Bytes written to report files.")
WEBHOOK_DELIVERIES = Counter(
    "partnerhub_webhook_deliveries",
    "Webhook delivery attempts by outcome (delivered, retry, failed).",
    ["outcome"],
)
EMAIL_DELIVERIES = Counter(
    "partnerhub_email_deliveries",
    "E-mail delivery tries of scheduled reports by outcome (sent, retry, failed, skipped).",
    ["outcome"],
)

# ------------------------------------------------------------------ HTTP

HTTP_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS"})
OTHER = "other"


def route_template(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The path of the route a request is for (`/reports/{report_id}/download`),
    or `other`: never the raw path, so the label's values stay few."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return getattr(route, "path_format", None) or getattr(route, "path", OTHER)
    return OTHER


class HttpMetrics:
    """Counts every HTTP request by route template, method and status code,
    refused ones (401, 413, CORS preflights) included."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        finally:
            method = scope["method"] if scope["method"] in HTTP_METHODS else OTHER
            HTTP_REQUESTS.labels(route_template(self.routes, scope), method, str(status)).inc()


# --------------------------------------------------------------- GraphQL

MAX_OPERATION_NAMES = 200
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class OperationNames:
    """The label of an operation name. Clients choose the names: only
    well-formed ones, and only the first `limit` a process sees, become labels
    (the others are `other`), so a client cannot grow the series without end."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _OPERATION_NAME.fullmatch(name):
            return OTHER
        with self._lock:
            if name in self._seen:
                return name
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(name)
            return name


OPERATION_NAMES = OperationNames()


def count_operation(name: str | None, outcome: str, seconds: float | None) -> None:
    """One GraphQL operation answered; `seconds` is None for subscriptions
    (they last as long as the client listens)."""
    label = OPERATION_NAMES.label(name)
    GRAPHQL_OPERATIONS.labels(label, outcome).inc()
    if seconds is not None:
        GRAPHQL_DURATION.labels(label).observe(seconds)


# ------------------------------------------------------------------ jobs

Job = TypeVar("Job")


def instrument_job(job: Job) -> Job:
    """Counts a job's runs by outcome and times them. Takes a job coroutine
    function, or an arq Function or CronJob (whose coroutine it wraps); keeps
    the coroutine's name, which arq calls the job by."""
    if dataclasses.is_dataclass(job) and hasattr(job, "coroutine"):
        return dataclasses.replace(job, coroutine=instrument_job(job.coroutine))  # type: ignore[type-var]
    coroutine: Callable[..., Awaitable[Any]] = job  # type: ignore[assignment]
    if getattr(coroutine, "__partnerhub_instrumented__", False):
        return job
    function = coroutine.__name__

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await coroutine(ctx, *args, **kwargs)
        except Retry:
            outcome = "retried"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        else:
            outcome = "complete"
            return result
        finally:
            JOBS.labels(function, outcome).inc()
            JOB_DURATION.labels(function).observe(time.perf_counter() - started)

    run.__partnerhub_instrumented__ = True  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def instrument_jobs(jobs: Iterable[Job]) -> list[Job]:
    """instrument_job() on each of a worker's functions or cron jobs."""
    return [instrument_job(job) for job in jobs]


def count_report_file(rows: int | None, size: int | None) -> None:
    """A report file written: its rows and bytes."""
    REPORT_ROWS.inc(rows or 0)
    REPORT_BYTES.inc(size or 0)


def count_webhook(delivered: bool, retry_in: float | None) -> None:
    """One webhook delivery attempt: delivered, to be tried again, or given up."""
    outcome = "delivered" if delivered else "retry" if retry_in is not None else "failed"
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def count_email(outcome: str) -> None:
    """One e-mail delivery try of a scheduled report: sent, retry, failed or skipped."""
    EMAIL_DELIVERIES.labels(outcome).inc()


# ----------------------------------------------------------------- queue

QUEUE_READ_SECONDS = 2.0


async def read_queue_health(redis_url: str) -> QueueHealth | None:
    """The queue's state from Redis, or None when Redis does not answer soon
    (a scrape must not fail, nor hang, because Redis is away)."""
    if not redis_url:
        return None
    redis = Redis.from_url(
        redis_url, socket_timeout=QUEUE_READ_SECONDS, socket_connect_timeout=QUEUE_READ_SECONDS
    )
    try:
        async with asyncio.timeout(QUEUE_READ_SECONDS * 2):
            return await queue_health(redis)
    except Exception as exc:
        log.debug("queue metrics left out: %s: %s", type(exc).__name__, exc)
        return None
    finally:
        try:
            await redis.aclose()
        except Exception:  # pragma: no cover - closing an unreachable client
            pass


def queue_metrics(health: QueueHealth | None) -> list[Metric]:
    """The queue's gauges (none when its state could not be read)."""
    if health is None:
        return []
    gauges = [
        ("partnerhub_queue_ready_jobs", "Jobs queued and due now.", health.ready_jobs),
        ("partnerhub_queue_deferred_jobs", "Jobs queued for later.", health.deferred_jobs),
        (
            "partnerhub_queue_oldest_ready_seconds",
            "How long the oldest due job has waited (0 when none waits).",
            health.oldest_ready_seconds or 0.0,
        ),
        (
            "partnerhub_workers_alive",
            "Workers whose heartbeat is current.",
            len(health.workers),
        ),
    ]
    return [GaugeMetricFamily(name, text, value=value) for name, text, value in gauges]


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


class QueueCollector(Collector):
    """The queue's gauges read at each scrape, for a process without an event
    loop of its own to spare (the worker's metrics server thread)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def describe(self) -> list[Metric]:
        return []  # registering it reads nothing from Redis

    def collect(self) -> Iterator[Metric]:
        return iter(queue_metrics(asyncio.run(read_queue_health(self.redis_url))))


# ---------------------------------------------------------------- export


def multiprocess() -> bool:
    """True when this process keeps its figures in PROMETHEUS_MULTIPROC_DIR
    (decided by prometheus_client when it was first imported)."""
    return values.ValueClass is not values.MutexValue


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """Every metric in Prometheus text format: summed over the processes of
    `serve` in multiprocess mode, this process's own otherwise."""
    registry = CollectorRegistry()
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Fixed(list(REGISTRY.collect())))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


def token_accepted(authorization: str | None, token: str | None) -> bool:
    """True when /metrics is open (no token set) or the header carries the token."""
    if not token:
        return True
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((authorization or "").strip().encode(), expected)


def metrics_refused() -> Response:
    return error_response(
        401,
        "Metrics need `Authorization: Bearer <PARTNERHUB_METRICS_TOKEN>`.",
        "UNAUTHENTICATED",
        {"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: Prometheus text format (behind PARTNERHUB_METRICS_TOKEN when set)."""
    runtime = request.app.state.runtime
    if not token_accepted(request.headers.get("authorization"), runtime.settings.metrics_token):
        return metrics_refused()
    health = await read_queue_health(runtime.redis_url)
    body = exposition([_Fixed(queue_metrics(health))])
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per scrape (logs are the service's own, in its format)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_worker_metrics(
    port: int, redis_url: str, token: str | None, host: str = "0.0.0.0"
) -> WSGIServer:
    """`partnerhub worker`'s /metrics on `port` (every interface: Prometheus
    scrapes it from elsewhere), in a daemon thread; the same token as the
    API's when set."""
    REGISTRY.register(QueueCollector(redis_url))
    metrics_app = make_wsgi_app(REGISTRY)
    refusal = metrics_refused()
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in refusal.raw_headers]

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not token_accepted(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", headers)
            return [bytes(refusal.body)]
        return metrics_app(environ, start_response)

    server = make_server(host, port, guarded, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server
