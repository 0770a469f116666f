"""Custom templates can change: updateReportTemplate renames a CUSTOM template or
chooses its columns again, deleteReportTemplate removes one no schedule uses.
DEFAULT templates are refused, reports already requested keep their columns and
their file, and every refusal changes nothing."""

from __future__ import annotations

import httpx

from app.config import Settings
from app.domain.ids import decode_id_of
from app.domain.ids import encode_global_id as gid
from app.domain.mutations import audit_target
from app.models.audit import AuditEvent
from app.models.enums import AdminRole, ReportFrequency, ReportTemplateKind, ReportType
from app.models.reports import ReportSchedule, ReportTemplate
from tests import factories
from tests.graphql_client import data
from tests.report_helpers import (
    download,
    flush_queue,
    generate,
    parse_csv,
    run_jobs,
    templates_by_type,
)
from tests.test_mutation_matrix import everything

FULL, ADMIN, READ_ONLY = AdminRole.FULL_ADMIN, AdminRole.ADMIN, AdminRole.READ_ONLY_ADMIN

CREATE = """mutation($input: CreateReportTemplateInput!) { createReportTemplate(input: $input) {
  template { id name columns { key } } userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateReportTemplateInput!) { updateReportTemplate(input: $input) {
  template { id name kind columns { key title } } userErrors { field message code } } }"""
DELETE = """mutation($input: DeleteReportTemplateInput!) { deleteReportTemplate(input: $input) {
  deletedId userErrors { field message code } } }"""
REPORT = """query($id: ID!) { report(id: $id) { status columns { key title }
  template { id name deletedAt columns { key } } download { url } } }"""
LIST = "{ reportTemplates { id name kind } }"


async def _world():
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    theirs = await factories.admin(contoso, FULL)
    await factories.customer(northwind, "Acme")
    return northwind, contoso, team, theirs


async def _create(client: httpx.AsyncClient, token: str, name: str, keys: list[str]) -> str:
    answer = await data(
        client,
        token,
        CREATE,
        {"input": {"name": name, "reportType": "DEVICES", "columnKeys": keys}},
    )
    assert answer["createReportTemplate"]["userErrors"] == [], answer
    return answer["createReportTemplate"]["template"]["id"]


async def _header(client: httpx.AsyncClient, token: str, report_id: str) -> list[str]:
    report = (await data(client, token, REPORT, {"id": report_id}))["report"]
    assert report["status"] == "SUCCEEDED", report
    return parse_csv((await download(client, report["download"]["url"])).content)[0]


