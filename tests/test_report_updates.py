"""`reportUpdated`: the report now, then every status change pushed through Redis
pub/sub by whichever worker runs it, ending after SUCCEEDED or FAILED.

In process (the resolver on real Valkey with a burst worker), and end to end:
graphql-transport-ws over a real uvicorn with a separate `partnerhub worker`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import websockets

from app.config import Settings
from app.demo import demo_admins
from app.domain.access import Viewer
from app.domain.ids import encode_global_id
from app.domain.reports import ReportRequest, create_report
from app.http import Runtime
from app.models.enums import AdminRole
from app.models.reports import ReportTemplate
from schema import schema
from schema.context import Context
from tests import factories
from tests.cli_process import cli_env, free_port, run_cli
from tests.report_helpers import flush_queue, run_jobs
from tests.test_serve import running, wait_healthy

SUBSCRIPTION = "subscription($id: ID!) { reportUpdated(id: $id) { id status rowCount } }"


async def _context(settings: Settings, redis_url: str, viewer: Viewer) -> Context:
    runtime = Runtime(settings=settings, redis_url=redis_url)
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(runtime=runtime)))
    return Context(request=request, response=None, viewer=viewer, settings=settings)  # type: ignore[arg-type]


async def test_report_updated_emits_each_status_change_then_completes(
    db: Settings, redis_url: str
) -> None:
    await flush_queue(redis_url)
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.READ_ONLY_ADMIN)).admin
    await factories.customer(org)
    await admin.fetch_related("partner")
    viewer = Viewer(admin=admin, partner=admin.partner)
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    context = await _context(db, redis_url, viewer)
    report = await create_report(
        org.id,
        ReportRequest(template, None, None, None),
        admin.id,
        context.queue,
        factories.NOW.date(),
    )
    report_id = encode_global_id("Report", report.id)

    stream = await schema.subscribe(
        SUBSCRIPTION, variable_values={"id": report_id}, context_value=context
    )
    seen: list[str] = []
    first = asyncio.Event()

    async def read() -> None:
        async for result in stream:  # type: ignore[union-attr]
            assert result.errors is None, result.errors
            seen.append(result.data["reportUpdated"]["status"])
            first.set()

    reader = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 10)  # the current state comes first
    assert seen == ["QUEUED"]
    await run_jobs(redis_url, db)
    await asyncio.wait_for(reader, 10)  # the stream ended by itself after SUCCEEDED
    assert seen == ["QUEUED", "RUNNING", "SUCCEEDED"]
    await context.queue.close()

    # Another partner's viewer gets an error, not the report.
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    other = (await factories.admin(contoso, AdminRole.FULL_ADMIN)).admin
    await other.fetch_related("partner")
    other_context = await _context(db, redis_url, Viewer(admin=other, partner=other.partner))
    refused = await schema.subscribe(
        SUBSCRIPTION, variable_values={"id": report_id}, context_value=other_context
    )
    results = [r async for r in refused]  # type: ignore[union-attr]
    assert results[0].errors and "No such report" in results[0].errors[0].message
    await other_context.queue.close()


def test_report_updated_over_websocket_with_a_separate_worker(
    fresh_database_url: str, redis_url: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """Production set-up: serve and worker are separate processes sharing
    PARTNERHUB_SECRET_KEY and an S3-compatible bucket; the worker's status changes
    reach the serve process's websocket through Redis, and the signed URL streams
    the object with a plain GET."""
    from tests.test_report_s3 import BUCKET, ensure_bucket

    asyncio.run(ensure_bucket(s3_endpoint))
    env = cli_env(fresh_database_url, tmp_path / "var", redis_url=redis_url)
    env["PARTNERHUB_SECRET_KEY"] = "a-shared-secret-of-more-than-32-characters"
    env |= {
        "PARTNERHUB_S3_BUCKET": BUCKET,
        "PARTNERHUB_S3_ENDPOINT_URL": s3_endpoint,
        "PARTNERHUB_S3_PREFIX": f"serve-{tmp_path.name}/",
        "PARTNERHUB_S3_REGION": "us-east-1",
        "PARTNERHUB_S3_ACCESS_KEY_ID": "test",
        "PARTNERHUB_S3_SECRET_ACCESS_KEY": "test",
    }
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24"], env).returncode == 0
    asyncio.run(flush_queue(redis_url))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env["PARTNERHUB_PUBLIC_BASE_URL"] = base
    admin = demo_admins(1)[0]
    auth = {"Authorization": f"Bearer {admin.token}"}
    with running(["serve", "--port", str(port)], env, tmp_path / "serve.log") as server:
        wait_healthy(base, server, tmp_path / "serve.log")
        templates = httpx.post(
            f"{base}/graphql", json={"query": "{ reportTemplates { id reportType } }"}, headers=auth
        ).json()["data"]["reportTemplates"]
        devices = next(t["id"] for t in templates if t["reportType"] == "DEVICES")
        generated = httpx.post(
            f"{base}/graphql",
            json={
                "query": "mutation($t: ID!) { generateReport(input: {templateId: $t}) { report { id status } userErrors { message } } }",
                "variables": {"t": devices},
            },
            headers=auth,
        ).json()["data"]["generateReport"]
        assert generated["userErrors"] == []
        report_id = generated["report"]["id"]

        async def watch() -> list[dict]:
            messages = []
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/graphql",
                subprotocols=["graphql-transport-ws"],
                additional_headers=auth,
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(
                    json.dumps(
                        {
                            "id": "1",
                            "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"id": report_id}},
                        }
                    )
                )
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                messages.append(first)
                with running(["worker"], env, tmp_path / "worker.log"):
                    while messages[-1]["type"] != "complete":
                        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
            return messages

        messages = asyncio.run(watch())
        statuses = [
            m["payload"]["data"]["reportUpdated"]["status"] for m in messages if m["type"] == "next"
        ]
        assert statuses == ["QUEUED", "RUNNING", "SUCCEEDED"], messages
        assert messages[-1] == {"id": "1", "type": "complete"}

        answer = httpx.post(
            f"{base}/graphql",
            json={
                "query": "query($id: ID!) { report(id: $id) { rowCount download { url byteSize fileName } } }",
                "variables": {"id": report_id},
            },
            headers=auth,
        ).json()["data"]["report"]
        url = answer["download"]["url"]
        assert url.startswith(f"{base}/reports/")
        response = httpx.get(url)  # like curl: no other credentials
        assert response.status_code == 200
        assert len(response.content) == answer["download"]["byteSize"]
        assert response.text.count("\r\n") == answer["rowCount"] + 1 > 1
        assert answer["download"]["fileName"] in response.headers["content-disposition"]
        assert not list((tmp_path / "var").rglob("*.csv"))  # the file is in the bucket

        # Without a token (neither on the upgrade nor in connection_init) the
        # websocket is closed with 4403 Forbidden.
        async def anonymous() -> int | None:
            try:
                async with websockets.connect(
                    f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]
                ) as ws:
                    await ws.send('{"type": "connection_init", "payload": {}}')
                    await ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            except websockets.InvalidStatus as refused:
                return refused.response.status_code
            return None

        assert asyncio.run(anonymous()) == 4403


async def test_a_missed_event_costs_a_heartbeat_not_the_stream(
    db: Settings, redis_url: str, monkeypatch
) -> None:
    """Redis pub/sub delivers at most once: a status change nobody published is
    still seen at the next heartbeat."""
    from app.models.enums import ReportStatus
    from app.models.reports import Report
    from schema import reports as report_schema

    monkeypatch.setattr(report_schema, "HEARTBEAT_SECONDS", 0.2)
    await flush_queue(redis_url)
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    await admin.fetch_related("partner")
    context = await _context(db, redis_url, Viewer(admin=admin, partner=admin.partner))
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    report = await create_report(
        org.id, ReportRequest(template, None, None, None), admin.id, None, factories.NOW.date()
    )
    stream = await schema.subscribe(
        SUBSCRIPTION,
        variable_values={"id": encode_global_id("Report", report.id)},
        context_value=context,
    )
    first = await anext(stream)  # type: ignore[arg-type]
    assert first.data["reportUpdated"]["status"] == "QUEUED"
    await Report.filter(id=report.id).update(status=ReportStatus.FAILED, error="disk full")
    second = await asyncio.wait_for(anext(stream), 5)  # type: ignore[arg-type]
    assert second.data["reportUpdated"]["status"] == "FAILED"
    assert [r async for r in stream] == []  # type: ignore[union-attr]
    await context.queue.close()
