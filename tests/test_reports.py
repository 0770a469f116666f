"""Reports end to end on both databases and real Valkey: every DEFAULT template
and a CUSTOM one generated through GraphQL, run by a worker, fetched through
the signed URL with no other credentials, and compared with rows computed in
tests/report_expected.py from the seeded rows."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from app.config import Settings
from app.domain.ids import encode_global_id
from app.models.audit import AuditEvent
from app.models.enums import AdminRole, ReportStatus
from app.models.reports import Report
from tests import report_expected as expected
from tests.graphql_client import data, gql
from tests.report_helpers import (
    download,
    flush_queue,
    generate,
    parse_csv,
    report_of,
    run_jobs,
    sha256,
    templates_by_type,
)
from tests.report_world import ReportWorld, build_report_world

TEMPLATES = "{ reportTemplates { id name kind reportType description supportsDateRange requiresDateRange columns { key title description } } }"

# SPEC.md (reports) column by column, in its order.
SPEC_COLUMNS = {
    "CALLING_USAGE_DETAIL": [
        "Customer name", "Organization ID", "Location", "Total calls", "Total call legs",
        "Poor quality call legs", "Call minutes", "Call minutes - video", "Call legs - audio",
        "Call legs - video", "Call legs - desk phone", "Call legs - room device",
        "Call legs - other devices", "Calls - hunt group", "Calls - auto attendant",
        "Call queue - total calls", "Call queue - timed out calls",
        "Call queue - overflowed calls", "Call queue - transferred calls",
        "Call queue - abandoned calls", "Total internal calls", "Total toll free calls",
        "Total premium calls", "Total integrated audio calls", "Total national calls",
        "Total inbound calls", "Total operator services calls", "Total spark calls",
        "Total short code calls", "Total international calls", "Total mobile calls",
        "Total emergency calls", "Total unknown calls",
    ],
    "DEVICES": [
        "External ID", "Customer", "Customer org ID", "Location ID", "Location name", "Product",
        "MAC", "Firmware", "Phone number", "Extension", "User ID", "User UUID",
    ],
    "PHONE_NUMBERS": [
        "External ID", "Customer", "Customer org ID", "Location ID", "Location name", "Country",
        "Phone number", "Extension", "PSTN connection", "Active", "User type", "Number type",
        "User ID", "User UUID",
    ],
    "APP_VERSIONS": [
        "Customer name", "Organization ID", "Client type", "Platform", "Version", "OS version",
        "User count",
    ],
    "SUBSCRIPTION_DETAILS": [
        "Calculation date", "Customer name", "Organization ID", "(Wholesale) External ID",
        "Trial", "Subscription ID", "Subscription type", "Auto-renew enabled",
        "Expiry / renewal date", "Total users in the org", "Total verified users",
        "Total workspaces in the org", "Meeting participants - last 30 days",
        "Calling minutes - last 30 days", "Messages sent - last 30 days",
        "Meetings license - available", "Meetings license - assigned", "Meetings license - used",
        "Calling Professional license - available", "Calling Professional license - assigned",
        "Calling Professional license - used", "Calling Standard license - available",
        "Calling Standard license - assigned", "Calling Standard license - used",
        "Customer Assist license - available", "Customer Assist license - assigned",
        "(Wholesale) Common Area Calling - available", "(Wholesale) Common Area Calling - assigned",
        "(Wholesale) Webex Calling - available", "(Wholesale) Webex Calling - assigned",
        "(Wholesale) Webex Calling Standard - available",
        "(Wholesale) Webex Calling Standard - assigned",
        "(Wholesale) Webex Voice - available", "(Wholesale) Webex Voice - assigned",
        "(Wholesale) Customer Assist - available", "(Wholesale) Customer Assist - assigned",
        "(Wholesale) Webex Suite - available", "(Wholesale) Webex Suite - assigned",
        "(Wholesale) Attendant Console - available", "(Wholesale) Attendant Console - assigned",
        "(Wholesale) Webex Meetings - available", "(Wholesale) Webex Meetings - assigned",
    ],
    # Issue 14 item 6: the customer list as a report (tests/test_customer_list_report.py).
    "CUSTOMER_LIST": [
        "Customer name", "Organization ID", "External ID", "Region", "Statuses", "Products",
        "Tags", "Managed by", "Total licenses", "Assigned licenses", "Available licenses",
        "Overage licenses", "Next end date", "Created", "Last admin activity",
    ],
}  # fmt: skip
NAMES = {
    "CALLING_USAGE_DETAIL": "Calling usage detail",
    "DEVICES": "Devices",
    "PHONE_NUMBERS": "Phone numbers",
    "APP_VERSIONS": "Webex App versions",
    "SUBSCRIPTION_DETAILS": "Subscription details",
    "CUSTOMER_LIST": "Customer list",
}


async def test_the_default_templates_list_every_spec_column_in_order(
    db: Settings, client: httpx.AsyncClient
) -> None:
    w = await build_report_world()
    templates = (await data(client, w.team[AdminRole.READ_ONLY_ADMIN].token, TEMPLATES))[
        "reportTemplates"
    ]
    assert [t["reportType"] for t in templates] == list(SPEC_COLUMNS)
    for t in templates:
        assert t["kind"] == "DEFAULT"
        assert t["name"] == NAMES[t["reportType"]]
        assert [c["title"] for c in t["columns"]] == SPEC_COLUMNS[t["reportType"]]
        assert all(c["description"] and c["key"] for c in t["columns"])
        assert len({c["key"] for c in t["columns"]}) == len(t["columns"])
        assert t["description"]
    by_type = {t["reportType"]: t for t in templates}
    assert not by_type["DEVICES"]["supportsDateRange"]
    assert not by_type["PHONE_NUMBERS"]["supportsDateRange"]
    assert not by_type["SUBSCRIPTION_DETAILS"]["supportsDateRange"]
    assert not by_type["CUSTOMER_LIST"]["supportsDateRange"]
    assert by_type["CALLING_USAGE_DETAIL"]["requiresDateRange"]
    assert by_type["APP_VERSIONS"]["supportsDateRange"]
    assert not by_type["APP_VERSIONS"]["requiresDateRange"]


def _customer_ids(w: ReportWorld, *names: str) -> set[int]:
    return {w.customers[n].id for n in names}


def _expected(
    w: ReportWorld, report_type: str, keys: list[str], ids: set[int], **kw
) -> list[list[str]]:
    region = kw.get("region")
    if report_type == "CALLING_USAGE_DETAIL":
        rows = expected.calling_usage(w, ids, region, kw["start"], kw["end"])
    elif report_type == "DEVICES":
        rows = expected.devices(w, ids, region)
    elif report_type == "PHONE_NUMBERS":
        rows = expected.phone_numbers(w, ids, region)
    elif report_type == "APP_VERSIONS":
        rows = expected.app_versions(w, ids, region, kw["start"], kw["end"])
    else:
        rows = expected.subscription_details(w, ids, region, keys, w.today)
    return [[expected.spreadsheet_safe(row[k]) for k in keys] for row in rows]


async def _fetch_csv(client: httpx.AsyncClient, report: dict) -> list[list[str]]:
    handle = report["download"]
    response = await download(client, handle["url"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f'filename="{handle["fileName"]}"' in disposition
    assert handle["byteSize"] == len(response.content)
    assert handle["checksum"] == sha256(response.content)
    assert response.content.count(b"\r\n") >= 1  # RFC 4180 line ends
    return parse_csv(response.content)


async def test_every_default_template_and_a_custom_one_end_to_end(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    templates = await templates_by_type(client, token)
    custom = (
        await data(
            client,
            token,
            """mutation($input: CreateReportTemplateInput!) { createReportTemplate(input: $input) {
                 template { id name kind reportType columns { key title } } userErrors { field message } } }""",
            {"input": {"name": "MACs & firmware", "reportType": "DEVICES",
                       "columnKeys": ["mac", "customer", "firmware", "location_name"]}},
        )
    )["createReportTemplate"]  # fmt: skip
    assert custom["userErrors"] == []
    assert custom["template"]["kind"] == "CUSTOM"
    assert [c["key"] for c in custom["template"]["columns"]] == [
        "mac",
        "customer",
        "firmware",
        "location_name",
    ]

    start, end = w.start.isoformat(), w.end.isoformat()
    requests = {
        "CALLING_USAGE_DETAIL": {"startDate": start, "endDate": end},
        "DEVICES": {},
        "PHONE_NUMBERS": {},
        "APP_VERSIONS": {},
        "SUBSCRIPTION_DETAILS": {},
    }
    queued = {}
    for report_type, extra in requests.items():
        answer = await generate(client, token, templateId=templates[report_type]["id"], **extra)
        assert answer["userErrors"] == []
        assert answer["report"]["status"] == "QUEUED"
        assert answer["report"]["download"] is None
        queued[report_type] = answer["report"]["id"]
    answer = await generate(client, token, templateId=custom["template"]["id"])
    queued["CUSTOM"] = answer["report"]["id"]
    assert await Report.filter(status=ReportStatus.QUEUED).count() == 6
    assert await AuditEvent.filter(action="report.generate").count() == 6

    await run_jobs(redis_url, http_settings)

    everyone = _customer_ids(w, "alpha", "bravo", "charlie")
    app_window = {"start": w.today - timedelta(days=90), "end": w.today - timedelta(days=1)}
    for report_type, report_id in queued.items():
        report = await report_of(client, token, report_id)
        assert report["status"] == "SUCCEEDED", report
        is_custom = report_type == "CUSTOM"
        template = custom["template"] if is_custom else templates[report_type]
        keys = [c["key"] for c in template["columns"]]
        base_type = "DEVICES" if is_custom else report_type
        kw = {"start": w.start, "end": w.end} if base_type == "CALLING_USAGE_DETAIL" else app_window
        rows = await _fetch_csv(client, report)
        assert rows[0] == [c["title"] for c in template["columns"]]
        want = _expected(w, base_type, keys, everyone, **kw)
        assert rows[1:] == want, report_type
        assert report["rowCount"] == len(want) > 0
        name = template["name"]
        assert re.fullmatch(
            rf"{re.escape(name)}_[A-Za-z0-9]{{12}}_{w.today.isoformat()}\.csv",
            report["download"]["fileName"],
        )
        assert report["startedAt"] and report["finishedAt"]

    # Spot checks written by hand, beside the computed rows.
    devices_csv = await _fetch_csv(client, await report_of(client, token, queued["DEVICES"]))
    firmware = [row[7] for row in devices_csv[1:]]
    assert '\'=HYPERLINK("http://x")' in firmware and "'@risk" in firmware
    assert "-104" in [row[9] for row in devices_csv[1:]]  # a number stays as it is
    assert "line\nbreak@charlie.example" in [row[10] for row in devices_csv[1:]]
    assert not any("Contoso" in cell for row in devices_csv for cell in row)
    usage_csv = await _fetch_csv(
        client, await report_of(client, token, queued["CALLING_USAGE_DETAIL"])
    )
    bravo = next(r for r in usage_csv[1:] if r[0] == "Bravo Logistics")
    # 6 queued calls (12 legs), 1 auto attendant call; 2 abandoned; legs at 5.1 % loss are poor.
    assert bravo[3:6] == ["7", "13", "6"]
    assert bravo[15:20] == ["6", "1", "1", "1", "2"]
    subscriptions_csv = await _fetch_csv(
        client, await report_of(client, token, queued["SUBSCRIPTION_DETAILS"])
    )
    assert [r[5] for r in subscriptions_csv[1:]] == [
        "Sub-A1",
        "ET-000000000001",
        "Sub-B1",
        "Sub-C1",
    ]


async def test_reports_hold_only_the_requesters_customers_and_region(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    templates = await templates_by_type(client, w.team[AdminRole.ADMIN].token)
    keys = {k: [c["key"] for c in t["columns"]] for k, t in templates.items()}
    admin = await generate(
        client, w.team[AdminRole.ADMIN].token, templateId=templates["DEVICES"]["id"]
    )
    eu = await generate(client, w.team[AdminRole.READ_ONLY_ADMIN].token,
                        templateId=templates["PHONE_NUMBERS"]["id"], region="EU")  # fmt: skip
    contoso = await generate(client, w.contoso_team[AdminRole.FULL_ADMIN].token,
                             templateId=templates["SUBSCRIPTION_DETAILS"]["id"])  # fmt: skip
    await run_jobs(redis_url, http_settings)

    admin_report = await report_of(client, w.team[AdminRole.ADMIN].token, admin["report"]["id"])
    rows = await _fetch_csv(client, admin_report)
    assert rows[1:] == _expected(w, "DEVICES", keys["DEVICES"], _customer_ids(w, "alpha"))
    eu_report = await report_of(client, w.team[AdminRole.READ_ONLY_ADMIN].token, eu["report"]["id"])
    rows = await _fetch_csv(client, eu_report)
    assert rows[1:] == _expected(
        w,
        "PHONE_NUMBERS",
        keys["PHONE_NUMBERS"],
        _customer_ids(w, "alpha", "bravo", "charlie"),
        region="EU",
    )
    assert {r[1] for r in rows[1:]} == {"Bravo Logistics"}
    contoso_report = await report_of(
        client, w.contoso_team[AdminRole.FULL_ADMIN].token, contoso["report"]["id"]
    )
    rows = await _fetch_csv(client, contoso_report)
    assert [r[1] for r in rows[1:]] == ["Contoso Customer"]

    # Another partner's report is unreachable: by id, by node, in the list.
    for query in (
        "query($id: ID!) { report(id: $id) { id } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ):
        answer = await data(
            client, w.contoso_team[AdminRole.FULL_ADMIN].token, query, {"id": admin["report"]["id"]}
        )
        assert next(iter(answer.values())) is None
    listed = await data(
        client,
        w.contoso_team[AdminRole.FULL_ADMIN].token,
        "{ reports { totalCount nodes { id } } }",
    )
    assert listed["reports"]["totalCount"] == 1
    # An ADMIN sees only its own reports; FULL_ADMIN sees every report of the partner.
    mine = await data(
        client, w.team[AdminRole.ADMIN].token, "{ reports { totalCount nodes { id } } }"
    )
    assert [n["id"] for n in mine["reports"]["nodes"]] == [admin["report"]["id"]]
    everything = await data(
        client,
        w.team[AdminRole.FULL_ADMIN].token,
        "{ reports { totalCount nodes { id requestedBy { email } } } }",
    )
    assert [n["id"] for n in everything["reports"]["nodes"]] == [
        eu["report"]["id"],
        admin["report"]["id"],
    ]
    # An empty region of the viewer's scope is refused up front (nothing queued).
    refused = await generate(
        client, w.team[AdminRole.ADMIN].token, templateId=templates["DEVICES"]["id"], region="EU"
    )
    assert refused["userErrors"][0]["field"] == ["input", "region"]


async def test_a_report_with_no_rows_succeeds_with_row_count_zero(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    templates = await templates_by_type(client, token)
    day = (w.today - timedelta(days=60)).isoformat()
    answer = await generate(
        client,
        token,
        templateId=templates["CALLING_USAGE_DETAIL"]["id"],
        startDate=day,
        endDate=day,
    )
    await run_jobs(redis_url, http_settings)
    report = await report_of(client, token, answer["report"]["id"])
    assert report["status"] == "SUCCEEDED" and report["rowCount"] == 0
    rows = await _fetch_csv(client, report)
    assert rows == [SPEC_COLUMNS["CALLING_USAGE_DETAIL"]]


async def test_download_urls_refuse_tampering_expiry_and_other_reports(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    from app.clock import utcnow
    from app.domain.downloads import sign_download

    await flush_queue(redis_url)
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    templates = await templates_by_type(client, token)
    first = await generate(client, token, templateId=templates["DEVICES"]["id"])
    second = await generate(client, token, templateId=templates["PHONE_NUMBERS"]["id"])
    await run_jobs(redis_url, http_settings)
    report = await report_of(client, token, first["report"]["id"])
    url = report["download"]["url"]
    # No PARTNERHUB_PUBLIC_BASE_URL: the URL names the address the request came to.
    assert url.startswith("http://testserver/reports/")
    # A fresh handle on every read, valid for the configured hour.
    again = await report_of(client, token, first["report"]["id"])
    assert again["download"]["fileName"] == report["download"]["fileName"]
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert int(params["expires"]) - int(utcnow().timestamp()) in range(3590, 3601)

    assert (await download(client, url)).status_code == 200
    head = await client.head(f"{parts.path}?{parts.query}")
    assert head.status_code == 200 and head.headers["content-length"] == str(
        report["download"]["byteSize"]
    )

    def with_params(path: str, **changes: str) -> str:
        return f"{path}?{urlencode(params | changes)}"

    tampered = params["signature"][:-2] + ("AA" if not params["signature"].endswith("AA") else "BB")
    other_report = (await Report.all().order_by("id"))[-1].id
    assert second["report"]["id"] == encode_global_id("Report", other_report)
    cases = [
        with_params(parts.path, signature=tampered),
        with_params(parts.path, expires=str(int(params["expires"]) + 3600)),
        with_params(f"/reports/{other_report}/download"),  # the same signature for another report
        f"{parts.path}?expires={params['expires']}",
        f"{parts.path}",
    ]
    for case in cases:
        response = await client.get(case)
        assert response.status_code == 403, case
        assert "error" in response.json()

    # An expired URL: signed by the service key an hour and a second ago.
    report_id = (await Report.all().order_by("id").first()).id
    old = sign_download(
        http_settings.signing_key(), "http://x", report_id, utcnow() - timedelta(seconds=3601), 3600
    )
    response = await download(client, old.url)
    assert response.status_code == 403
    assert "expired" in response.json()["error"]
    # No bearer token is needed, and none is accepted in its place.
    forged = sign_download(
        "another-key-of-at-least-32-characters!", "http://x", report_id, utcnow(), 3600
    )
    assert (await download(client, forged.url)).status_code == 403


async def test_report_file_names_are_safe(db: Settings) -> None:
    from datetime import date

    from app.domain.reports import file_name_for

    name = file_name_for("Q3 / EMEA: <devices>", date(2026, 11, 21))
    assert re.fullmatch(r"Q3 - EMEA- -devices-_[A-Za-z0-9]{12}_2026-11-21\.csv", name)


async def test_reports_list_filters_and_pages(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    templates = await templates_by_type(client, token)
    ids = []
    for report_type in ("DEVICES", "PHONE_NUMBERS", "DEVICES"):
        ids.append(
            (await generate(client, token, templateId=templates[report_type]["id"]))["report"]["id"]
        )
    query = """query($first: Int, $after: String, $filter: ReportFilter) {
      reports(first: $first, after: $after, filter: $filter) {
        totalCount pageInfo { hasNextPage endCursor } nodes { id status } } }"""
    page = (await data(client, token, query, {"first": 2}))["reports"]
    assert [n["id"] for n in page["nodes"]] == [ids[2], ids[1]]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"]
    rest = (await data(client, token, query, {"first": 2, "after": page["pageInfo"]["endCursor"]}))[
        "reports"
    ]
    assert [n["id"] for n in rest["nodes"]] == [ids[0]]
    devices = (
        await data(client, token, query, {"filter": {"templateId": templates["DEVICES"]["id"]}})
    )["reports"]
    assert [n["id"] for n in devices["nodes"]] == [ids[2], ids[0]]
    await run_jobs(redis_url, http_settings)
    done = (await data(client, token, query, {"filter": {"statuses": ["SUCCEEDED"]}}))["reports"]
    assert done["totalCount"] == 3
    queued = (await data(client, token, query, {"filter": {"statuses": ["QUEUED", "RUNNING"]}}))[
        "reports"
    ]
    assert queued["totalCount"] == 0
    foreign = encode_global_id("ReportSchedule", 999)
    assert (await data(client, token, query, {"filter": {"scheduleId": foreign}}))["reports"][
        "totalCount"
    ] == 0
    bad = await gql(client, token, query, {"first": 101})
    assert "errors" in bad.json()


def _read_bytes(path) -> bytes:
    return path.read_bytes()


async def test_the_cli_runs_a_report_and_prints_its_file(db: Settings, database_url: str) -> None:
    from pathlib import Path

    from tests.cli_process import cli_env, run_cli

    w = await build_report_world()
    env = cli_env(database_url, db.var_dir)
    email = w.team[AdminRole.ADMIN].admin.email
    result = run_cli(["report", "run", "--template", "devices", "--email", email], env)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.name.startswith("Devices_")
    assert "rows" in result.stderr
    rows = parse_csv(_read_bytes(path))
    keys = [
        c.key for c in __import__("app.domain.report_columns", fromlist=["DEVICES"]).DEVICES.columns
    ]
    assert rows[1:] == _expected(w, "DEVICES", keys, _customer_ids(w, "alpha"))
    report = await Report.get()
    assert report.status == ReportStatus.SUCCEEDED and report.row_count == len(rows) - 1
    assert report.requested_by_id == w.team[AdminRole.ADMIN].admin.id

    # Bad input: one line on stderr, exit 1, nothing stored.
    for args, message in (
        (["--template", "nope", "--email", email], "no report template named 'nope'"),
        (["--template", "devices", "--email", "who@nowhere.example"], "no admin has the email"),
        (["--template", "Calling usage detail", "--email", email], "needs a date range"),
        (["--template", "devices", "--email", email, "--start", "yesterday"], "not a date"),
        (["--template", "devices", "--email", email, "--region", "MARS"], "not a region"),
    ):
        failed = run_cli(["report", "run", *args], env)
        assert failed.returncode == 1, args
        assert message in failed.stderr, failed.stderr
    assert await Report.all().count() == 1


async def test_a_reports_page_costs_the_same_statements_for_3_and_12_reports(
    db: Settings, client: httpx.AsyncClient, redis_url: str
) -> None:
    from app.domain.reports import ReportRequest, create_report
    from app.models.reports import ReportSchedule, ReportTemplate
    from tests.test_customer_detail import counting_statements

    w = await build_report_world()
    token = w.team[AdminRole.FULL_ADMIN].token
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    schedule = await ReportSchedule.create(
        partner=w.northwind, template=template, frequency="DAILY", hour_utc=6,
        created_by=w.team[AdminRole.FULL_ADMIN].admin,
    )  # fmt: skip
    query = """{ reports(first: 50) { totalCount nodes { id status template { name columns { key } }
                 requestedBy { email } schedule { id lastReport { id } createdBy { email } }
                 download { url } } } }"""
    await data(client, token, "{ viewer { email } }")  # the token's first use is noted once
    costs = []
    for total in (3, 12):
        while await Report.all().count() < total:
            n = await Report.all().count()
            await create_report(
                w.northwind.id,
                ReportRequest(template, None, None, None),
                w.team[list(AdminRole)[n % 5]].admin.id,
                None,
                w.today,
                schedule_id=schedule.id if n % 2 else None,
            )
        with counting_statements() as statements:
            answer = await data(client, token, query)
        assert answer["reports"]["totalCount"] == total
        costs.append(len(statements))
        newest = await Report.filter(schedule_id=schedule.id).order_by("-id").first()
        last = {
            n["schedule"]["lastReport"]["id"] for n in answer["reports"]["nodes"] if n["schedule"]
        }
        assert last == {encode_global_id("Report", newest.id)}
    assert costs[0] == costs[1], costs