async def test_an_update_renames_and_rechooses_columns_while_past_reports_keep_theirs(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    _, _, team, _ = await _world()
    token = team[ADMIN].token  # not only FULL_ADMIN: every role that creates templates
    titles = {
        c["key"]: c["title"] for c in (await templates_by_type(client, token))["DEVICES"]["columns"]
    }
    template = await _create(client, token, "Phones by site", ["mac", "customer"])
    done = (await generate(client, token, templateId=template))["report"]["id"]
    await run_jobs(redis_url, http_settings)
    queued = (await generate(client, token, templateId=template))["report"]["id"]

    answer = await data(
        client,
        token,
        UPDATE,
        {"input": {"templateId": template, "name": " Firmware  watch ",
                   "columnKeys": ["firmware", "customer", "location_name"]}},
    )  # fmt: skip
    payload = answer["updateReportTemplate"]
    assert payload["userErrors"] == []
    assert payload["template"]["name"] == "Firmware watch"
    assert payload["template"]["kind"] == "CUSTOM"
    assert [c["key"] for c in payload["template"]["columns"]] == [
        "firmware",
        "customer",
        "location_name",
    ]
    [event] = await AuditEvent.filter(action="report_template.update")
    assert event.target_id == audit_target(
        "ReportTemplate", decode_id_of(template, "ReportTemplate")
    )
    assert "renamed 'Phones by site' to 'Firmware watch'" in event.summary

    after = (await generate(client, token, templateId=template))["report"]["id"]
    await run_jobs(redis_url, http_settings)
    old = [titles["mac"], titles["customer"]]
    # The report made before, and the one queued before but written after, keep
    # the columns the template had when they were asked for.
    for report_id in (done, queued):
        assert await _header(client, token, report_id) == old
        report = (await data(client, token, REPORT, {"id": report_id}))["report"]
        assert [c["key"] for c in report["columns"]] == ["mac", "customer"]
        assert report["template"]["name"] == "Firmware watch"
    assert await _header(client, token, after) == [
        titles["firmware"],
        titles["customer"],
        titles["location_name"],
    ]

    # Only the name, or only the columns, or the same values: the rest stays.
    only_name = await data(client, token, UPDATE, {"input": {"templateId": template, "name": "FW"}})
    assert [c["key"] for c in only_name["updateReportTemplate"]["template"]["columns"]] == [
        "firmware",
        "customer",
        "location_name",
    ]
    same = await data(
        client,
        token,
        UPDATE,
        {"input": {"templateId": template, "name": "fw", "columnKeys": ["mac"]}},
    )
    assert same["updateReportTemplate"]["template"]["name"] == "fw"  # its own name, in a new case
    assert [c["key"] for c in same["updateReportTemplate"]["template"]["columns"]] == ["mac"]


async def test_a_template_a_schedule_uses_is_not_deleted_and_the_conflict_names_the_schedules(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    northwind, _, team, _ = await _world()
    token = team[FULL].token
    template = await _create(client, token, "Phones by site", ["mac", "customer"])
    pk = (await ReportTemplate.get(name="Phones by site")).id
    weekly = await ReportSchedule.create(
        partner=northwind, template_id=pk, frequency=ReportFrequency.WEEKLY, day_of_week=1,
        hour_utc=5, created_by=team[FULL].admin,
    )  # fmt: skip
    daily = await ReportSchedule.create(
        partner=northwind, template_id=pk, frequency=ReportFrequency.DAILY, hour_utc=6,
        created_by=team[FULL].admin,
    )  # fmt: skip
    report = (await generate(client, token, templateId=template))["report"]["id"]
    await run_jobs(redis_url, http_settings)

    before = await everything()
    answer = await data(client, team[ADMIN].token, DELETE, {"input": {"templateId": template}})
    [error] = answer["deleteReportTemplate"]["userErrors"]
    assert answer["deleteReportTemplate"]["deletedId"] is None
    assert (error["field"], error["code"]) == (["input", "templateId"], "CONFLICT")
    assert "used by 2 report schedule(s)" in error["message"]
    assert "weekly on day 1 at 05:00 UTC" in error["message"]
    assert gid("ReportSchedule", weekly.id) in error["message"]
    assert "daily at 06:00 UTC" in error["message"]
    assert gid("ReportSchedule", daily.id) in error["message"]
    assert await everything() == before

    for schedule in (weekly, daily):
        await data(
            client,
            token,
            "mutation($input: DeleteInput!) { deleteReportSchedule(input: $input) { deletedId } }",
            {"input": {"id": gid("ReportSchedule", schedule.id)}},
        )
    answer = await data(client, token, DELETE, {"input": {"templateId": template}})
    assert answer["deleteReportTemplate"] == {"deletedId": template, "userErrors": []}

    # Gone from the list, from node(id:), from generateReport and from a second delete...
    listed = (await data(client, token, LIST))["reportTemplates"]
    assert template not in [t["id"] for t in listed]
    assert [t["kind"] for t in listed] == ["DEFAULT"] * 6
    node = await data(client, token, "query($id: ID!) { node(id: $id) { id } }", {"id": template})
    assert node["node"] is None
    refused = await generate(client, token, templateId=template)
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "templateId"], "NOT_FOUND")
    ]
    again = await data(client, token, DELETE, {"input": {"templateId": template}})
    assert again["deleteReportTemplate"]["userErrors"][0]["code"] == "NOT_FOUND"
    # ...while its past report keeps its template, columns and file.
    past = (await data(client, token, REPORT, {"id": report}))["report"]
    assert past["template"]["name"] == "Phones by site"
    assert past["template"]["deletedAt"] is not None
    assert [c["key"] for c in past["columns"]] == ["mac", "customer"]
    assert (await download(client, past["download"]["url"])).status_code == 200
    # The name is free again.
    await _create(client, token, "Phones by site", ["mac"])


