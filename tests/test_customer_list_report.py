"""The customer list as a report (issue 14 item 6): the DEFAULT template of type
CUSTOMER_LIST, generateReport / createReportSchedule with the `customers`
query's filter, in the requester's (or schedule owner's) scope. Each row is
compared with values written by hand from the seeded rows and with what the
`customers` query answers for the same filter; another partner's customers never
appear; bad filters are user errors with nothing stored; the statements a report
costs grow by a fixed number per chunk of customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from app.config import Settings
from app.domain.customer_columns import refresh_customer_columns
from app.domain.ids import encode_global_id as gid
from app.domain.report_generation import run_report
from app.domain.report_schedules import run_due_schedules
from app.domain.reports import ReportRequest, create_report
from app.models.admins import Admin
from app.models.audit import AuditEvent
from app.models.customers import Customer
from app.models.enums import (
    LICENSE_PRODUCT,
    AdminRole,
    LicenseType,
    Region,
    ReportStatus,
    SubscriptionKind,
    SubscriptionStatus,
)
from app.models.organization import PartnerOrganization
from app.models.reports import Report, ReportSchedule, ReportTemplate
from app.models.subscriptions import LicenseLine, Subscription
from app.models.tags import CustomerTag, Tag
from app.queue import JobQueue
from app.storage import open_storage
from tests import factories
from tests.graphql_client import data
from tests.report_helpers import (
    download,
    flush_queue,
    generate,
    parse_csv,
    report_of,
    run_jobs,
    templates_by_type,
)
from tests.test_customer_detail import counting_statements

FULL, ADMIN = AdminRole.FULL_ADMIN, AdminRole.ADMIN
TITLES = [
    "Customer name", "Organization ID", "External ID", "Region", "Statuses", "Products",
    "Tags", "Managed by", "Total licenses", "Assigned licenses", "Available licenses",
    "Overage licenses", "Next end date", "Created", "Last admin activity",
]  # fmt: skip
CUSTOMERS = """query($filter: CustomerFilter) { customers(first: 100, filter: $filter) {
  nodes { name orgId externalId region statuses products tags { name } managedBy
          licenseTotals { total assigned available overage } createdAt lastAdminActivityAt } } }"""
SCHEDULE = """mutation($input: CreateReportScheduleInput!) { createReportSchedule(input: $input) {
  schedule { id } userErrors { field message code } } }"""


class World:
    northwind: PartnerOrganization
    contoso: PartnerOrganization
    team: dict[AdminRole, factories.AdminWithToken]
    contoso_full: factories.AdminWithToken
    customers: dict[str, Customer]
    gold: Tag
    blue: Tag
    contoso_gold: Tag


async def _subscription(
    customer: Customer,
    sub_id: str,
    status: SubscriptionStatus,
    end: object,
    lines: list[tuple[LicenseType, int, int]],
    *,
    auto_renew: bool = False,
    kind: SubscriptionKind = SubscriptionKind.SUBSCRIPTION,
) -> Subscription:
    today = datetime.now(UTC).date()
    sub = await Subscription.create(
        customer=customer,
        subscription_id=sub_id,
        kind=kind,
        status=status,
        start_date=today - timedelta(days=100),
        end_date=end,
        auto_renew=auto_renew,
        added_at=datetime.now(UTC) - timedelta(days=100),
    )
    for license_type, quantity, assigned in lines:
        await LicenseLine.create(
            subscription=sub,
            license_type=license_type,
            product=LICENSE_PRODUCT[license_type],
            quantity=quantity,
            assigned=assigned,
            used=0,
        )
    await refresh_customer_columns([customer.id], today)  # as the app's writers do
    return sub


async def _world() -> World:
    """Northwind: Alpha (US, wholesale, assigned to the ADMIN), bravo (EU, a trial),
    Charlie (US, nothing), Delta (CA, pending setup, assigned to the ADMIN).
    Contoso: one customer with a tag named like Northwind's."""
    w = World()
    now = datetime.now(UTC)
    today = now.date()
    w.northwind = await factories.partner("Northwind Partners", "northwind.example")
    w.contoso = await factories.partner("Contoso Partners", "contoso.example")
    w.team = await factories.team(w.northwind)
    w.contoso_full = await factories.admin(w.contoso, FULL)
    alpha = await factories.customer(w.northwind, "Alpha Dental", Region.US)
    alpha.external_id, alpha.last_admin_activity_at = "WS-1001", now - timedelta(days=2)
    await alpha.save()
    bravo = await factories.customer(w.northwind, "bravo logistics", Region.EU)
    charlie = await factories.customer(w.northwind, 'Charlie "Chips", Inc', Region.US)
    delta = await factories.customer(w.northwind, "Delta Air", Region.CA)
    delta.last_admin_activity_at = now - timedelta(days=45)
    await delta.save()
    foreign = await factories.customer(w.contoso, "Contoso Customer", Region.US)
    w.customers = {"alpha": alpha, "bravo": bravo, "charlie": charlie, "delta": delta}
    for customer in (alpha, delta):
        await factories.assign(w.team[ADMIN].admin, customer)

    L, S = LicenseType, SubscriptionStatus
    await _subscription(alpha, "Sub-A1", S.ACTIVE, today + timedelta(days=10),
                        [(L.MEETINGS, 50, 40), (L.WEBEX_CALLING, 20, 25)])  # fmt: skip
    await _subscription(alpha, "Sub-A0", S.EXPIRED, today - timedelta(days=5),
                        [(L.CONTACT_CENTER, 5, 5)])  # fmt: skip
    trial = await factories.trial(bravo, today - timedelta(days=5), today + timedelta(days=20))
    trial_sub = await Subscription.get(trial_id=trial.id)
    await LicenseLine.create(subscription=trial_sub, license_type=L.MESSAGING,
                             product=LICENSE_PRODUCT[L.MESSAGING], quantity=30, assigned=0)  # fmt: skip
    await refresh_customer_columns([bravo.id], today)
    await _subscription(bravo, "Sub-B1", S.SUSPENDED, today + timedelta(days=100),
                        [(L.CALLING_PROFESSIONAL, 100, 60)], auto_renew=True)  # fmt: skip
    await _subscription(delta, "Sub-D1", S.PENDING_SETUP, today + timedelta(days=300),
                        [(L.CALLING_STANDARD, 10, 0)])  # fmt: skip
    await _subscription(foreign, "Sub-F1", S.ACTIVE, today + timedelta(days=10),
                        [(L.MEETINGS, 9, 9)])  # fmt: skip

    w.gold = await Tag.create(partner=w.northwind, name="Gold", name_key="gold")
    w.blue = await Tag.create(partner=w.northwind, name="Blue, dark", name_key="blue, dark")
    w.contoso_gold = await Tag.create(partner=w.contoso, name="Gold", name_key="gold")
    for customer, tag in ((alpha, w.gold), (alpha, w.blue), (bravo, w.gold),
                          (foreign, w.contoso_gold)):  # fmt: skip
        await CustomerTag.create(customer=customer, tag=tag, tagged_at=now)
    return w


