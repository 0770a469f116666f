"""E-mail to the recipients of scheduled reports: the recipients' bad input,
a scheduled run end to end through a real SMTP server (aiosmtpd on 127.0.0.1)
and a real Valkey, a server that answers 451 then 250, one that refuses for
good, one that is not there, the .eml outbox of the embedded default, a
recipient removed before the run, and a job that runs twice."""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.clock import utcnow
from app.config import Settings
from app.domain.report_emails import MAX_ATTEMPTS, MAX_RECIPIENTS, MailConfig, compose, deliver
from app.models.admins import Admin
from app.models.enums import AdminRole, EmailDeliveryStatus, ReportStatus
from app.models.organization import PartnerOrganization
from app.models.reports import EmailDelivery, Report, ReportSchedule, ReportTemplate
from app.queue import JobQueue
from tests import factories
from tests.cli_process import free_port
from tests.graphql_client import data
from tests.report_helpers import download, flush_queue, parse_csv, run_jobs, template_ids
from tests.report_world import ReportWorld, build_report_world
from tests.test_metrics import scrape, value
from tests.test_mutation_matrix import everything
from workers.report_emails import EMAIL_JOB, start_emails
from workers.reports import report_tick

TICK_AT = "2030-03-04T06:00:00+00:00"

CREATE = """mutation($input: CreateReportScheduleInput!) { createReportSchedule(input: $input) {
  schedule { id recipients } userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateReportScheduleInput!) { updateReportSchedule(input: $input) {
  schedule { id recipients } userErrors { field message code } } }"""
DELIVERIES = """query($id: ID!) { node(id: $id) { ... on ReportSchedule {
  recipients
  emailDeliveries(first: 10) { totalCount nodes {
    recipient status attempts lastError sentAt createdAt report { id status rowCount } } } } } }"""


# ------------------------------------------------------------------ the SMTP server


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    """aiosmtpd on a free port of 127.0.0.1. `answers` are given to the DATA
    commands in turn (the last one repeats)."""

    answers: list[str] = field(default_factory=lambda: ["250 OK"])
    received: list[Received] = field(default_factory=list)
    tries: int = 0
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.tries += 1
        answer = self.answers[min(self.tries, len(self.answers)) - 1]
        if answer.startswith("250"):
            content = envelope.content
            assert isinstance(content, bytes)
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append(Received(list(envelope.rcpt_tos), message))
        return answer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.port = free_port()
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def with_smtp(settings: Settings, port: int, **more: Any) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "smtp_sender": "Partner Hub <reports@partnerhub.example>",
            "email_retry_base_seconds": 0.05,
            **more,
        }
    )


# ------------------------------------------------------------------ helpers


async def schedule_with_recipients(
    client: httpx.AsyncClient, w: ReportWorld, recipients: list[str]
) -> str:
    """A daily DEVICES schedule of Northwind's FULL_ADMIN, due at TICK_AT."""
    token = w.team[AdminRole.FULL_ADMIN].token
    ids = await template_ids(client, token)
    input = {"templateId": ids["DEVICES"], "frequency": "DAILY", "hourUtc": 6}
    answer = await data(client, token, CREATE, {"input": input | {"recipients": recipients}})
    assert answer["createReportSchedule"]["userErrors"] == []
    await ReportSchedule.all().update(next_run_at=datetime.fromisoformat(TICK_AT))
    return answer["createReportSchedule"]["schedule"]["id"]


async def run_schedule(redis_url: str, settings: Settings) -> None:
    """The tick at TICK_AT, then every job (the report, its e-mails and their retries)."""
    queue = JobQueue(redis_url)
    try:
        assert await report_tick({"settings": settings, "queue": queue}, TICK_AT) == 1
    finally:
        await queue.close()
    await run_jobs(redis_url, settings)


async def deliveries(client: httpx.AsyncClient, w: ReportWorld, schedule_id: str) -> dict:
    token = w.team[AdminRole.FULL_ADMIN].token
    return (await data(client, token, DELIVERIES, {"id": schedule_id}))["node"]


def link_of(body: str) -> str:
    match = re.search(r"http://\S+/reports/\d+/download\?expires=\d+&signature=[\w-]+", body)
    assert match, body
    return match[0]


# ------------------------------------------------------------------ end to end


