"""What the report readers and mutations hand the API (issue 15 items 1 and 4):
plain values of the stored rows, scoped to the viewer, and refusals whose
field paths are in the domain's own (snake_case) terms, which clients read in
the schema's camelCase."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tortoise.models import Model

from app.config import Settings
from app.domain import report_emails, report_schedules, report_templates, reports
from app.domain.access import Viewer
from app.domain.customers import CustomerFilter
from app.domain.errors import MutationRejected
from app.domain.ids import decode_global_id
from app.domain.ids import encode_global_id as gid
from app.domain.report_columns import DEFINITIONS
from app.models.enums import AdminRole, ReportFrequency, ReportStatus, ReportType
from app.models.reports import EmailDelivery, Report, ReportSchedule, ReportTemplate
from app.models.tags import Tag
from tests.graphql_client import data
from tests.report_helpers import flush_queue, generate
from tests.report_world import ReportWorld, build_report_world

FULL = AdminRole.FULL_ADMIN


async def _viewer(w: ReportWorld, role: AdminRole = FULL, contoso: bool = False) -> Viewer:
    admin = (w.contoso_team if contoso else w.team)[role].admin
    await admin.fetch_related("partner")
    return Viewer(admin=admin, partner=admin.partner)


def _is_plain(value: object) -> bool:
    """A frozen dataclass that holds no table row, at any depth."""
    if isinstance(value, Model):
        return False
    if dataclasses.is_dataclass(value):
        frozen = type(value).__dataclass_params__.frozen  # type: ignore[attr-defined]
        return frozen and all(_is_plain(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return True


async def test_readers_and_mutations_answer_plain_values_of_the_stored_rows(
    db: Settings, redis_url: str
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    viewer = await _viewer(w)
    devices = DEFINITIONS[ReportType.DEVICES]
    keys = [devices.column_keys[2], devices.column_keys[0]]

    made = await report_templates.create_template(
        viewer, " Phones  first ", ReportType.DEVICES, keys
    )
    assert isinstance(made, report_templates.ReportTemplateValue) and _is_plain(made)
    stored = await ReportTemplate.get(id=made.id)
    assert (made.name, made.kind, made.report_type) == (stored.name, stored.kind, "DEVICES")
    assert made.name == "Phones first" and list(made.column_keys) == stored.column_keys == keys
    # The figures: the chosen columns of the DEVICES definition, in the chosen order.
    assert [c.key for c in made.columns] == keys
    assert [c.title for c in made.columns] == [devices.column(k).title for k in keys]
    assert made.description == f"Custom template on {devices.name}: {devices.description}"
    assert (made.supports_date_range, made.requires_date_range) == (False, False)

    report = await reports.generate_report(viewer, made.id, None, None, None, None, w.today)
    assert isinstance(report, reports.ReportValue) and _is_plain(report)
    row = await Report.get(id=report.id)
    assert (report.status, report.template_id, report.requested_by_id) == (
        ReportStatus.QUEUED,
        made.id,
        viewer.admin.id,
    )
    assert report.column_keys == tuple(keys) and row.column_keys == keys
    assert report.file_name == row.file_name and report.created_at == row.created_at

    schedule = await report_schedules.create_schedule(
        viewer,
        made.id,
        ReportFrequency.WEEKLY,
        3,
        None,
        7,
        None,
        None,
        datetime(2030, 3, 4, 5, tzinfo=UTC),  # a Monday
        recipients=[viewer.admin.email.upper()],
    )
    assert isinstance(schedule, report_schedules.ReportScheduleValue) and _is_plain(schedule)
    assert schedule.next_run_at == datetime(2030, 3, 6, 7, tzinfo=UTC)  # Wednesday 07:00
    assert schedule.recipients == (viewer.admin.email.lower(),)
    assert (await ReportSchedule.get(id=schedule.id)).recipients == [viewer.admin.email.lower()]

    # Every reader answers the same values the mutations did.
    page = await reports.list_reports(viewer, first=10, after=None)
    assert page.items == [report] and _is_plain(page.items)
    assert await reports.get_report(viewer, report.id) == report
    assert await report_templates.get_template(viewer, made.id) == made
    assert (await reports.templates_by_ids(viewer, [made.id]))[made.id] == made
    assert await report_schedules.get_schedule(viewer, schedule.id) == schedule
    assert await reports.schedules_by_ids(viewer, [schedule.id]) == {schedule.id: schedule}
    listed = await report_schedules.list_schedules(viewer, first=10, after=None)
    assert listed.items == [schedule]
    assert made in await report_templates.list_templates(viewer)
    assert _is_plain(await report_templates.list_templates(viewer))
    deliveries = await report_emails.list_deliveries(viewer, schedule.id, first=5, after=None)
    assert deliveries.items == [] and deliveries.total_count == 0

    # Another partner's admin reads none of them.
    theirs = await _viewer(w, contoso=True)
    assert await reports.get_report(theirs, report.id) is None
    assert await report_templates.get_template(theirs, made.id) is None
    assert await report_schedules.get_schedule(theirs, schedule.id) is None
    assert await reports.templates_by_ids(theirs, [made.id]) == {}
    assert await reports.schedules_by_ids(theirs, [schedule.id]) == {}
    assert (await reports.list_reports(theirs, first=10, after=None)).items == []

    # A deleted template: gone from use, still read by id for its past reports.
    await report_schedules.delete_schedule(viewer, schedule.id)
    await report_templates.delete_template(viewer, made.id)
    assert await report_templates.get_template(viewer, made.id) is None
    gone = (await reports.templates_by_ids(viewer, [made.id]))[made.id]
    assert gone.deleted_at is not None and gone.name == "Phones first"
    assert gone.deleted_at == (await ReportTemplate.get(id=made.id)).deleted_at


async def test_a_schedules_last_report_and_deliveries_are_values_with_their_report(
    db: Settings, redis_url: str
) -> None:
    from app.models.enums import EmailDeliveryStatus
    from app.models.reports import EmailDelivery

    await flush_queue(redis_url)
    w = await build_report_world()
    viewer = await _viewer(w)
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    schedule = await ReportSchedule.create(
        partner=w.northwind, template=template, frequency="DAILY", hour_utc=6,
        created_by=w.team[FULL].admin, recipients=[w.team[FULL].admin.email],
    )  # fmt: skip
    runs = []
    for _ in range(3):
        request = reports.ReportRequest(template, None, None, None)
        runs.append(
            await reports.create_report(
                w.northwind.id, request, None, None, w.today, schedule_id=schedule.id
            )
        )
    for run in runs[:2]:
        await EmailDelivery.create(
            report=run, schedule=schedule, recipient=w.team[FULL].admin.email,
            status=EmailDeliveryStatus.SENT, attempts=1,
        )  # fmt: skip
    last = await reports.last_reports_of(viewer, [schedule.id])
    assert last == {schedule.id: reports.ReportValue.of(await Report.get(id=runs[-1].id))}
    page = await report_emails.list_deliveries(viewer, schedule.id, first=1, after=None)
    [newest] = page.items
    assert _is_plain(newest) and newest.report.id == runs[1].id  # newest first
    assert (newest.status, newest.attempts, page.total_count) == (EmailDeliveryStatus.SENT, 1, 2)
    following = await report_emails.list_deliveries(
        viewer, schedule.id, first=1, after=page.cursors[-1]
    )
    assert [d.report.id for d in following.items] == [runs[0].id]
    assert not following.has_next_page and following.has_previous_page


# ------------------------------------------------------------------ field paths


async def _refusal(work) -> list[tuple[tuple[str, ...] | None, str]]:
    with pytest.raises(MutationRejected) as refused:
        await work
    return [(e.field, e.code.value) for e in refused.value.errors]


async def test_refusals_name_fields_in_domain_terms_and_clients_read_camel_case(
    db: Settings, client: httpx.AsyncClient, redis_url: str
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    viewer = await _viewer(w)
    token = w.team[FULL].token
    usage = await ReportTemplate.get(partner_id=None, report_type="CALLING_USAGE_DETAIL")
    listing = await ReportTemplate.get(partner_id=None, report_type="CUSTOMER_LIST")
    today, day = w.today, timedelta(days=1)

    # generateReport: the domain says end_date, a client reads endDate.
    assert await _refusal(
        reports.generate_report(viewer, usage.id, today, today - day, None, None, today)
    ) == [(("input", "end_date"), "INVALID")]
    answer = await generate(
        client,
        token,
        templateId=gid("ReportTemplate", usage.id),
        startDate=str(today),
        endDate=str(today - day),
    )
    assert [e["field"] for e in answer["userErrors"]] == [["input", "endDate"]]
    assert await _refusal(reports.generate_report(viewer, None, None, None, None, None, today)) == [
        (("input", "template_id"), "NOT_FOUND")
    ]

    # A customer filter's unknown tag, by its index.
    own = await Tag.create(partner=w.northwind, name="Gold", name_key="gold")
    flt = CustomerFilter(tag_ids=[own.id, 999_999])
    assert await _refusal(
        reports.generate_report(viewer, listing.id, None, None, None, None, today, flt)
    ) == [(("input", "customer_filter", "tag_ids", "1"), "NOT_FOUND")]
    answer = await generate(
        client,
        token,
        templateId=gid("ReportTemplate", listing.id),
        customerFilter={"tagIds": [gid("Tag", own.id), gid("Tag", 999_999)]},
    )
    assert [e["field"] for e in answer["userErrors"]] == [
        ["input", "customerFilter", "tagIds", "1"]
    ]

    # A schedule's timing and a template's columns.
    assert await _refusal(
        report_schedules.create_schedule(
            viewer, usage.id, ReportFrequency.WEEKLY, None, 3, 24, None, None, datetime.now(UTC)
        )
    ) == [
        (("input", "hour_utc"), "INVALID"),
        (("input", "day_of_week"), "INVALID"),
        (("input", "day_of_month"), "INVALID"),
    ]
    assert await _refusal(
        report_templates.create_template(viewer, "Mine", ReportType.DEVICES, ["mac", "nope"])
    ) == [(("input", "column_keys", "1"), "INVALID")]
    answer = await data(
        client,
        token,
        """mutation($input: CreateReportTemplateInput!) { createReportTemplate(input: $input) {
             userErrors { field code } } }""",
        {"input": {"name": "Mine", "reportType": "DEVICES", "columnKeys": ["mac", "nope"]}},
    )
    assert answer["createReportTemplate"]["userErrors"] == [
        {"field": ["input", "columnKeys", "1"], "code": "INVALID"}
    ]
    assert await ReportTemplate.filter(name="Mine").count() == 0


async def test_a_schedules_page_costs_the_same_statements_for_3_and_12_schedules(
    db: Settings, client: httpx.AsyncClient, redis_url: str
) -> None:
    """A page of schedules with their templates, last reports and owners reads each
    relation once for the page (the values come from batch readers)."""
    from tests.test_customer_detail import counting_statements

    await flush_queue(redis_url)
    w = await build_report_world()
    token = w.team[FULL].token
    templates = await ReportTemplate.filter(partner_id=None).order_by("id")
    query = """{ reportSchedules(first: 50) { totalCount edges { cursor node { id frequency
                 recipients template { name columns { key } } lastReport { id status }
                 createdBy { email }
                 emailDeliveries(first: 2) { totalCount pageInfo { hasNextPage endCursor }
                   nodes { recipient status report { id } } } } } } }"""
    deliveries_query = """query($id: ID!, $after: String) { node(id: $id) {
        ... on ReportSchedule { emailDeliveries(first: 2, after: $after) {
          totalCount nodes { recipient } } } } }"""
    await data(client, token, "{ viewer { email } }")  # the token's first use is noted once
    costs = []
    for total in (3, 12):
        while (n := await ReportSchedule.all().count()) < total:
            schedule = await ReportSchedule.create(
                partner=w.northwind, template=templates[n % len(templates)], frequency="DAILY",
                hour_utc=n % 24, created_by=w.team[list(AdminRole)[n % 5]].admin,
            )  # fmt: skip
            if n % 2:
                request = reports.ReportRequest(templates[n % len(templates)], None, None, None)
                report = await reports.create_report(
                    w.northwind.id, request, None, None, w.today, schedule_id=schedule.id
                )
                for k in range(n % 4):  # 0 to 3 deliveries: pages of 2 full or not
                    await EmailDelivery.create(
                        report_id=report.id, schedule=schedule, recipient=f"r{k}@northwind.example",
                        status="SENT",
                    )  # fmt: skip
        with counting_statements() as statements:
            answer = await data(client, token, query)
        page = answer["reportSchedules"]
        assert page["totalCount"] == total and len(page["edges"]) == total
        with_runs = {gid("ReportSchedule", r.schedule_id) for r in await Report.all()}
        assert {e["node"]["id"] for e in page["edges"] if e["node"]["lastReport"]} == with_runs
        assert all(e["node"]["createdBy"]["email"] for e in page["edges"])
        costs.append(len(statements))
        # Each first page of deliveries, read for the page of schedules at once,
        # is the one the schedule's own list gives, newest first, and its cursor
        # continues there.
        for edge in page["edges"]:
            schedule_id = int(decode_global_id(edge["node"]["id"])[1])
            stored = await EmailDelivery.filter(schedule_id=schedule_id).order_by("-id")
            mine = edge["node"]["emailDeliveries"]
            assert mine["totalCount"] == len(stored)
            assert [n["recipient"] for n in mine["nodes"]] == [d.recipient for d in stored[:2]]
            reports_of = [gid("Report", d.report_id) for d in stored[:2]]  # type: ignore[attr-defined]
            assert [n["report"]["id"] for n in mine["nodes"]] == reports_of
            assert mine["pageInfo"]["hasNextPage"] == (len(stored) > 2)
            if mine["pageInfo"]["hasNextPage"]:
                rest = await data(
                    client, token, deliveries_query,
                    {"id": edge["node"]["id"], "after": mine["pageInfo"]["endCursor"]},
                )  # fmt: skip
                nodes = rest["node"]["emailDeliveries"]["nodes"]
                assert [n["recipient"] for n in nodes] == [d.recipient for d in stored[2:4]]
    assert costs[0] == costs[1], costs


async def test_first_pages_of_deliveries_read_together_are_each_roles_own_lists(
    db: Settings, redis_url: str
) -> None:
    """The batch reader of a schedules page answers, for every role, exactly the
    first page `list_deliveries` gives that viewer: the same deliveries of the
    same visible reports (a report asked for by another admin is not an ADMIN's),
    the same total and cursors."""
    await flush_queue(redis_url)
    w = await build_report_world()
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    schedules = []
    for n, asker in enumerate((AdminRole.ADMIN, FULL, None)):
        schedule = await ReportSchedule.create(
            partner=w.northwind, template=template, frequency="DAILY", hour_utc=n,
            created_by=w.team[FULL].admin,
        )  # fmt: skip
        schedules.append(schedule.id)
        for k in range(n + 2):
            request = reports.ReportRequest(template, None, None, None)
            run = await reports.create_report(
                w.northwind.id, request, w.team[asker].admin.id if asker else None, None,
                w.today, schedule_id=schedule.id,
            )  # fmt: skip
            await EmailDelivery.create(
                report_id=run.id, schedule_id=schedule.id, recipient=f"r{k}@northwind.example",
                status="SENT",
            )  # fmt: skip
    for role in AdminRole:
        viewer = await _viewer(w, role)
        together = await report_emails.first_delivery_pages(viewer, schedules, 2)
        for schedule_id in schedules:
            alone = await report_emails.list_deliveries(viewer, schedule_id, first=2, after=None)
            page = together[schedule_id]
            assert page.items == alone.items, (role, schedule_id)
            assert (page.total_count, page.has_next_page) == (
                alone.total_count,
                alone.has_next_page,
            )
            assert list(page.cursors) == list(alone.cursors)
        totals = [together[s].total_count for s in schedules]
        # An ADMIN sees the reports it asked for; a role that sees every customer, all.
        sees_all = viewer.sees_all_customers
        assert totals == (
            [2, 3, 4] if sees_all else [2, 0, 0] if role is AdminRole.ADMIN else [0, 0, 0]
        )
    other = await _viewer(w, FULL, contoso=True)
    assert all(
        p.total_count == 0
        for p in (await report_emails.first_delivery_pages(other, schedules, 2)).values()
    )