def _expected(w: World) -> dict[str, list[str]]:
    """Each Northwind customer's row, written by hand from the seeded rows (SPEC.md:
    statuses, license arithmetic; next end date: the soonest one ahead of a
    subscription or trial holding licenses)."""
    today = datetime.now(UTC).date()
    c = w.customers

    def base(key: str) -> list[str]:
        customer = c[key]
        return [customer.name, str(customer.org_id), customer.external_id or "",
                Region(customer.region).value]  # fmt: skip

    def moments(key: str) -> list[str]:
        customer = c[key]
        last = customer.last_admin_activity_at
        return [customer.created_at.isoformat(), last.isoformat() if last else ""]

    day = lambda n: (today + timedelta(days=n)).isoformat()  # noqa: E731
    return {
        "alpha": [*base("alpha"), "ACTIVE; EXPIRING_SOON; LICENSE_OVERAGE",
                  "MEETINGS; CALLING; CONTACT_CENTER", "Blue, dark; Gold", "PARTNER_ORGANIZATION",
                  "70", "65", "10", "5", day(10), *moments("alpha")],
        "bravo": [*base("bravo"), "TRIAL; EXPIRING_SOON; NO_RECENT_ACTIVITY; SUSPENDED",
                  "CALLING; MESSAGING", "Gold", "PARTNER_ORGANIZATION",
                  "130", "60", "70", "0", day(20), *moments("bravo")],
        "charlie": [*base("charlie"), "NO_RECENT_ACTIVITY; EXPIRED", "", "",
                    "PARTNER_ORGANIZATION", "0", "0", "0", "0", "", *moments("charlie")],
        "delta": [*base("delta"), "NO_RECENT_ACTIVITY; READY_FOR_ORDER_SETUP", "CALLING", "",
                  "PARTNER_ORGANIZATION", "10", "0", "10", "0", day(300), *moments("delta")],
    }  # fmt: skip


def _query_cells(node: dict) -> list[str]:
    """The report's columns as the `customers` query shows them (all but the next
    end date, which the query orders by but does not show)."""
    totals = node["licenseTotals"]
    return [
        node["name"], node["orgId"], node["externalId"] or "", node["region"],
        "; ".join(node["statuses"]), "; ".join(node["products"]),
        "; ".join(t["name"] for t in node["tags"]), node["managedBy"],
        str(totals["total"]), str(totals["assigned"]), str(totals["available"]),
        str(totals["overage"]), node["createdAt"], node["lastAdminActivityAt"] or "",
    ]  # fmt: skip


