"""Prometheus metrics as an operator scrapes them: /metrics of the API (one
process, and `serve --workers 2` summing both), the worker's own port, the
metrics token, and counters that move by exactly what was done."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

import app.metrics
from app.auth import hash_token, new_token
from app.config import Settings
from app.metrics import OperationNames
from app.models.admins import ApiToken
from app.models.enums import AdminRole
from app.models.reports import Report
from app.queue import JobQueue
from tests import factories
from tests.cli_process import cli_env, free_port
from tests.graphql_client import app_client, gql
from tests.report_helpers import flush_queue, run_jobs
from tests.report_world import build_report_world
from tests.test_report_faults import worker
from tests.test_report_schedules import Receiver, _scheduled_report_with_webhook
from tests.test_serve import running, wait_healthy
from workers.reports import report_tick

Sample = tuple[str, frozenset[tuple[str, str]]]


def parse(text: str) -> dict[Sample, float]:
    """Every sample of a Prometheus exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[Sample, float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


@pytest.fixture
def http_settings(db: Settings, redis_url: str) -> Settings:
    """As tests/test_report_schedules.py: webhook receivers listen on 127.0.0.1."""
    return db.model_copy(update={"redis_url": redis_url, "webhook_allow_hosts": "127.0.0.1"})


@pytest.fixture
def fresh_operation_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operation names are kept per process up to a limit: these tests count
    their own, whatever names earlier tests of this process used."""
    monkeypatch.setattr(app.metrics, "OPERATION_NAMES", OperationNames())


# ------------------------------------------------------------ the API, in process


async def test_http_and_graphql_counters_move_by_exactly_the_requests_sent(
    client: httpx.AsyncClient, fresh_operation_names: None
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    before = await scrape(client)

    for _ in range(3):
        assert (await gql(client, token, "query CountMe { viewer { email } }")).status_code == 200
    assert (await gql(client, token, "{ viewer { email } }")).status_code == 200
    broken = await gql(client, token, "query Broken { nope }")
    assert broken.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    invalid = await gql(client, token, "query Paged { customers(first: -1) { totalCount } }")
    assert invalid.json()["errors"][0]["extensions"]["code"] == "INVALID"
    assert (await gql(client, None, "query CountMe { viewer { email } }")).status_code == 401
    signed_in = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/no/such/path", headers=signed_in)).status_code == 404
    refused = await client.get("/reports/4242/download?expires=1&signature=forged")
    assert refused.status_code == 403

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "partnerhub_http_requests_total"
    assert moved(requests, route="/graphql", method="POST", status="200") == 6
    assert moved(requests, route="/graphql", method="POST", status="401") == 1
    assert moved(requests, route="other", method="GET", status="404") == 1
    download = "/reports/{report_id}/download"
    assert moved(requests, route=download, method="GET", status="403") == 1
    # The scrape before this one; a path never becomes a label of its own.
    assert moved(requests, route="/metrics", method="GET", status="200") == 1
    assert not [labels for name, labels in after if ("route", "/no/such/path") in labels]

    operations = "partnerhub_graphql_operations_total"
    assert moved(operations, operation="CountMe", outcome="ok") == 3
    assert moved(operations, operation="anonymous", outcome="ok") == 1
    assert moved(operations, operation="Broken", outcome="GRAPHQL_VALIDATION_FAILED") == 1
    assert moved(operations, operation="Paged", outcome="user_error") == 1
    # The request refused before GraphQL (no token) is no operation.
    assert (
        sum(v for (n, _), v in after.items() if n == operations)
        - sum(v for (n, _), v in before.items() if n == operations)
        == 6
    )
    duration = "partnerhub_graphql_operation_duration_seconds"
    assert moved(f"{duration}_count", operation="CountMe") == 3
    assert moved(f"{duration}_sum", operation="CountMe") > 0
    assert moved(f"{duration}_bucket", operation="CountMe", le="+Inf") == 3


async def test_refusals_and_time_limits_are_counted_by_their_code(
    http_settings: Settings, redis_url: str, fresh_operation_names: None
) -> None:
    await flush_queue(redis_url)  # no cost bucket of an earlier admin with the same id
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    limits = {"max_query_cost": 10, "throttle_capacity": 10, "throttle_restore_rate": 0.001}
    async with app_client(http_settings.model_copy(update=limits), redis_url) as client:
        before = await scrape(client)
        costly = await gql(client, token, "query Costly { customers(first: 50) { nodes { id } } }")
        assert costly.json()["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
        codes = []
        for _ in range(11):  # the bucket holds 10 points; the viewer costs 1
            answer = (await gql(client, token, "query Cheap { viewer { email } }")).json()
            codes.append(answer["errors"][0]["extensions"]["code"] if "errors" in answer else "ok")
        assert codes == ["ok"] * 10 + ["THROTTLED"]
    # A time limit no operation can meet (the throttle's Redis round trip alone is longer).
    async with app_client(
        http_settings.model_copy(update={"operation_timeout_seconds": 1e-6}), redis_url
    ) as client:
        late = await gql(client, token, "query Late { viewer { email } }")
        assert late.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
        after = await scrape(client)

    def moved(**labels: str) -> float:
        name = "partnerhub_graphql_operations_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(operation="Costly", outcome="MAX_COST_EXCEEDED") == 1
    assert moved(operation="Cheap", outcome="ok") == 10
    assert moved(operation="Cheap", outcome="THROTTLED") == 1
    assert moved(operation="Late", outcome="TIMEOUT") == 1
    requests = "partnerhub_http_requests_total"
    labels = {"route": "/graphql", "method": "POST", "status": "429"}
    assert value(after, requests, **labels) - value(before, requests, **labels) == 1


async def test_operation_names_are_bounded(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients choose operation names: only the first ones a process sees (200;
    2 here) and only sane ones become labels, the rest count as `other`."""
    monkeypatch.setattr(app.metrics, "OPERATION_NAMES", OperationNames(limit=2))
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    before = await scrape(client)
    too_long = "Q" * 65
    for name in ("Alpha", "Beta", "Gamma", "Alpha", too_long):
        answer = await gql(client, token, f"query {name} {{ viewer {{ email }} }}")
        assert "errors" not in answer.json()
    after = await scrape(client)

    def moved(operation: str) -> float:
        name = "partnerhub_graphql_operations_total"
        labels = {"operation": operation, "outcome": "ok"}
        return value(after, name, **labels) - value(before, name, **labels)

    assert (moved("Alpha"), moved("Beta"), moved("other")) == (2, 1, 2)
    assert moved("Gamma") == 0 and moved(too_long) == 0


async def test_metrics_need_the_metrics_token_when_one_is_set(
    http_settings: Settings, redis_url: str
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin_token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    settings = http_settings.model_copy(update={"metrics_token": "m" * 40})
    async with app_client(settings, redis_url) as client:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {admin_token}"},  # an API token is not the metrics token
            {"Authorization": "m" * 40},
        ):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "partnerhub_" not in refused.text
        samples = await scrape(client, Authorization=f"Bearer {'m' * 40}")
        assert ("partnerhub_http_requests_total", frozenset()) not in samples
        assert any(name == "partnerhub_http_requests_total" for name, _ in samples)
    # Unset: open to anyone, no admin token needed either.
    async with app_client(http_settings, redis_url) as client:
        await scrape(client)


async def test_queue_depth_is_read_at_scrape_time_and_left_out_while_redis_is_away(
    http_settings: Settings, redis_url: str
) -> None:
    await flush_queue(redis_url)
    queue = JobQueue(redis_url)
    try:
        await queue.enqueue("expire_reports", job_id=f"m-ready-{uuid.uuid4()}")
        await queue.enqueue("expire_reports", job_id=f"m-later-{uuid.uuid4()}", defer_seconds=3600)
        await queue.enqueue("expire_reports", job_id=f"m-later-{uuid.uuid4()}", defer_seconds=600)
        async with app_client(http_settings, redis_url) as client:
            samples = await scrape(client)
        assert value(samples, "partnerhub_queue_ready_jobs") == 1
        assert value(samples, "partnerhub_queue_deferred_jobs") == 2
        assert value(samples, "partnerhub_queue_oldest_ready_seconds") >= 0
        assert ("partnerhub_workers_alive", frozenset()) in samples
    finally:
        await queue.close()
        await flush_queue(redis_url)

    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with app_client(http_settings, nowhere) as client:
        started = time.monotonic()
        samples = await scrape(client)
        assert time.monotonic() - started < 10
    names = {name for name, _ in samples}
    assert "partnerhub_http_requests_total" in names
    assert not names & {
        "partnerhub_queue_ready_jobs",
        "partnerhub_queue_deferred_jobs",
        "partnerhub_workers_alive",
    }


async def test_jobs_report_rows_and_webhooks_are_counted(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    """A scheduled report whose webhook fails once then is delivered, run by a
    worker of this process: its jobs, rows, bytes and deliveries."""
    await flush_queue(redis_url)
    settings = http_settings.model_copy(update={"webhook_retry_base_seconds": 0.05})
    world = await build_report_world()
    before = await scrape(client)
    with Receiver([500, 204]) as receiver:
        await _scheduled_report_with_webhook(client, world, receiver.url)
        queue = JobQueue(redis_url)
        try:
            tick = {"settings": settings, "queue": queue}
            assert await report_tick(tick, "2030-03-04T06:00:00+00:00") == 1
        finally:
            await queue.close()
        await run_jobs(redis_url, settings)
    assert len(receiver.requests) == 2
    report = await Report.get()
    assert report.row_count == 5 and report.byte_size
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    jobs = "partnerhub_jobs_total"
    assert moved(jobs, function="generate_report", outcome="complete") == 1
    assert moved(jobs, function="deliver_webhook", outcome="retried") == 1
    assert moved(jobs, function="deliver_webhook", outcome="complete") == 1
    assert moved(jobs, function="deliver_webhook", outcome="failed") == 0
    assert moved("partnerhub_job_duration_seconds_count", function="generate_report") == 1
    assert moved("partnerhub_report_rows_total") == 5
    assert moved("partnerhub_report_bytes_total") == report.byte_size
    deliveries = "partnerhub_webhook_deliveries_total"
    assert moved(deliveries, outcome="retry") == 1
    assert moved(deliveries, outcome="delivered") == 1
    assert moved(deliveries, outcome="failed") == 0


# ------------------------------------------------------------ real processes


async def _api_token(org_name: str, domain: str) -> str:
    org = await factories.partner(org_name, domain)
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    token = new_token()
    await ApiToken.create(admin=admin, token_hash=hash_token(token))
    return token


def _pid_counts(folder: Path, route: str) -> dict[int, float]:
    """Requests to `route` counted by each process of `serve`, from its metric files."""
    counts: dict[int, float] = {}
    for file in folder.glob("counter_*.db"):
        pid = int(file.stem.split("_")[1])
        for metric in MultiProcessCollector.merge([str(file)], accumulate=True):
            for sample in metric.samples:
                if sample.name == "partnerhub_http_requests_total" and (
                    sample.labels.get("route") == route and sample.labels.get("status") == "200"
                ):
                    counts[pid] = counts.get(pid, 0) + sample.value
    return counts


async def test_serve_with_two_workers_sums_both_processes(
    postgres_db: Settings, redis_url: str, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    env = cli_env(postgres_db.database_url, var, redis_url) | {"PARTNERHUB_LOG_FORMAT": "json"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with running(["serve", "--port", str(port), "--workers", "2"], env, log) as server:
        await asyncio.to_thread(wait_healthy, base, server, log)
        folder = var / "metrics" / f"serve-{port}"

        async def total() -> float:
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                samples = parse((await http.get("/metrics")).text)
            labels = {"route": "/healthz", "method": "GET", "status": "200"}
            return value(samples, "partnerhub_http_requests_total", **labels)

        start = await total()
        sent = 0
        # New connections each time, many at once, until both processes served some.
        limits = httpx.Limits(max_keepalive_connections=0)
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as http:
            while True:
                answers = await asyncio.gather(*(http.get("/healthz") for _ in range(20)))
                assert [a.status_code for a in answers] == [200] * 20
                sent += 20
                serving = [pid for pid, n in _pid_counts(folder, "/healthz").items() if n]
                if len(serving) >= 2 and sent >= 60:
                    break
                assert time.monotonic() < deadline, f"one process served all {sent} requests"
        # Whichever process answers the scrape, it counts the requests of both.
        for _ in range(4):
            assert await total() - start == sent
    # Both processes log as the settings say (uvicorn's config reaches them too).
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    started = [r for r in records if r["message"].startswith("Started server process")]
    assert len(started) == 2 and all(r["logger"] == "uvicorn.error" for r in started)
    assert not [r for r in records if "exception" in r], log.read_text()[-4000:]


async def test_a_worker_serves_its_own_metrics_on_its_port(
    postgres_db: Settings, redis_url: str, tmp_path: Path
) -> None:
    """`partnerhub worker` with PARTNERHUB_WORKER_METRICS_PORT (and the metrics
    token, and JSON logs): its jobs counted by outcome, the queue read live."""
    await flush_queue(redis_url)
    port = free_port()
    env = cli_env(postgres_db.database_url, tmp_path / "var", redis_url)
    env |= {
        "PARTNERHUB_WORKER_METRICS_PORT": str(port),
        "PARTNERHUB_METRICS_TOKEN": "w" * 40,
        "PARTNERHUB_LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    url = f"http://127.0.0.1:{port}/metrics"
    auth = {"Authorization": f"Bearer {'w' * 40}"}

    async def worker_metrics() -> dict[Sample, float] | None:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.get(url, headers=auth)
        except httpx.TransportError:
            return None
        assert response.status_code == 200, response.text
        return parse(response.text)

    async def until(
        check: Callable[[dict[Sample, float]], bool], what: str, limit: float = 60
    ) -> dict[Sample, float]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-4000:]
            samples = await worker_metrics()
            if samples is not None and check(samples):
                return samples
            await asyncio.sleep(0.2)
        raise AssertionError(f"{what} not seen in {limit}s:\n{log.read_text()[-4000:]}")

    with worker(env, log) as process:
        await until(lambda s: value(s, "partnerhub_workers_alive") >= 1, "the worker's heartbeat")
        async with httpx.AsyncClient(timeout=5) as http:
            refused = await http.get(url)
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        queue = JobQueue(redis_url)
        try:
            await queue.enqueue("expire_reports", job_id=f"w-ok-{uuid.uuid4()}")
            await queue.enqueue("expire_reports", "not a date", job_id=f"w-bad-{uuid.uuid4()}")
        finally:
            await queue.close()

        def both_done(samples: dict[Sample, float]) -> bool:
            jobs = "partnerhub_jobs_total"
            return (
                value(samples, jobs, function="expire_reports", outcome="complete") >= 1
                and value(samples, jobs, function="expire_reports", outcome="failed") >= 1
            )

        samples = await until(both_done, "both expire_reports jobs")
        jobs = "partnerhub_jobs_total"
        assert value(samples, jobs, function="expire_reports", outcome="complete") == 1
        assert value(samples, jobs, function="expire_reports", outcome="failed") == 1
        count = "partnerhub_job_duration_seconds_count"
        assert value(samples, count, function="expire_reports") == 2
        # Read from Redis at each scrape (its crons may be queued at any moment).
        assert ("partnerhub_queue_ready_jobs", frozenset()) in samples

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line one JSON object
    assert any(r["logger"].startswith("arq.") for r in records), lines[:5]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert "w" * 40 not in log.read_text()