async def test_a_succeeded_run_emails_each_recipient_once_with_a_working_link(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await flush_queue(redis_url)
    settings = with_smtp(http_settings, smtp.port)
    w = await build_report_world()
    full = w.team[AdminRole.FULL_ADMIN].admin.email
    read_only = w.team[AdminRole.READ_ONLY_ADMIN].admin.email
    schedule_id = await schedule_with_recipients(client, w, [full, read_only.upper()])
    assert (await deliveries(client, w, schedule_id))["recipients"] == [full, read_only]

    with caplog.at_level(logging.INFO):
        await run_schedule(redis_url, settings)

    report = await Report.get()
    assert report.status == ReportStatus.SUCCEEDED and report.row_count == 5
    assert sorted(r.envelope_to[0] for r in smtp.received) == sorted([full, read_only])
    for received in smtp.received:
        message = received.message
        assert message["To"] == received.envelope_to[0]
        assert message["From"] == "Partner Hub <reports@partnerhub.example>"
        assert message["Subject"] == "Partner Hub report 'Devices' is ready"
        body = message.get_content()
        assert "The scheduled report 'Devices' of Northwind" in body
        assert "Period:  none (a point-in-time report)" in body
        assert "Rows:    5" in body
        assert re.search(r"File:    Devices_[A-Za-z0-9]+_\d{4}-\d{2}-\d{2}\.csv", body)
        file = await download(client, link_of(body))
        assert file.status_code == 200 and file.content.startswith(b"External ID,Customer")
        assert len(parse_csv(file.content)) == 6  # the header and 5 rows
    # The link is valid PARTNERHUB_EMAIL_LINK_SECONDS (7 days by default).
    expires = int(re.search(r"expires=(\d+)", smtp.received[0].message.get_content())[1])  # type: ignore[index]
    assert abs(expires - (utcnow().timestamp() + 7 * 24 * 3600)) < 120
    # No log line carries the link's signature.
    signature = re.search(r"signature=(\S+)", smtp.received[0].message.get_content())[1]  # type: ignore[index]
    assert not any(signature in r.getMessage() for r in caplog.records)
    assert sum("e-mail sent to" in r.getMessage() for r in caplog.records) == 2

    seen = await deliveries(client, w, schedule_id)
    assert seen["emailDeliveries"]["totalCount"] == 2
    for node in seen["emailDeliveries"]["nodes"]:
        assert node["status"] == "SENT" and node["attempts"] == 1 and node["lastError"] is None
        assert node["sentAt"] is not None
        assert node["report"] == {"id": node["report"]["id"], "status": "SUCCEEDED", "rowCount": 5}

    # The job again (a re-run, or queued again under other ids): nothing is sent twice.
    queue = JobQueue(redis_url)
    try:
        ctx = {"settings": settings, "queue": queue}
        assert await start_emails(ctx, report) == 0  # no PENDING delivery left
        for delivery in await EmailDelivery.all():
            await queue.enqueue(EMAIL_JOB, delivery.id, job_id=f"again:{delivery.id}")
    finally:
        await queue.close()
    await run_jobs(redis_url, settings)
    assert len(smtp.received) == 2
    assert await EmailDelivery.all().count() == 2
    assert {d.attempts for d in await EmailDelivery.all()} == {1}


async def test_a_server_that_answers_451_is_tried_again_and_one_that_refuses_is_not(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    await flush_queue(redis_url)
    smtp.answers = ["451 4.3.0 Try again later", "250 OK"]
    settings = with_smtp(http_settings, smtp.port)
    w = await build_report_world()
    full = w.team[AdminRole.FULL_ADMIN].admin.email
    schedule_id = await schedule_with_recipients(client, w, [full])
    before = await scrape(client)
    await run_schedule(redis_url, settings)
    assert smtp.tries == 2 and len(smtp.received) == 1
    after = await scrape(client)
    counted = "partnerhub_email_deliveries_total"
    for outcome, count in (("retry", 1), ("sent", 1), ("failed", 0)):
        moved = value(after, counted, outcome=outcome) - value(before, counted, outcome=outcome)
        assert moved == count, outcome
    (node,) = (await deliveries(client, w, schedule_id))["emailDeliveries"]["nodes"]
    assert node["status"] == "SENT" and node["attempts"] == 2 and node["lastError"] is None

    # A 5xx answer is final: FAILED after one try, with the server's words.
    smtp.answers, smtp.tries = ["554 5.7.1 Rejected by policy"], 0
    await EmailDelivery.all().delete()
    delivery = await EmailDelivery.create(
        report_id=(await Report.get()).id,
        schedule_id=(await ReportSchedule.get()).id,
        recipient=full,
        status=EmailDeliveryStatus.PENDING,
    )
    attempt = await deliver(delivery.id, MailConfig.of(settings), utcnow())
    assert attempt.outcome == "failed" and attempt.retry_in is None
    await delivery.refresh_from_db()
    assert delivery.status == EmailDeliveryStatus.FAILED and delivery.attempts == 1
    assert delivery.last_error == "SMTP 554 5.7.1 Rejected by policy"
    assert smtp.tries == 1


async def test_an_unreachable_server_is_tried_five_times_with_doubling_delays(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    settings = with_smtp(http_settings, free_port())  # nothing listens there
    w = await build_report_world()
    full = w.team[AdminRole.FULL_ADMIN].admin.email
    schedule_id = await schedule_with_recipients(client, w, [full])
    await run_schedule(redis_url, settings)
    (node,) = (await deliveries(client, w, schedule_id))["emailDeliveries"]["nodes"]
    assert node["status"] == "FAILED" and node["attempts"] == MAX_ATTEMPTS
    assert node["sentAt"] is None and "connect" in node["lastError"].lower()
    assert (await Report.get()).status == ReportStatus.SUCCEEDED  # the report is unaffected

    # Each try says when the next one comes: the base delay, doubling.
    delivery = await EmailDelivery.get()
    await EmailDelivery.filter(id=delivery.id).update(
        status=EmailDeliveryStatus.PENDING, attempts=0, last_error=None
    )
    config = MailConfig.of(settings)
    tries = [await deliver(delivery.id, config, utcnow()) for _ in range(MAX_ATTEMPTS + 1)]
    assert [(t.outcome, t.retry_in) for t in tries] == [
        ("retry", 0.05),
        ("retry", 0.1),
        ("retry", 0.2),
        ("retry", 0.4),
        ("failed", None),
        (None, None),  # given up: nothing more
    ]


async def test_without_smtp_each_message_is_written_as_an_eml_file_and_logged(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await flush_queue(redis_url)
    assert http_settings.smtp_host is None  # the embedded default
    w = await build_report_world()
    recipients = [w.team[r].admin.email for r in (AdminRole.FULL_ADMIN, AdminRole.SALES_FULL_ADMIN)]
    schedule_id = await schedule_with_recipients(client, w, recipients)
    with caplog.at_level(logging.INFO):
        await run_schedule(redis_url, http_settings)
    files = sorted((http_settings.var_dir / "mail").glob("*.eml"))
    assert len(files) == 2
    written = {}
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        written[message["To"]] = message
        assert "Rows:    5" in message.get_content()
        file = await download(client, link_of(message.get_content()))
        assert file.status_code == 200
    assert sorted(written) == sorted(recipients)
    lines = [r.getMessage() for r in caplog.records if ".eml" in r.getMessage()]
    assert len(lines) == 2 and all("signature" not in line for line in lines)
    nodes = (await deliveries(client, w, schedule_id))["emailDeliveries"]["nodes"]
    assert [n["status"] for n in nodes] == ["SENT", "SENT"]


async def test_a_recipient_removed_before_the_run_is_skipped(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    await flush_queue(redis_url)
    settings = with_smtp(http_settings, smtp.port)
    w = await build_report_world()
    full = w.team[AdminRole.FULL_ADMIN].admin.email
    read_only = w.team[AdminRole.READ_ONLY_ADMIN].admin
    schedule_id = await schedule_with_recipients(client, w, [full, read_only.email])
    await Admin.filter(id=read_only.id).update(removed_at=utcnow())
    await run_schedule(redis_url, settings)
    assert [r.envelope_to for r in smtp.received] == [[full]]
    nodes = (await deliveries(client, w, schedule_id))["emailDeliveries"]["nodes"]
    status = {n["recipient"]: (n["status"], n["attempts"]) for n in nodes}
    assert status == {full: ("SENT", 1), read_only.email: ("SKIPPED", 0)}


async def test_the_message_of_a_date_range_report_names_its_period(db: Settings) -> None:
    now = datetime.fromisoformat(TICK_AT)
    report = Report(id=7, start_date=date(2030, 2, 1), end_date=date(2030, 2, 28), row_count=0)
    message = compose(
        report,
        ReportTemplate(name="Calling usage detail"),
        PartnerOrganization(name="Northwind"),
        EmailDelivery(id=3, recipient="full@northwind.example"),
        "https://hub.example/reports/7/download?expires=1&signature=s",
        now,
        "Calling usage detail_abc_2030-03-04.csv",
        "reports@hub.example",
        now,
    )
    assert message["Subject"] == (
        "Partner Hub report 'Calling usage detail' is ready (2030-02-01 to 2030-02-28)"
    )
    body = message.get_content()
    assert "Period:  2030-02-01 to 2030-02-28" in body and "Rows:    0" in body
    assert "Region:  all regions" in body
    assert message["Message-ID"] == "<report-7.delivery-3@hub.example>"


# ------------------------------------------------------------------ bad input


async def test_recipients_must_be_admins_who_see_every_customer(
    db: Settings, client: httpx.AsyncClient
) -> None:
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    ids = await template_ids(client, token)
    base = {"templateId": ids["DEVICES"], "frequency": "DAILY", "hourUtc": 6}
    full = w.team[AdminRole.FULL_ADMIN].admin.email
    removed = (await factories.admin(w.northwind, AdminRole.FULL_ADMIN)).admin
    await Admin.filter(id=removed.id).update(removed_at=utcnow())
    foreign = w.contoso_team[AdminRole.FULL_ADMIN].admin.email
    before = await everything()
    path = ["input", "recipients"]
    cases = [
        (["not-an-address"], [([*path, "0"], "INVALID")]),
        ([full, "a@b"], [([*path, "1"], "INVALID")]),
        ([full, "x@y.example\r\nBcc: z@y.example"], [([*path, "1"], "INVALID")]),
        ([full, full.upper()], [([*path, "1"], "INVALID")]),
        (["nobody@northwind.example"], [([*path, "0"], "NOT_FOUND")]),
        ([foreign], [([*path, "0"], "NOT_FOUND")]),
        ([removed.email], [([*path, "0"], "NOT_FOUND")]),
        ([full, w.team[AdminRole.ADMIN].admin.email], [([*path, "1"], "FORBIDDEN")]),
        ([w.team[AdminRole.SALES_ADMIN].admin.email, "bad", full], [
            ([*path, "0"], "FORBIDDEN"), ([*path, "1"], "INVALID")]),
        ([full] * (MAX_RECIPIENTS + 1), [(path, "LIMIT_EXCEEDED")]),
    ]  # fmt: skip
    for recipients, expected in cases:
        answer = (await data(client, token, CREATE, {"input": base | {"recipients": recipients}}))[
            "createReportSchedule"
        ]
        assert answer["schedule"] is None, recipients
        got = [(e["field"], e["code"]) for e in answer["userErrors"]]
        assert got == expected, (recipients, answer["userErrors"])
    assert await everything() == before

    # Twenty admins is the most; stored lower-cased, in the given order.
    twenty = [full, *[(await factories.admin(w.northwind, AdminRole.READ_ONLY_ADMIN)).admin.email
                      for _ in range(MAX_RECIPIENTS - 1)]]  # fmt: skip
    created = (await data(client, token, CREATE, {"input": base | {"recipients": twenty[::-1]}}))[
        "createReportSchedule"
    ]
    assert created["userErrors"] == [] and created["schedule"]["recipients"] == twenty[::-1]
    schedule_id = created["schedule"]["id"]

    # updateReportSchedule: refused with nothing changed, replaced, emptied, or left alone.
    before = await everything()
    refused = (
        await data(client, token, UPDATE, {"input": {"id": schedule_id, "recipients": ["x"]}})
    )["updateReportSchedule"]
    assert [e["field"] for e in refused["userErrors"]] == [[*path, "0"]]
    assert await everything() == before
    for recipients, stored in (([full.upper()], [full]), (None, [full]), ([], [])):
        updated = (
            await data(
                client,
                token,
                UPDATE,
                {"input": {"id": schedule_id, "enabled": True, "recipients": recipients}},
            )
        )["updateReportSchedule"]
        assert updated["userErrors"] == [] and updated["schedule"]["recipients"] == stored


async def test_only_a_full_admin_sets_recipients_and_others_read_what_they_see(
    db: Settings, client: httpx.AsyncClient
) -> None:
    w = await build_report_world()
    full = w.team[AdminRole.FULL_ADMIN]
    ids = await template_ids(client, full.token)
    input = {
        "templateId": ids["DEVICES"],
        "frequency": "DAILY",
        "hourUtc": 6,
        "recipients": [full.admin.email],
    }
    before = await everything()
    for role in (AdminRole.ADMIN, AdminRole.READ_ONLY_ADMIN, AdminRole.SALES_FULL_ADMIN):
        answer = (await data(client, w.team[role].token, CREATE, {"input": input}))[
            "createReportSchedule"
        ]
        assert answer["schedule"] is None
        assert [e["code"] for e in answer["userErrors"]] == ["FORBIDDEN"]
        assert "FULL_ADMIN" in answer["userErrors"][0]["message"]
    assert await everything() == before
    created = (await data(client, full.token, CREATE, {"input": input}))["createReportSchedule"]
    schedule_id = created["schedule"]["id"]
    refused = (
        await data(
            client,
            w.team[AdminRole.READ_ONLY_ADMIN].token,
            UPDATE,
            {"input": {"id": schedule_id, "recipients": []}},
        )
    )["updateReportSchedule"]
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    # A READ_ONLY_ADMIN reads the recipients; another partner sees no schedule at all.
    seen = await data(
        client, w.team[AdminRole.READ_ONLY_ADMIN].token, DELIVERIES, {"id": schedule_id}
    )
    assert seen["node"]["recipients"] == [full.admin.email]
    foreign = await data(
        client, w.contoso_team[AdminRole.FULL_ADMIN].token, DELIVERIES, {"id": schedule_id}
    )
    assert foreign["node"] is None