def _without_next_end_date(row: list[str]) -> list[str]:
    return row[:12] + row[13:]


async def _csv(client: httpx.AsyncClient, token: str, report_id: str) -> list[list[str]]:
    report = await report_of(client, token, report_id)
    assert report["status"] == "SUCCEEDED", report
    response = await download(client, report["download"]["url"])
    assert response.status_code == 200
    rows = parse_csv(response.content)
    assert report["rowCount"] == len(rows) - 1
    return rows


async def _customers(client: httpx.AsyncClient, token: str, flt: dict | None) -> list[list[str]]:
    answer = await data(client, token, CUSTOMERS, {"filter": flt})
    return [_query_cells(n) for n in answer["customers"]["nodes"]]


async def test_the_customer_list_report_shows_what_the_customers_query_shows(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    w = await _world()
    full, admin = w.team[FULL].token, w.team[ADMIN].token
    template = (await templates_by_type(client, full))["CUSTOMER_LIST"]
    assert template["name"] == "Customer list" and template["kind"] == "DEFAULT"
    assert [c["title"] for c in template["columns"]] == TITLES
    assert not template["supportsDateRange"]

    gold = gid("Tag", w.gold.id)
    filters = {
        "all": None,
        "gold_expiring": {"tagIds": [gold], "statuses": ["EXPIRING_SOON"]},
        "search": {"search": "DELTA"},
        "calling_us": {"products": ["CALLING"], "regions": ["US", "CA"]},
    }
    asked = {}
    for name, flt in filters.items():
        extra = {"customerFilter": flt} if flt is not None else {}
        answer = await generate(client, full, templateId=template["id"], **extra)
        assert answer["userErrors"] == [], answer
        asked[name] = answer["report"]["id"]
    answer = await generate(client, full, templateId=template["id"], region="US")
    asked["region_us"] = answer["report"]["id"]
    answer = await generate(client, admin, templateId=template["id"])
    asked["admin"] = answer["report"]["id"]
    answer = await generate(client, w.contoso_full.token, templateId=template["id"],
                            customerFilter={"tagIds": [gid("Tag", w.contoso_gold.id)]})  # fmt: skip
    assert answer["userErrors"] == []
    asked["contoso"] = answer["report"]["id"]
    await run_jobs(redis_url, http_settings)

    want = _expected(w)
    names = {
        "all": ["alpha", "bravo", "charlie", "delta"],
        "gold_expiring": ["alpha", "bravo"],
        "search": ["delta"],
        "calling_us": ["alpha", "delta"],
    }
    for name, keys in names.items():
        rows = await _csv(client, full, asked[name])
        assert rows[0] == TITLES
        assert rows[1:] == [want[k] for k in keys], name
        # ... and what the `customers` query answers for the same filter, row by row.
        shown = await _customers(client, full, filters[name])
        assert [_without_next_end_date(r) for r in rows[1:]] == shown, name
    rows = await _csv(client, full, asked["region_us"])
    assert rows[1:] == [want["alpha"], want["charlie"]]

    # An ADMIN's report holds its assigned customers only, as its customers query does.
    rows = await _csv(client, admin, asked["admin"])
    assert [r[0] for r in rows[1:]] == ["Alpha Dental", "Delta Air"]
    assert [_without_next_end_date(r) for r in rows[1:]] == await _customers(client, admin, None)
    by_name = {r[0]: r for r in rows[1:]}
    for key in ("alpha", "delta"):
        assert (
            _without_next_end_date(by_name[w.customers[key].name])[:7]
            == (_without_next_end_date(want[key])[:7])
        )

    # Contoso's report: its one customer, with its own tag of the same name; nothing of
    # Northwind's, and no Northwind report shows Contoso's customer.
    rows = await _csv(client, w.contoso_full.token, asked["contoso"])
    assert [r[0] for r in rows[1:]] == ["Contoso Customer"]
    assert rows[1][6] == "Gold"
    for name in ("all", "gold_expiring", "calling_us", "region_us"):
        rows = await _csv(client, full, asked[name])
        assert not any("Contoso" in cell for row in rows for cell in row)
    audit = await AuditEvent.filter(action="report.generate").count()
    assert audit == len(asked)


async def test_bad_customer_filters_are_user_errors_and_store_nothing(
    db: Settings, client: httpx.AsyncClient, redis_url: str
) -> None:
    await flush_queue(redis_url)
    w = await _world()
    full = w.team[FULL].token
    templates = await templates_by_type(client, full)
    customer_list, devices = templates["CUSTOMER_LIST"]["id"], templates["DEVICES"]["id"]
    before = (await Report.all().count(), await ReportSchedule.all().count(),
              await AuditEvent.all().count())  # fmt: skip
    cases = [
        (devices, {"regions": ["US"]}, ["input", "customerFilter"], "INVALID"),
        (customer_list, {"search": "x" * 201}, ["input", "customerFilter", "search"], "INVALID"),
        (customer_list, {"email": "not-an-email"}, ["input", "customerFilter", "email"], "INVALID"),
        (customer_list, {"tagIds": [gid("Tag", w.gold.id), gid("Tag", w.contoso_gold.id)]},
         ["input", "customerFilter", "tagIds", "1"], "NOT_FOUND"),
        (customer_list, {"tagIds": ["not-an-id"]}, ["input", "customerFilter", "tagIds", "0"],
         "NOT_FOUND"),
    ]  # fmt: skip
    for template_id, flt, field, code in cases:
        answer = await generate(client, full, templateId=template_id, customerFilter=flt)
        assert answer["report"] is None
        assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [(field, code)], flt
        scheduled = await data(
            client,
            full,
            SCHEDULE,
            {"input": {"templateId": template_id, "frequency": "DAILY", "hourUtc": 6,
                       "customerFilter": flt}},
        )  # fmt: skip
        refused = scheduled["createReportSchedule"]
        assert refused["schedule"] is None
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(field, code)], flt
    after = (await Report.all().count(), await ReportSchedule.all().count(),
             await AuditEvent.all().count())  # fmt: skip
    assert after == before


