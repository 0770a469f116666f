"""Bad input and roles for the report mutations: each refusal is a userErrors
entry with the field path, and nothing is stored or queued."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.domain.ids import encode_global_id
from app.models.audit import AuditEvent
from app.models.enums import AdminRole
from app.models.organization import PartnerOrganization
from app.models.reports import Report, ReportSchedule, ReportTemplate
from app.queue import QUEUE_NAME
from tests.graphql_client import data
from tests.report_helpers import flush_queue, generate, template_ids
from tests.report_world import ReportWorld, build_report_world
from tests.test_mutation_matrix import everything

TEMPLATES = "{ reportTemplates { id reportType name kind } }"
CREATE_TEMPLATE = """mutation($input: CreateReportTemplateInput!) {
  createReportTemplate(input: $input) { template { id name } userErrors { field message code } } }"""


async def _templates(client: httpx.AsyncClient, w: ReportWorld) -> dict[str, str]:
    return await template_ids(client, w.team[AdminRole.FULL_ADMIN].token)


async def _queued_jobs(redis_url: str) -> int:
    client = Redis.from_url(redis_url)
    try:
        return await client.zcard(QUEUE_NAME)
    finally:
        await client.aclose()


async def test_generate_report_refuses_bad_input_and_queues_nothing(
    db: Settings, client: httpx.AsyncClient, redis_url: str
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    ids = await _templates(client, w)
    token = w.team[AdminRole.FULL_ADMIN].token
    today = w.today
    day = timedelta(days=1)
    usage, devices, apps = ids["CALLING_USAGE_DETAIL"], ids["DEVICES"], ids["APP_VERSIONS"]
    foreign_template = (
        await data(
            client,
            w.contoso_team[AdminRole.FULL_ADMIN].token,
            CREATE_TEMPLATE,
            {"input": {"name": "Theirs", "reportType": "DEVICES", "columnKeys": ["mac"]}},
        )
    )["createReportTemplate"]["template"]["id"]
    before = await everything()
    cases = [
        ({"templateId": encode_global_id("ReportTemplate", 999)}, ["input", "templateId"], "NOT_FOUND"),
        ({"templateId": "not-an-id"}, ["input", "templateId"], "NOT_FOUND"),
        ({"templateId": foreign_template}, ["input", "templateId"], "NOT_FOUND"),
        ({"templateId": devices, "startDate": str(today - day), "endDate": str(today)}, ["input", "startDate"], "INVALID"),
        ({"templateId": devices, "endDate": str(today)}, ["input", "endDate"], "INVALID"),
        ({"templateId": usage}, ["input", "startDate"], "INVALID"),
        ({"templateId": usage, "startDate": str(today - day)}, ["input", "endDate"], "INVALID"),
        ({"templateId": apps, "endDate": str(today)}, ["input", "startDate"], "INVALID"),
        ({"templateId": usage, "startDate": str(today), "endDate": str(today - day)}, ["input", "endDate"], "INVALID"),
        ({"templateId": usage, "startDate": str(today), "endDate": str(today + day)}, ["input", "endDate"], "INVALID"),
        ({"templateId": usage, "startDate": str(today - 90 * day), "endDate": str(today)}, ["input", "endDate"], "INVALID"),
        ({"templateId": devices, "region": "UAE"}, ["input", "region"], "INVALID"),
    ]  # fmt: skip
    for input, field, code in cases:
        answer = await generate(client, token, **input)
        assert answer["report"] is None, input
        assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [(field, code)], input
        assert answer["userErrors"][0]["message"]
    assert await everything() == before
    assert await _queued_jobs(redis_url) == 0
    # The boundaries that pass: 90 days ending today, and a one-day range.
    ok = await generate(
        client, token, templateId=usage, startDate=str(today - 89 * day), endDate=str(today)
    )
    assert ok["userErrors"] == [] and ok["report"]["startDate"] == str(today - 89 * day)
    ok = await generate(
        client, token, templateId=apps, startDate=str(today - day), endDate=str(today - day)
    )
    assert ok["userErrors"] == []
    assert await _queued_jobs(redis_url) == 2


async def test_a_down_job_queue_is_a_user_error_and_leaves_no_report(
    db: Settings, client: httpx.AsyncClient
) -> None:
    from tests.cli_process import free_port

    w = await build_report_world()
    ids = await _templates(client, w)
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    await runtime.close_queue()
    runtime.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    before = await everything()
    answer = await generate(client, w.team[AdminRole.FULL_ADMIN].token, templateId=ids["DEVICES"])
    assert answer["report"] is None
    assert answer["userErrors"][0]["code"] == "UNAVAILABLE"
    assert "try again" in answer["userErrors"][0]["message"]
    assert await everything() == before
    assert not await Report.exists()
    assert not await AuditEvent.filter(action="report.generate").exists()


async def test_create_report_template_refuses_bad_input(
    db: Settings, client: httpx.AsyncClient
) -> None:
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    ok = await data(
        client,
        token,
        CREATE_TEMPLATE,
        {
            "input": {
                "name": "  Phones   by site ",
                "reportType": "PHONE_NUMBERS",
                "columnKeys": ["location_name", "phone_number"],
            }
        },
    )
    assert ok["createReportTemplate"]["template"]["name"] == "Phones by site"
    before = await everything()
    cases = [
        ({"name": "x", "reportType": "DEVICES", "columnKeys": []}, [["input", "columnKeys"]]),
        ({"name": "x", "reportType": "DEVICES", "columnKeys": ["mac", "nope", "mac"]}, [["input", "columnKeys", "1"], ["input", "columnKeys", "2"]]),
        ({"name": "x", "reportType": "DEVICES", "columnKeys": ["country"]}, [["input", "columnKeys", "0"]]),
        ({"name": "", "reportType": "DEVICES", "columnKeys": ["mac"]}, [["input", "name"]]),
        ({"name": "a" * 81, "reportType": "DEVICES", "columnKeys": ["mac"]}, [["input", "name"]]),
        ({"name": "../etc/passwd", "reportType": "DEVICES", "columnKeys": ["mac"]}, [["input", "name"]]),
        ({"name": "PHONES BY SITE", "reportType": "DEVICES", "columnKeys": ["mac"]}, [["input", "name"]]),
        ({"name": "devices", "reportType": "DEVICES", "columnKeys": ["mac"]}, [["input", "name"]]),
    ]  # fmt: skip
    for input, fields in cases:
        answer = (await data(client, token, CREATE_TEMPLATE, {"input": input}))[
            "createReportTemplate"
        ]
        assert answer["template"] is None, input
        assert [e["field"] for e in answer["userErrors"]] == fields, input
    assert await everything() == before
    # Another partner may use the same name: names are unique per partner.
    theirs = await data(
        client,
        w.contoso_team[AdminRole.FULL_ADMIN].token,
        CREATE_TEMPLATE,
        {"input": {"name": "Phones by site", "reportType": "DEVICES", "columnKeys": ["mac"]}},
    )
    assert theirs["createReportTemplate"]["userErrors"] == []
    mine = await data(client, token, TEMPLATES)
    assert [t["name"] for t in mine["reportTemplates"] if t["kind"] == "CUSTOM"] == [
        "Phones by site"
    ]


@pytest.mark.parametrize("role", list(AdminRole))
async def test_report_mutations_follow_the_role_table(
    db: Settings, client: httpx.AsyncClient, redis_url: str, role: AdminRole
) -> None:
    """Every role generates reports; all but READ_ONLY_ADMIN make templates; only
    FULL_ADMIN schedules. A refusal names the role needed and changes nothing."""
    await flush_queue(redis_url)
    w = await build_report_world()
    ids = await _templates(client, w)
    token = w.team[role].token
    schedule = await ReportSchedule.create(
        partner=w.northwind, template_id=1, frequency="DAILY", hour_utc=6,
        created_by=w.team[AdminRole.FULL_ADMIN].admin,
    )  # fmt: skip
    schedule_id = encode_global_id("ReportSchedule", schedule.id)
    mutations = {
        "generate": (
            "mutation($i: GenerateReportInput!) { generateReport(input: $i) { userErrors { code message } } }",
            {"templateId": ids["DEVICES"]},
            set(AdminRole),
        ),
        "template": (
            "mutation($i: CreateReportTemplateInput!) { createReportTemplate(input: $i) { userErrors { code message } } }",
            {"name": f"Mine {role.value}", "reportType": "DEVICES", "columnKeys": ["mac"]},
            set(AdminRole) - {AdminRole.READ_ONLY_ADMIN},
        ),
        "schedule": (
            "mutation($i: CreateReportScheduleInput!) { createReportSchedule(input: $i) { userErrors { code message } } }",
            {"templateId": ids["DEVICES"], "frequency": "DAILY", "hourUtc": 5},
            {AdminRole.FULL_ADMIN},
        ),
        "update": (
            "mutation($i: UpdateReportScheduleInput!) { updateReportSchedule(input: $i) { userErrors { code message } } }",
            {"id": schedule_id, "hourUtc": 7},
            {AdminRole.FULL_ADMIN},
        ),
        "delete": (
            "mutation($i: DeleteInput!) { deleteReportSchedule(input: $i) { userErrors { code message } } }",
            {"id": schedule_id},
            {AdminRole.FULL_ADMIN},
        ),
    }  # fmt: skip
    for name, (mutation, input, allowed) in mutations.items():
        before = await everything()
        answer = await data(client, token, mutation, {"i": input})
        errors = next(iter(answer.values()))["userErrors"]
        if role in allowed:
            assert errors == [], (name, errors)
            assert await AuditEvent.filter(actor_id=w.team[role].admin.id).count() >= 1
        else:
            assert [e["code"] for e in errors] == ["FORBIDDEN"], name
            assert "FULL_ADMIN" in errors[0]["message"]
            assert await everything() == before, name


async def test_report_mutations_wait_for_the_setup(
    db: Settings, client: httpx.AsyncClient, redis_url: str
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    ids = await _templates(client, w)
    await PartnerOrganization.filter(id=w.northwind.id).update(terms_accepted_at=None)
    before = await everything()
    answer = await generate(client, w.team[AdminRole.FULL_ADMIN].token, templateId=ids["DEVICES"])
    assert answer["userErrors"][0]["code"] == "FORBIDDEN"
    assert "setup" in answer["userErrors"][0]["message"]
    created = await data(
        client,
        w.team[AdminRole.FULL_ADMIN].token,
        CREATE_TEMPLATE,
        {"input": {"name": "x", "reportType": "DEVICES", "columnKeys": ["mac"]}},
    )
    assert created["createReportTemplate"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert await everything() == before
    assert await ReportTemplate.filter(partner_id=w.northwind.id).count() == 0
