"""The partner's own organization: "Start my organization" (`organization.launchUrl`)
and its plan overview (`organization.subscriptions`, the subscriptions of the
partner itself with their license lines). The partner's own subscriptions are
never a customer's: no customer list, count, status, KPI, analytics row or report
row changes when they are added."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from app.config import Settings
from app.models.enums import (
    LICENSE_PRODUCT,
    AdminRole,
    LicenseType,
    SubscriptionKind,
    SubscriptionStatus,
)
from app.models.organization import PartnerLicenseLine, PartnerOrganization, PartnerSubscription
from tests import factories
from tests.graphql_client import app_client, data
from tests.report_helpers import download, flush_queue, generate, parse_csv, report_of, run_jobs
from tests.report_helpers import template_ids as default_template_ids
from tests.test_subscription_analytics import TREE
from tests.world import build_world

PLAN = """{ organization { orgId launchUrl subscriptions {
  subscriptionId kind status startDate endDate autoRenew addedAt products
  licenses { licenseType product quantity assigned used available overage }
  totals { total assigned used available overage } } } }"""

Line = tuple[LicenseType, int, int, int]  # type, quantity, assigned, used


async def own_subscription(
    org: PartnerOrganization,
    subscription_id: str,
    lines: list[Line],
    *,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    start: date = date(2025, 1, 1),
    end: date | None = date(2027, 1, 1),
    auto_renew: bool = True,
) -> PartnerSubscription:
    sub = await PartnerSubscription.create(
        partner=org,
        subscription_id=subscription_id,
        kind=SubscriptionKind.SUBSCRIPTION,
        status=status,
        start_date=start,
        end_date=end,
        auto_renew=auto_renew,
        added_at=datetime.combine(start, datetime.min.time(), UTC),
    )
    for license_type, quantity, assigned, used in lines:
        await PartnerLicenseLine.create(
            subscription=sub,
            license_type=license_type,
            product=LICENSE_PRODUCT[license_type],
            quantity=quantity,
            assigned=assigned,
            used=used,
        )
    return sub


# ------------------------------------------------------------------ launchUrl ----


async def test_launch_url_opens_the_partners_own_org_from_the_customers_setting(
    http_settings: Settings, redis_url: str
) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example", setup_completed=False)
    await factories.customer(northwind, "Alpha")
    north = await factories.admin(northwind, AdminRole.READ_ONLY_ADMIN)
    pending = await factories.admin(contoso, AdminRole.SALES_ADMIN)
    query = "{ organization { orgId launchUrl } customers { nodes { orgId launchUrl } } }"
    for base, expected_base in (
        ("https://admin.webex.com", "https://admin.webex.com"),
        ("https://hub.example.test/", "https://hub.example.test"),  # a trailing slash
    ):
        settings = http_settings.model_copy(update={"control_hub_url": base})
        async with app_client(settings, redis_url) as http:
            answer = await data(http, north.token, query)
            org = answer["organization"]
            assert org["orgId"] == str(northwind.org_id)
            assert org["launchUrl"] == f"{expected_base}/partner/launch?orgId={northwind.org_id}"
            # Built like a customer's launch link, with the partner's own org id.
            [customer] = answer["customers"]["nodes"]
            assert (
                customer["launchUrl"] == f"{expected_base}/partner/launch?orgId={customer['orgId']}"
            )
            # Every role, also while the setup is pending, gets its own org's link.
            other = (await data(http, pending.token, query))["organization"]
            assert other["launchUrl"] == f"{expected_base}/partner/launch?orgId={contoso.org_id}"


# -------------------------------------------------------------- subscriptions ----


async def test_every_admin_reads_its_own_partners_plan_and_no_other(
    client: httpx.AsyncClient, db
) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example", setup_completed=False)
    north_team = await factories.team(northwind)
    contoso_team = await factories.team(contoso)
    await own_subscription(
        northwind,
        "Sub-NW-2",
        [(LicenseType.WEBEX_SUITE, 10, 4, 2)],
        status=SubscriptionStatus.PENDING_SETUP,
        start=date(2026, 3, 1),
        end=None,
        auto_renew=False,
    )
    await own_subscription(
        northwind,
        "Sub-NW-1",
        [
            (LicenseType.MEETINGS, 50, 38, 30),
            (LicenseType.CALLING_PROFESSIONAL, 40, 45, 27),  # 5 over
            (LicenseType.MESSAGING, 50, 41, 35),
        ],
    )
    await own_subscription(contoso, "Sub-CO-1", [(LicenseType.MEETINGS, 5, 1, 1)])
    # A customer subscription of Northwind is not part of its own plan.
    customer = await factories.customer(northwind)
    today = datetime.now(UTC).date()
    await factories.trial(customer, today, today + timedelta(days=10))

    expected_first = {
        "subscriptionId": "Sub-NW-1",
        "kind": "SUBSCRIPTION",
        "status": "ACTIVE",
        "startDate": "2025-01-01",
        "endDate": "2027-01-01",
        "autoRenew": True,
        "addedAt": "2025-01-01T00:00:00+00:00",
        "products": ["CALLING", "MEETINGS", "MESSAGING"],
        "licenses": [
            {"licenseType": "CALLING_PROFESSIONAL", "product": "CALLING", "quantity": 40,
             "assigned": 45, "used": 27, "available": 0, "overage": 5},
            {"licenseType": "MEETINGS", "product": "MEETINGS", "quantity": 50, "assigned": 38,
             "used": 30, "available": 12, "overage": 0},
            {"licenseType": "MESSAGING", "product": "MESSAGING", "quantity": 50, "assigned": 41,
             "used": 35, "available": 9, "overage": 0},
        ],
        "totals": {"total": 140, "assigned": 124, "used": 92, "available": 21, "overage": 5},
    }  # fmt: skip
    for role, member in north_team.items():
        plan = (await data(client, member.token, PLAN))["organization"]["subscriptions"]
        assert [s["subscriptionId"] for s in plan] == ["Sub-NW-1", "Sub-NW-2"], role
        assert plan[0] == expected_first, role
        assert plan[1]["status"] == "PENDING_SETUP" and plan[1]["endDate"] is None
        assert plan[1]["products"] == ["MEETINGS"]
    # Contoso's admins (setup still pending: the wizard shows the plan) see Contoso's only.
    for role, member in contoso_team.items():
        plan = (await data(client, member.token, PLAN))["organization"]["subscriptions"]
        assert [s["subscriptionId"] for s in plan] == ["Sub-CO-1"], role
    # Through node(id:) as well: only the viewer's own organization answers.
    node = """query($id: ID!) { node(id: $id) { ... on PartnerOrganization {
      subscriptions { subscriptionId } } } }"""
    from app.domain.ids import encode_global_id

    full = north_team[AdminRole.FULL_ADMIN].token
    own = await data(
        client, full, node, {"id": encode_global_id("PartnerOrganization", northwind.id)}
    )
    assert [s["subscriptionId"] for s in own["node"]["subscriptions"]] == ["Sub-NW-1", "Sub-NW-2"]
    other = await data(
        client, full, node, {"id": encode_global_id("PartnerOrganization", contoso.id)}
    )
    assert other["node"] is None


async def test_a_partner_without_own_subscriptions_has_an_empty_plan(
    client: httpx.AsyncClient, db
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    member = await factories.admin(org, AdminRole.ADMIN)
    answer = await data(
        client, member.token, "{ organization { subscriptions { subscriptionId } } }"
    )
    assert answer == {"organization": {"subscriptions": []}}


# ------------------------------------------ nothing of a customer changes ----

CUSTOMERS = """query($f: CustomerFilter) { customers(first: 100, filter: $f) { totalCount nodes {
  name statuses products managedBy licenseTotals { total assigned used available overage }
  subscriptions(first: 1) { totalCount } } } }"""
STATUS_FILTERS = [
    None,
    *[{"statuses": [s]} for s in (
        "TRIAL", "ACTIVE", "EXPIRING_SOON", "LICENSE_OVERAGE", "NO_RECENT_ACTIVITY",
        "READY_FOR_ORDER_SETUP", "SUSPENDED", "EXPIRED",
    )],
    {"subscriptionType": "SUBSCRIPTION"},
    {"subscriptionType": "TRIAL"},
    {"search": "Sub-OWN"},
]  # fmt: skip


async def _everything_customers_show(
    client: httpx.AsyncClient, token: str, templates: dict[str, str], settings: Settings,
    redis_url: str,
) -> dict:  # fmt: skip
    seen: dict = {}
    for flt in STATUS_FILTERS:
        seen[str(flt)] = (await data(client, token, CUSTOMERS, {"f": flt}))["customers"]
    for family in ("CALLING", "MEETINGS"):
        seen[family] = (await data(client, token, TREE, {"p": family}))["subscriptionAnalytics"]
    seen["trials"] = await data(client, token, "{ trials(first: 100) { totalCount } }")
    answer = await generate(client, token, templateId=templates["SUBSCRIPTION_DETAILS"])
    assert answer["userErrors"] == []
    await run_jobs(redis_url, settings)
    report = await report_of(client, token, answer["report"]["id"])
    assert report["status"] == "SUCCEEDED", report
    response = await download(client, report["download"]["url"])
    seen["report"] = parse_csv(response.content)
    return seen


@pytest.mark.parametrize("role", [AdminRole.FULL_ADMIN, AdminRole.ADMIN])
async def test_own_subscriptions_change_no_customer_list_count_kpi_or_report(
    client: httpx.AsyncClient, http_settings: Settings, redis_url: str, role: AdminRole
) -> None:
    await flush_queue(redis_url)
    w = await build_world()
    viewer = w.team[role]
    if role is AdminRole.ADMIN:  # sees a few assigned customers only
        for customer in list(w.customers.values())[::3]:
            await factories.assign(viewer.admin, customer)
    templates = await default_template_ids(client, viewer.token)
    before = await _everything_customers_show(
        client, viewer.token, templates, http_settings, redis_url
    )
    assert before["None"]["totalCount"] > 0 and len(before["report"]) > 1

    today = w.today
    # Own subscriptions that would move every figure if they were a customer's: over
    # the limit, expiring and renewing within days, low assignment, pending setup,
    # suspended, Calling and Meetings lines; for both partners.
    for org, prefix in ((w.northwind, "Sub-OWN-N"), (w.contoso, "Sub-OWN-C")):
        await own_subscription(
            org, f"{prefix}1",
            [(LicenseType.CALLING_PROFESSIONAL, 100, 180, 90), (LicenseType.MEETINGS, 2000, 5, 1)],
            start=today - timedelta(days=200), end=today + timedelta(days=5), auto_renew=False,
        )  # fmt: skip
        await own_subscription(
            org, f"{prefix}2",
            [(LicenseType.WEBEX_CALLING, 400, 3, 1), (LicenseType.WEBEX_SUITE, 60, 1, 0)],
            start=today - timedelta(days=3), end=today + timedelta(days=20),
        )  # fmt: skip
        await own_subscription(
            org, f"{prefix}3", [(LicenseType.CALLING_STANDARD, 10, 30, 5)],
            status=SubscriptionStatus.PENDING_SETUP, start=today - timedelta(days=40),
        )  # fmt: skip
        await own_subscription(
            org, f"{prefix}4", [(LicenseType.MEETINGS, 10, 12, 5)],
            status=SubscriptionStatus.SUSPENDED, start=today - timedelta(days=400),
        )  # fmt: skip

    after = await _everything_customers_show(
        client, viewer.token, templates, http_settings, redis_url
    )
    for key in before:
        if key == "report":
            continue
        assert after[key] == before[key], key
    # The report's rows are the same (its calculation date column is the day of the run).
    assert after["report"] == before["report"]
    # ...and the plan overview does hold them.
    plan = (await data(client, viewer.token, PLAN))["organization"]["subscriptions"]
    assert [s["subscriptionId"] for s in plan] == [
        "Sub-OWN-N4", "Sub-OWN-N1", "Sub-OWN-N3", "Sub-OWN-N2",
    ]  # fmt: skip