async def test_template_changes_refuse_bad_input_and_change_nothing(
    db: Settings, client: httpx.AsyncClient
) -> None:
    _, contoso, team, theirs = await _world()
    token = team[FULL].token
    mine = await _create(client, token, "Mine", ["mac", "customer"])
    await _create(client, token, "Other", ["mac"])
    foreign = await _create(client, theirs.token, "Theirs", ["mac"])
    default = (await templates_by_type(client, token))["DEVICES"]["id"]
    missing = gid("ReportTemplate", 10**6)
    before = await everything()

    update_cases = [
        ({"templateId": default, "name": "Mine too"}, ["input", "templateId"], "FORBIDDEN"),
        ({"templateId": foreign, "name": "Ours now"}, ["input", "templateId"], "NOT_FOUND"),
        ({"templateId": missing, "name": "Nobody"}, ["input", "templateId"], "NOT_FOUND"),
        ({"templateId": "junk", "name": "Nobody"}, ["input", "templateId"], "NOT_FOUND"),
        ({"templateId": gid("Tag", 1), "name": "Nobody"}, ["input", "templateId"], "NOT_FOUND"),
        ({"templateId": mine, "name": ""}, ["input", "name"], "INVALID"),
        ({"templateId": mine, "name": "   "}, ["input", "name"], "INVALID"),
        ({"templateId": mine, "name": "x" * 81}, ["input", "name"], "INVALID"),
        ({"templateId": mine, "name": "a/b"}, ["input", "name"], "INVALID"),
        ({"templateId": mine, "name": "OTHER"}, ["input", "name"], "CONFLICT"),
        ({"templateId": mine, "columnKeys": []}, ["input", "columnKeys"], "INVALID"),
        ({"templateId": mine, "columnKeys": ["mac", "calls"]}, ["input", "columnKeys", "1"], "INVALID"),
        ({"templateId": mine, "columnKeys": ["mac", "mac"]}, ["input", "columnKeys", "1"], "INVALID"),
    ]  # fmt: skip
    for variables, field, code in update_cases:
        answer = await data(client, token, UPDATE, {"input": variables})
        payload = answer["updateReportTemplate"]
        assert payload["template"] is None, variables
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], (
            variables,
            payload,
        )
    for template_id, code in (
        (default, "FORBIDDEN"),
        (foreign, "NOT_FOUND"),
        (missing, "NOT_FOUND"),
        ("junk", "NOT_FOUND"),
    ):
        answer = await data(client, token, DELETE, {"input": {"templateId": template_id}})
        [error] = answer["deleteReportTemplate"]["userErrors"]
        assert (error["field"], error["code"]) == (["input", "templateId"], code)
    # Another partner's template reads exactly like a missing one.
    answers = [
        (await data(client, token, DELETE, {"input": {"templateId": t}}))["deleteReportTemplate"]
        for t in (foreign, missing)
    ]
    assert answers[0] == answers[1]

    # READ_ONLY_ADMIN makes no templates, so it changes none either.
    for query, name, variables in (
        (UPDATE, "updateReportTemplate", {"templateId": mine, "name": "Read only"}),
        (DELETE, "deleteReportTemplate", {"templateId": mine}),
    ):
        answer = await data(client, team[READ_ONLY].token, query, {"input": variables})
        [error] = answer[name]["userErrors"]
        assert error["code"] == "FORBIDDEN"
        assert (
            "needs the ADMIN or FULL_ADMIN or SALES_ADMIN or SALES_FULL_ADMIN role"
            in (error["message"])
        )
        assert "(you are READ_ONLY_ADMIN)" in error["message"]
    assert await everything() == before
    assert contoso.id  # the other partner's template was never touched


async def test_template_changes_wait_for_the_organization_setup(
    db: Settings, client: httpx.AsyncClient
) -> None:
    pending = await factories.partner("Pending Partners", "pending.example", setup_completed=False)
    full = await factories.admin(pending, FULL)
    template = await ReportTemplate.create(
        partner=pending, name="Mine", name_key="mine", kind=ReportTemplateKind.CUSTOM,
        report_type=ReportType.DEVICES, column_keys=["mac"],
    )  # fmt: skip
    before = await everything()
    for query, name, variables in (
        (UPDATE, "updateReportTemplate", {"templateId": gid("ReportTemplate", template.id),
                                          "name": "Renamed"}),
        (DELETE, "deleteReportTemplate", {"templateId": gid("ReportTemplate", template.id)}),
    ):  # fmt: skip
        answer = await data(client, full.token, query, {"input": variables})
        [error] = answer[name]["userErrors"]
        assert error["code"] == "FORBIDDEN" and "setup is pending" in error["message"]
    assert await everything() == before