async def test_a_schedule_carries_its_filter_and_runs_in_its_owners_scope(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    w = await _world()
    full = w.team[FULL]
    template = (await templates_by_type(client, full.token))["CUSTOMER_LIST"]
    flt = {"statuses": ["NO_RECENT_ACTIVITY"]}
    answer = await data(
        client,
        full.token,
        SCHEDULE,
        {"input": {"templateId": template["id"], "frequency": "DAILY", "hourUtc": 6,
                   "customerFilter": flt}},
    )  # fmt: skip
    assert answer["createReportSchedule"]["userErrors"] == []
    schedule = await ReportSchedule.get()
    assert schedule.customer_filter == {"statuses": ["NO_RECENT_ACTIVITY"]}
    want = _expected(w)

    async def run_once() -> list[list[str]]:
        queue = JobQueue(redis_url)
        try:
            due = (await ReportSchedule.get(id=schedule.id)).next_run_at
            [report] = await run_due_schedules(queue, due)
        finally:
            await queue.close()
        await run_jobs(redis_url, http_settings)
        return await _csv(client, full.token, gid("Report", report.id))

    rows = await run_once()
    assert rows[1:] == [want["bravo"], want["charlie"], want["delta"]]
    # The owner is now an ADMIN assigned Alpha and Delta: the next run lists what that
    # admin's customers query lists for the filter.
    for key in ("alpha", "delta"):
        await factories.assign(full.admin, w.customers[key])
    await Admin.filter(id=full.admin.id).update(role=ADMIN)
    rows = await run_once()
    assert [r[0] for r in rows[1:]] == ["Delta Air"]
    assert [_without_next_end_date(r) for r in rows[1:]] == await _customers(
        client, full.token, flt
    )


async def test_the_statements_of_a_customer_list_grow_by_a_fixed_number_per_chunk(
    db: Settings,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = (await factories.admin(org, FULL)).admin
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    template = await ReportTemplate.get(partner_id=None, report_type="CUSTOMER_LIST")
    storage = open_storage(db)
    today = datetime.now(UTC).date()
    costs, counts = [], []
    for _ in range(3):
        for _ in range(100):
            customer = await factories.customer(org)
            await CustomerTag.create(customer=customer, tag=gold, tagged_at=datetime.now(UTC))
            await _subscription(customer, f"Sub-{customer.id}", SubscriptionStatus.ACTIVE,
                                today + timedelta(days=40), [(LicenseType.MEETINGS, 5, 1)])  # fmt: skip
        report = await create_report(org.id, ReportRequest(template, None, None, None), full.id,
                                     None, today)  # fmt: skip
        with counting_statements() as statements:
            outcome = await run_report(report.id, storage, chunk_rows=100)
        assert outcome.report.status == ReportStatus.SUCCEEDED, outcome.report.error
        counts.append(outcome.report.row_count)
        costs.append(len(statements))
    assert counts == [100, 200, 300]
    # 1, 2 and 3 chunks: each chunk of customers adds the same few statements.
    per_chunk = costs[1] - costs[0]
    assert costs[2] - costs[1] == per_chunk <= 8, costs
