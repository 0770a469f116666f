"""Report schedules: occurrences, the mutations' bad input, the per-minute tick
driven with a chosen clock (claims, catch-up, periods), webhooks to a real local
HTTP server, and retention."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest

from app.config import Settings
from app.domain.access import Viewer
from app.domain.ids import encode_global_id
from app.domain.report_schedules import Timing, create_schedule, next_occurrence, period_before
from app.models.enums import AdminRole, ReportFrequency, ReportStatus
from app.models.reports import Report, ReportSchedule, WebhookDelivery
from app.queue import JobQueue
from app.storage import open_storage
from tests.graphql_client import data
from tests.report_helpers import download, flush_queue, report_of, run_jobs, template_ids
from tests.report_world import ReportWorld, build_report_world
from tests.test_mutation_matrix import everything
from workers.reports import expire_reports, report_tick

D, W, M = ReportFrequency.DAILY, ReportFrequency.WEEKLY, ReportFrequency.MONTHLY


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def http_settings(db: Settings, redis_url: str) -> Settings:
    """The API (`client`) and workers of these tests: their webhook receivers
    listen on 127.0.0.1, so PARTNERHUB_WEBHOOK_ALLOW_HOSTS allows it (and only it;
    tests/test_webhook_targets.py covers the service without the setting)."""
    return db.model_copy(update={"redis_url": redis_url, "webhook_allow_hosts": "127.0.0.1"})


@pytest.mark.parametrize(
    ("timing", "after", "expected"),
    [
        (Timing(D, None, None, 6), "2030-03-04 05:59:59", "2030-03-04 06:00:00"),
        (Timing(D, None, None, 6), "2030-03-04 06:00:00", "2030-03-05 06:00:00"),
        (Timing(D, None, None, 0), "2030-12-31 23:00:00", "2031-01-01 00:00:00"),
        # 2030-03-04 is a Monday.
        (Timing(W, 1, None, 6), "2030-03-04 05:00:00", "2030-03-04 06:00:00"),
        (Timing(W, 1, None, 6), "2030-03-04 06:00:00", "2030-03-11 06:00:00"),
        (Timing(W, 7, None, 23), "2030-03-04 06:00:00", "2030-03-10 23:00:00"),
        (Timing(W, 3, None, 8), "2030-03-08 09:00:00", "2030-03-13 08:00:00"),
        (Timing(M, None, 1, 6), "2030-03-01 06:00:00", "2030-04-01 06:00:00"),
        (Timing(M, None, 28, 6), "2030-02-28 05:00:00", "2030-02-28 06:00:00"),
        (Timing(M, None, 15, 0), "2030-12-20 00:00:00", "2031-01-15 00:00:00"),
    ],
)
def test_next_occurrence(timing: Timing, after: str, expected: str) -> None:
    assert next_occurrence(timing, at(after)) == at(expected)


@pytest.mark.parametrize(
    ("frequency", "occurrence", "period"),
    [
        (D, "2030-03-04 06:00:00", ("2030-03-03", "2030-03-03")),
        (W, "2030-03-06 06:00:00", ("2030-02-25", "2030-03-03")),  # the previous Mon-Sun
        (W, "2030-03-04 00:00:00", ("2030-02-25", "2030-03-03")),
        (M, "2030-03-01 06:00:00", ("2030-02-01", "2030-02-28")),
        (M, "2030-01-15 06:00:00", ("2029-12-01", "2029-12-31")),
        (M, "2028-03-02 06:00:00", ("2028-02-01", "2028-02-29")),
    ],
)
def test_the_period_that_just_ended(
    frequency: ReportFrequency, occurrence: str, period: tuple[str, str]
) -> None:
    start, end = period_before(frequency, at(occurrence))
    assert (start.isoformat(), end.isoformat()) == period


CREATE = """mutation($input: CreateReportScheduleInput!) { createReportSchedule(input: $input) {
  schedule { id frequency dayOfWeek dayOfMonth hourUtc region enabled nextRunAt lastRunAt webhookUrl
             webhookSigningSecret template { name } createdBy { email } lastReport { id } }
  userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateReportScheduleInput!) { updateReportSchedule(input: $input) {
  schedule { id frequency dayOfWeek dayOfMonth hourUtc enabled nextRunAt webhookUrl }
  userErrors { field message code } } }"""
DELETE = """mutation($input: DeleteInput!) { deleteReportSchedule(input: $input) {
  deletedId userErrors { field message code } } }"""


async def test_schedule_mutations_validate_and_compute_next_run(
    db: Settings, client: httpx.AsyncClient
) -> None:
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    ids = await template_ids(client, token)
    devices = ids["DEVICES"]
    before = await everything()
    cases = [
        ({"frequency": "DAILY", "hourUtc": 24}, [["input", "hourUtc"]]),
        ({"frequency": "DAILY", "hourUtc": -1}, [["input", "hourUtc"]]),
        ({"frequency": "WEEKLY", "hourUtc": 6}, [["input", "dayOfWeek"]]),
        ({"frequency": "WEEKLY", "hourUtc": 6, "dayOfWeek": 8}, [["input", "dayOfWeek"]]),
        ({"frequency": "WEEKLY", "hourUtc": 6, "dayOfWeek": 0}, [["input", "dayOfWeek"]]),
        ({"frequency": "MONTHLY", "hourUtc": 6, "dayOfMonth": 29}, [["input", "dayOfMonth"]]),
        ({"frequency": "MONTHLY", "hourUtc": 6}, [["input", "dayOfMonth"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "dayOfWeek": 2}, [["input", "dayOfWeek"]]),
        ({"frequency": "WEEKLY", "hourUtc": 6, "dayOfWeek": 2, "dayOfMonth": 3}, [["input", "dayOfMonth"]]),
        ({"frequency": "MONTHLY", "hourUtc": 25, "dayOfMonth": 0}, [["input", "hourUtc"], ["input", "dayOfMonth"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "webhookUrl": "http://example.com/hook"}, [["input", "webhookUrl"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "webhookUrl": "ftp://example.com/hook"}, [["input", "webhookUrl"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "webhookUrl": "https://user:pw@example.com/"}, [["input", "webhookUrl"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "webhookUrl": "https:///nohost"}, [["input", "webhookUrl"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "webhookUrl": "https://example.com/" + "a" * 2000}, [["input", "webhookUrl"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "templateId": encode_global_id("ReportTemplate", 999)}, [["input", "templateId"]]),
        ({"frequency": "DAILY", "hourUtc": 6, "region": "UAE"}, [["input", "region"]]),
    ]  # fmt: skip
    for input, fields in cases:
        answer = (await data(client, token, CREATE, {"input": {"templateId": devices} | input}))[
            "createReportSchedule"
        ]
        assert answer["schedule"] is None, input
        assert [e["field"] for e in answer["userErrors"]] == fields, input
    assert await everything() == before

    created = (
        await data(
            client,
            token,
            CREATE,
            {"input": {"templateId": devices, "frequency": "WEEKLY", "dayOfWeek": 3,
                       "hourUtc": 7, "region": "US", "webhookUrl": "http://127.0.0.1:9/hook"}},
        )
    )["createReportSchedule"]  # fmt: skip
    assert created["userErrors"] == []
    schedule = created["schedule"]
    next_run = datetime.fromisoformat(schedule["nextRunAt"])
    now = datetime.now(UTC)
    assert now < next_run <= now + timedelta(days=7)
    assert next_run.isoweekday() == 3 and (next_run.hour, next_run.minute) == (7, 0)
    assert schedule["createdBy"]["email"] == w.team[AdminRole.FULL_ADMIN].admin.email
    assert schedule["webhookSigningSecret"].startswith("whsec_")
    assert schedule["lastReport"] is None
    https = await data(
        client,
        token,
        CREATE,
        {
            "input": {
                "templateId": devices,
                "frequency": "DAILY",
                "hourUtc": 0,
                # A public address: accepted (no DNS on the test machines), never sent to.
                "webhookUrl": "https://93.184.215.14/partnerhub",
            }
        },
    )
    assert https["createReportSchedule"]["userErrors"] == []

    # Update: a new frequency drops the day it does not use; a wrong one is refused.
    sid = schedule["id"]
    monthly = (
        await data(
            client, token, UPDATE, {"input": {"id": sid, "frequency": "MONTHLY", "dayOfMonth": 28}}
        )
    )["updateReportSchedule"]
    assert monthly["userErrors"] == []
    assert (monthly["schedule"]["dayOfWeek"], monthly["schedule"]["dayOfMonth"]) == (None, 28)
    assert datetime.fromisoformat(monthly["schedule"]["nextRunAt"]).day == 28
    before = await everything()
    for input, field in (
        ({"frequency": "WEEKLY"}, ["input", "dayOfWeek"]),
        ({"dayOfWeek": 2}, ["input", "dayOfWeek"]),
        ({"hourUtc": 30}, ["input", "hourUtc"]),
        ({"webhookUrl": "http://10.0.0.1/x"}, ["input", "webhookUrl"]),
        ({"webhookUrl": "https://10.0.0.1/x"}, ["input", "webhookUrl"]),
        ({"webhookUrl": "https://127.0.0.2/x"}, ["input", "webhookUrl"]),
        ({"webhookUrl": "http://localhost:9/hook"}, ["input", "webhookUrl"]),
        ({"id": encode_global_id("ReportSchedule", 999)}, ["input", "id"]),
    ):
        answer = (await data(client, token, UPDATE, {"input": {"id": sid} | input}))[
            "updateReportSchedule"
        ]
        assert [e["field"] for e in answer["userErrors"]] == [field], input
    assert await everything() == before
    disabled = (
        await data(
            client, token, UPDATE, {"input": {"id": sid, "enabled": False, "webhookUrl": ""}}
        )
    )["updateReportSchedule"]
    assert disabled["schedule"]["enabled"] is False
    assert disabled["schedule"]["nextRunAt"] is None and disabled["schedule"]["webhookUrl"] is None
    enabled = (await data(client, token, UPDATE, {"input": {"id": sid, "enabled": True}}))[
        "updateReportSchedule"
    ]
    assert enabled["schedule"]["nextRunAt"] is not None

    # Another partner cannot see, change or delete it.
    other = w.contoso_team[AdminRole.FULL_ADMIN].token
    assert (await data(client, other, "{ reportSchedules { totalCount } }"))["reportSchedules"][
        "totalCount"
    ] == 0
    assert (await data(client, other, DELETE, {"input": {"id": sid}}))["deleteReportSchedule"][
        "userErrors"
    ][0]["code"] == "NOT_FOUND"
    assert (await data(client, other, UPDATE, {"input": {"id": sid, "hourUtc": 1}}))[
        "updateReportSchedule"
    ]["userErrors"][0]["code"] == "NOT_FOUND"
    # READ_ONLY_ADMIN sees schedules but not their webhook secret.
    seen = await data(
        client,
        w.team[AdminRole.READ_ONLY_ADMIN].token,
        "{ reportSchedules { totalCount nodes { id webhookSigningSecret } } }",
    )
    assert seen["reportSchedules"]["totalCount"] == 2
    assert all(n["webhookSigningSecret"] is None for n in seen["reportSchedules"]["nodes"])
    deleted = (await data(client, token, DELETE, {"input": {"id": sid}}))["deleteReportSchedule"]
    assert deleted == {"deletedId": sid, "userErrors": []}
    assert (await data(client, token, "{ reportSchedules { totalCount } }"))["reportSchedules"][
        "totalCount"
    ] == 1


async def _viewer(w: ReportWorld, role: AdminRole = AdminRole.FULL_ADMIN) -> Viewer:
    admin = w.team[role].admin
    await admin.fetch_related("partner")
    return Viewer(admin=admin, partner=admin.partner)


async def _templates_by_type() -> dict[str, int]:
    from app.models.reports import ReportTemplate

    return {t.report_type: t.id for t in await ReportTemplate.filter(partner_id=None)}


async def test_the_tick_claims_each_occurrence_once_and_catches_up_once(
    db: Settings, redis_url: str
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    viewer = await _viewer(w)
    templates = await _templates_by_type()
    created_at = at("2030-03-04 05:00:00")
    daily = await create_schedule(
        viewer, templates["CALLING_USAGE_DETAIL"], D, None, None, 6, None, None, created_at
    )
    weekly = await create_schedule(
        viewer, templates["DEVICES"], W, 1, None, 6, None, None, created_at
    )
    monthly = await create_schedule(
        viewer, templates["APP_VERSIONS"], M, None, 1, 6, None, None, created_at
    )
    assert daily.next_run_at == at("2030-03-04 06:00:00")
    assert weekly.next_run_at == at("2030-03-04 06:00:00")
    assert monthly.next_run_at == at("2030-04-01 06:00:00")
    queue = JobQueue(redis_url)
    ctx = {"settings": db, "queue": queue}
    try:
        assert await report_tick(ctx, "2030-03-04T05:59:59+00:00") == 0
        # Two workers tick at once: each due occurrence runs once.
        results = await asyncio.gather(
            report_tick(ctx, "2030-03-04T06:00:00+00:00"),
            report_tick(ctx, "2030-03-04T06:00:00+00:00"),
        )
        assert sorted(results) in ([0, 2], [1, 1])
        assert await report_tick(ctx, "2030-03-04T06:00:30+00:00") == 0
        reports = await Report.all().order_by("schedule_id")
        assert [(r.schedule_id, r.start_date, r.end_date) for r in reports] == [
            (daily.id, date(2030, 3, 3), date(2030, 3, 3)),
            (weekly.id, None, None),
        ]
        assert all(
            r.status == ReportStatus.QUEUED and r.requested_by_id == viewer.admin.id
            for r in reports
        )
        stored = await ReportSchedule.get(id=daily.id)
        assert stored.next_run_at == at("2030-03-05 06:00:00")
        assert stored.last_run_at == at("2030-03-04 06:00:00")

        # The workers were down for three days: one run, for the day before the latest occurrence.
        assert await report_tick(ctx, "2030-03-08T07:30:00+00:00") == 1
        latest = await Report.filter(schedule_id=daily.id).order_by("-id").first()
        assert (latest.start_date, latest.end_date) == (date(2030, 3, 7), date(2030, 3, 7))
        stored = await ReportSchedule.get(id=daily.id)
        assert stored.next_run_at == at("2030-03-09 06:00:00")
        assert await Report.filter(schedule_id=weekly.id).count() == 1
        # A month later: the monthly schedule reports on the month that ended.
        await ReportSchedule.filter(id__in=[daily.id, weekly.id]).update(enabled=False)
        assert await report_tick(ctx, "2030-04-01T06:00:00+00:00") == 1
        month = await Report.get(schedule_id=monthly.id)
        assert (month.start_date, month.end_date) == (date(2030, 3, 1), date(2030, 3, 31))
    finally:
        await queue.close()


class Receiver:
    """A real HTTP server on 127.0.0.1 that records webhook POSTs and answers
    with the given status codes in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses[min(len(receiver.requests), len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/reports"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _scheduled_report_with_webhook(
    client: httpx.AsyncClient, w: ReportWorld, url: str
) -> tuple[str, str]:
    token = w.team[AdminRole.FULL_ADMIN].token
    ids = await template_ids(client, token)
    created = await data(
        client,
        token,
        CREATE,
        {
            "input": {
                "templateId": ids["DEVICES"],
                "frequency": "DAILY",
                "hourUtc": 6,
                "webhookUrl": url,
            }
        },
    )
    schedule = created["createReportSchedule"]["schedule"]
    await ReportSchedule.all().update(next_run_at=at("2030-03-04 06:00:00"))
    return schedule["id"], schedule["webhookSigningSecret"]


async def test_a_scheduled_run_posts_a_signed_webhook_and_retries_until_delivered(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    settings = http_settings.model_copy(update={"webhook_retry_base_seconds": 0.2})
    w = await build_report_world()
    with Receiver([500, 503, 204]) as receiver:
        schedule_id, secret = await _scheduled_report_with_webhook(client, w, receiver.url)
        queue = JobQueue(redis_url)
        try:
            assert (
                await report_tick(
                    {"settings": settings, "queue": queue}, "2030-03-04T06:00:00+00:00"
                )
                == 1
            )
        finally:
            await queue.close()
        await run_jobs(redis_url, settings)
    assert len(receiver.requests) == 3
    headers, body = receiver.requests[-1]
    timestamp = headers["X-PartnerHub-Timestamp"]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-PartnerHub-Signature"] == f"sha256={mac}"
    assert headers["Content-Type"] == "application/json"
    event = orjson.loads(body)
    report = await Report.get()
    assert event["event"] == "report.finished"
    assert event["status"] == "SUCCEEDED"
    assert event["reportId"] == encode_global_id("Report", report.id)
    assert event["scheduleId"] == schedule_id
    assert event["rowCount"] == report.row_count == 5
    file = await download(client, event["downloadUrl"])
    assert file.status_code == 200 and file.content.startswith(b"External ID,Customer")
    delivery = await WebhookDelivery.get(report_id=report.id)
    assert delivery.attempts == 3 and delivery.delivered_at is not None
    assert delivery.last_status_code == 204
    # The schedule's last report is visible through the API.
    token = w.team[AdminRole.FULL_ADMIN].token
    seen = await data(
        client,
        token,
        "{ reportSchedules { nodes { lastRunAt lastReport { id status schedule { id } } } } }",
    )
    node = seen["reportSchedules"]["nodes"][0]
    assert node["lastReport"]["status"] == "SUCCEEDED"
    assert node["lastReport"]["schedule"]["id"] == schedule_id


async def test_a_webhook_that_keeps_failing_is_tried_five_times(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    settings = http_settings.model_copy(update={"webhook_retry_base_seconds": 0.05})
    w = await build_report_world()
    with Receiver([500]) as receiver:
        await _scheduled_report_with_webhook(client, w, receiver.url)
        queue = JobQueue(redis_url)
        try:
            await report_tick({"settings": settings, "queue": queue}, "2030-03-04T06:00:00+00:00")
        finally:
            await queue.close()
        await run_jobs(redis_url, settings)
    assert len(receiver.requests) == 5
    delivery = await WebhookDelivery.get()
    assert delivery.attempts == 5 and delivery.delivered_at is None
    assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
    # The report itself is unaffected.
    assert (await Report.get()).status == ReportStatus.SUCCEEDED


async def test_retention_deletes_old_files_and_expires_their_reports(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    from tests.report_helpers import generate

    await flush_queue(redis_url)
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    ids = await template_ids(client, token)
    answer = await generate(client, token, templateId=ids["DEVICES"])
    await run_jobs(redis_url, http_settings)
    before = await report_of(client, token, answer["report"]["id"])
    url = before["download"]["url"]
    report = await Report.get()
    storage = open_storage(http_settings)
    assert await storage.exists(report.storage_key)
    ctx = {"settings": http_settings, "queue": JobQueue(redis_url)}
    try:
        day29 = (report.finished_at + timedelta(days=29, hours=23)).isoformat()
        assert await expire_reports(ctx, day29) == 0
        assert await storage.exists(report.storage_key)
        day30 = (report.finished_at + timedelta(days=30, seconds=1)).isoformat()
        assert await expire_reports(ctx, day30) == 1
        assert await expire_reports(ctx, day30) == 0
    finally:
        await ctx["queue"].close()
    assert not await storage.exists(report.storage_key)
    after = await report_of(client, token, answer["report"]["id"])
    assert after["status"] == "EXPIRED" and after["download"] is None
    response = await download(client, url)
    assert response.status_code == 410
