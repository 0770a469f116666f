"""Subscription analytics against hand-picked subscriptions at every boundary.

Expected figures are computed here, in plain Python, from the fixture's own
rows by the SPEC.md formulas; the API computes them in SQL.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from app.models.customers import Customer
from app.models.enums import (
    FAMILY_LICENSE_TYPES,
    LICENSE_PRODUCT,
    AdminRole,
    LicenseType,
    ProductFamily,
    Region,
)
from app.models.subscriptions import LicenseLine, LicenseSnapshot, Subscription
from tests import factories
from tests.graphql_client import data, gql

CP, MT, MSG, WC = (
    LicenseType.CALLING_PROFESSIONAL,
    LicenseType.MEETINGS,
    LicenseType.MESSAGING,
    LicenseType.WEBEX_CALLING,
)
HOLDING = {"ACTIVE", "SUSPENDED", "PENDING_SETUP"}


@dataclass
class Spec:
    """One subscription of the fixture, as the test understands it."""

    customer: str
    lines: list[tuple[LicenseType, int, int]]  # type, quantity, assigned
    kind: str = "SUBSCRIPTION"
    status: str = "ACTIVE"
    end_in: int | None = 400
    auto_renew: bool = False
    added_days_ago: float = 200
    # week offset (0 = this week, 1 = last week) -> per license type (assigned, used7, used90)
    snapshots: dict[int, dict[LicenseType, tuple[int, int, int]]] = field(default_factory=dict)
    partner: str = "northwind"
    code: str = ""


def specs() -> list[Spec]:
    s = [
        # Expiry and renewal windows: [today, today + 90].
        Spec("ends today", [(CP, 10, 8)], end_in=0),
        Spec("ends in 90", [(CP, 20, 10), (MT, 40, 10)], end_in=90,
             snapshots={0: {CP: (12, 6, 9), MT: (10, 4, 7)}, 1: {CP: (9, 5, 8)}}),
        Spec("ends in 91", [(CP, 30, 10)], end_in=91),
        Spec("renews in 30", [(CP, 12, 12), (WC, 8, 2)], end_in=30, auto_renew=True,
             snapshots={1: {CP: (12, 7, 11), WC: (2, 1, 2)}}),
        Spec("renews in 91", [(CP, 14, 14)], end_in=91, auto_renew=True),
        Spec("trial ends in 10", [(CP, 25, 5)], kind="TRIAL", end_in=10, added_days_ago=20),
        Spec("messaging only", [(MSG, 100, 10)], end_in=10),
        # Overage: exactly one over, on an ACTIVE subscription; and one on an EXPIRED one.
        Spec("overage of one", [(CP, 40, 41), (MT, 5, 1)], end_in=200, auto_renew=True),
        Spec("overage but expired", [(CP, 10, 20)], status="EXPIRED", end_in=-5),
        # Low assignment, band 51-250: the Contoso peers below put the median at 0.8.
        Spec("ratio just under half", [(CP, 100, 39)], added_days_ago=40),
        Spec("ratio just over half", [(CP, 100, 41)], added_days_ago=40),
        Spec("low but added 29 days ago", [(CP, 100, 39)], added_days_ago=29),
        Spec("low and added 30 days ago", [(CP, 100, 39)], added_days_ago=30),
        # Recently added, with this week's and last week's snapshots.
        Spec("added 10 days ago", [(MT, 60, 30)], added_days_ago=10, end_in=365,
             snapshots={0: {MT: (30, 20, 25)}, 1: {MT: (25, 15, 18)}}),
        Spec("suspended meetings", [(MT, 300, 90)], status="SUSPENDED", added_days_ago=100),
        # Latest snapshots: none since last week (the newest earlier week counts, every line
        # of it and no line of an older week), and one of next week (not taken yet: ignored).
        Spec("snapshots stopped 3 weeks ago", [(CP, 30, 20), (WC, 15, 10)], end_in=60,
             snapshots={3: {CP: (18, 9, 12), WC: (9, 4, 6)}, 5: {CP: (15, 7, 9)}}),
        Spec("newest week has one line", [(CP, 30, 20), (WC, 10, 5)], end_in=45,
             snapshots={2: {CP: (18, 9, 12)}, 4: {CP: (15, 7, 9), WC: (5, 3, 4)}}),
        Spec("snapshot of next week", [(CP, 40, 20)], end_in=30,
             snapshots={-1: {CP: (21, 19, 20)}, 0: {CP: (20, 10, 15)}}),
        # A subscription without license lines still ends: its customer is about to expire.
        Spec("added 10 days ago", [], end_in=20),
    ]  # fmt: skip
    s += [
        Spec(f"peer {n}", [(CP, 100, 80)], partner="contoso", added_days_ago=300) for n in range(9)
    ]
    return s


@dataclass
class Fixture:
    today: date
    now: datetime
    specs: list[Spec]
    customers: dict[str, Customer]
    team: dict[AdminRole, factories.AdminWithToken]


async def build() -> Fixture:
    now = datetime.now(UTC)
    today = now.date()
    this_week = today - timedelta(days=today.weekday())
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    partners = {"northwind": northwind, "contoso": contoso}
    team = await factories.team(northwind)
    customers: dict[str, Customer] = {}
    all_specs = specs()
    for n, spec in enumerate(all_specs):
        customer = customers.get(spec.customer)
        if customer is None:
            customer = await Customer.create(
                partner=partners[spec.partner], name=spec.customer, org_id=uuid.uuid4(),
                region=(Region.EU if spec.customer == "suspended meetings" else Region.US),
                created_at=now - timedelta(days=400),
            )  # fmt: skip
            customers[spec.customer] = customer
        spec.code = f"Sub-{n:04d}"
        sub = await Subscription.create(
            customer=customer, subscription_id=spec.code, kind=spec.kind, status=spec.status,
            start_date=today - timedelta(days=int(spec.added_days_ago)),
            end_date=today + timedelta(days=spec.end_in) if spec.end_in is not None else None,
            auto_renew=spec.auto_renew, added_at=now - timedelta(days=spec.added_days_ago),
        )  # fmt: skip
        for license_type, quantity, assigned in spec.lines:
            await LicenseLine.create(subscription=sub, license_type=license_type,
                                     product=LICENSE_PRODUCT[license_type], quantity=quantity,
                                     assigned=assigned, used=0)  # fmt: skip
        for weeks_ago, per_type in spec.snapshots.items():
            for license_type, (assigned, used7, used90) in per_type.items():
                quantity = next(q for t, q, _ in spec.lines if t is license_type)
                await LicenseSnapshot.create(subscription=sub, license_type=license_type,
                                             week_start=this_week - timedelta(weeks=weeks_ago),
                                             quantity=quantity, assigned=assigned, used_7d=used7,
                                             used_90d=used90)  # fmt: skip
    # The ADMIN sees three customers only.
    for name in ("ends in 90", "overage of one", "ratio just under half"):
        await factories.assign(team[AdminRole.ADMIN].admin, customers[name])
    return Fixture(today, now, all_specs, customers, team)


# --------------------------------------------- the expected figures, by SPEC ----


def family_figures(spec: Spec, family: ProductFamily) -> dict | None:
    types = set(FAMILY_LICENSE_TYPES[family])
    lines = [(t, q, a) for t, q, a in spec.lines if t in types]
    if not lines:
        return None
    # 0 = this week, newest first; a negative offset is a week to come: not taken yet.
    taken = [weeks_ago for weeks_ago in spec.snapshots if weeks_ago >= 0]
    latest = min(taken) if taken else None
    snap = (
        {t: v for t, v in spec.snapshots.get(latest, {}).items() if t in types}
        if latest is not None
        else {}
    )
    both = 0 in spec.snapshots and 1 in spec.snapshots

    def week(offset: int, index: int) -> int:
        return sum(v[index] for t, v in spec.snapshots.get(offset, {}).items() if t in types)

    total = sum(q for _, q, _ in lines)
    return {
        "total": total,
        "assigned": sum(a for _, _, a in lines),
        "available": sum(max(q - a, 0) for _, q, a in lines),
        "overage": sum(max(a - q, 0) for _, q, a in lines),
        "used": sum(v[1] for v in snap.values()),
        "used90": sum(v[2] for v in snap.values()),
        "assign_change": week(0, 0) - week(1, 0) if both else 0,
        "usage_change": week(0, 1) - week(1, 1) if both else 0,
        "ratio": sum(a for _, _, a in lines) / total if total else 0.0,
        "band": 1 if total <= 50 else 2 if total <= 250 else 3 if total <= 1000 else 4,
    }


def medians(fx: Fixture, family: ProductFamily) -> dict[int, float]:
    by_band: dict[int, list[float]] = {}
    for spec in fx.specs:  # every partner's holding subscriptions are peers
        f = family_figures(spec, family)
        if f and spec.status in HOLDING and f["total"] > 0:
            by_band.setdefault(f["band"], []).append(f["ratio"])
    return {band: statistics.median(ratios) for band, ratios in by_band.items()}


def in_section(
    fx: Fixture, spec: Spec, family: ProductFamily, section: str, visible: set[str]
) -> bool:
    f = family_figures(spec, family)
    if f is None or spec.customer not in visible:
        return False
    end = fx.today + timedelta(days=spec.end_in) if spec.end_in is not None else None
    in_window = end is not None and fx.today <= end <= fx.today + timedelta(days=90)
    if section == "recently_added":
        return spec.added_days_ago <= 90
    if section == "expiring":
        return (
            spec.status == "ACTIVE" and (spec.kind == "TRIAL" or not spec.auto_renew) and in_window
        )
    if section == "renewing":
        return (
            spec.kind == "SUBSCRIPTION"
            and spec.status == "ACTIVE"
            and spec.auto_renew
            and in_window
        )
    if section == "over_limit":
        return spec.status in HOLDING and f["overage"] > 0
    median = medians(fx, family).get(f["band"])
    return (spec.status in HOLDING and f["total"] > 0 and spec.added_days_ago >= 30
            and median is not None and f["ratio"] < 0.5 * median)  # fmt: skip


def pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def visible_to(fx: Fixture, role: AdminRole) -> set[str]:
    northwind = {s.customer for s in fx.specs if s.partner == "northwind"}
    if role is AdminRole.ADMIN:
        return {"ends in 90", "overage of one", "ratio just under half"}
    return northwind


def expected_kpis(fx: Fixture, visible: set[str]) -> dict:
    population = {s.customer for s in fx.specs if s.customer in visible
                  and any(LICENSE_PRODUCT[t].value in ("CALLING", "MEETINGS") for t, _, _ in s.lines)}  # fmt: skip
    in_pop = [s for s in fx.specs if s.customer in population]

    def window(s: Spec) -> bool:
        return s.end_in is not None and 0 <= s.end_in <= 90

    return {
        "totalCustomers": len(population),
        "aboutToExpire": len({s.customer for s in in_pop if s.status == "ACTIVE" and window(s)
                              and (s.kind == "TRIAL" or not s.auto_renew)}),
        "aboutToRenew": len({s.customer for s in in_pop if s.kind == "SUBSCRIPTION"
                             and s.status == "ACTIVE" and s.auto_renew and window(s)}),
        "lowLicenseAssignment": len({s.customer for s in in_pop for fam in ProductFamily
                                     if in_section(fx, s, fam, "low_assignment", visible)}),
        "overLicenseLimit": len({s.customer for s in in_pop if s.status in HOLDING
                                 and any(a > q for _, q, a in s.lines)}),
    }  # fmt: skip


# ----------------------------------------------------------------- tests ----

TREE = """query($p: ProductFamily!, $r: Region) { subscriptionAnalytics(product: $p, region: $r) {
  product kpis { totalCustomers aboutToExpire aboutToRenew lowLicenseAssignment overLicenseLimit }
  recentlyAdded { kpis { newCustomers totalLicenses } rows(first: 100) { totalCount nodes {
    customer { name } subscriptionId daysSinceAdded totalLicenses used assigned available weeklyAssignmentChange weeklyUsageChange } } }
  expiringSoon { kpis { customers licenseAssignmentPct licenseUsagePct } rows(first: 100) { totalCount nodes {
    customer { name } subscriptionId daysRemaining totalLicenses used assigned available usageLast3Months } } }
  renewingSoon { kpis { customers licenseAssignmentPct licenseUsagePct } rows(first: 100) { totalCount nodes {
    customer { name } subscriptionId daysRemaining totalLicenses used assigned available usageLast3Months } } }
  lowAssignment { kpis { customers licenseAssignmentPct usageOnAssignmentPct totalUnassignedLicenses } rows(first: 100) { totalCount nodes {
    customer { name } subscriptionId monthsSinceAdded assigned assignedPct totalLicenses used available weeklyAssignmentChange } } }
  overLicenseLimit { kpis { customers totalOverageLicenses averageOverage } rows(first: 100) { totalCount nodes {
    customer { name } subscriptionId monthsRemaining autoRenew totalLicenses assigned assignedPct used usedPct overageLicenses } } }
} }"""


@pytest.fixture
async def fx(db) -> Fixture:
    return await build()


def months(start: date, end: date) -> int:
    m = (end.year - start.year) * 12 + end.month - start.month
    return m - 1 if end.day < start.day else m


def section_expectation(
    fx: Fixture, family: ProductFamily, section: str, visible: set[str]
) -> tuple[dict, list[dict]]:
    chosen = [s for s in fx.specs if in_section(fx, s, family, section, visible)]
    figs = {s.code: family_figures(s, family) for s in chosen}
    total = sum(f["total"] for f in figs.values())
    assigned = sum(f["assigned"] for f in figs.values())
    used = sum(f["used"] for f in figs.values())
    customers = len({s.customer for s in chosen})
    end = {
        s.code: fx.today + timedelta(days=s.end_in) if s.end_in is not None else None
        for s in chosen
    }
    added = {s.code: (fx.now - timedelta(days=s.added_days_ago)) for s in chosen}
    if section == "recently_added":
        kpis = {"newCustomers": customers, "totalLicenses": total}
        # newest first; equal times: the later-created subscription first
        order = sorted(chosen, key=lambda s: (added[s.code], s.code), reverse=True)
        rows = [{"customer": {"name": s.customer}, "subscriptionId": s.code,
                 "daysSinceAdded": (fx.today - added[s.code].date()).days,
                 "totalLicenses": figs[s.code]["total"], "used": figs[s.code]["used"],
                 "assigned": figs[s.code]["assigned"], "available": figs[s.code]["available"],
                 "weeklyAssignmentChange": figs[s.code]["assign_change"],
                 "weeklyUsageChange": figs[s.code]["usage_change"]} for s in order]  # fmt: skip
    elif section in ("expiring", "renewing"):
        kpis = {
            "customers": customers,
            "licenseAssignmentPct": pct(assigned, total),
            "licenseUsagePct": pct(used, total),
        }
        order = sorted(chosen, key=lambda s: (end[s.code], s.code))
        rows = [{"customer": {"name": s.customer}, "subscriptionId": s.code,
                 "daysRemaining": (end[s.code] - fx.today).days, "totalLicenses": figs[s.code]["total"],
                 "used": figs[s.code]["used"], "assigned": figs[s.code]["assigned"],
                 "available": figs[s.code]["available"], "usageLast3Months": figs[s.code]["used90"]}
                for s in order]  # fmt: skip
    elif section == "low_assignment":
        kpis = {"customers": customers, "licenseAssignmentPct": pct(assigned, total),
                "usageOnAssignmentPct": pct(used, total),
                "totalUnassignedLicenses": sum(f["available"] for f in figs.values())}  # fmt: skip
        order = sorted(chosen, key=lambda s: (figs[s.code]["ratio"], s.code))
        rows = [{"customer": {"name": s.customer}, "subscriptionId": s.code,
                 "monthsSinceAdded": months(added[s.code].date(), fx.today),
                 "assigned": figs[s.code]["assigned"], "assignedPct": pct(figs[s.code]["assigned"], figs[s.code]["total"]),
                 "totalLicenses": figs[s.code]["total"], "used": figs[s.code]["used"],
                 "available": figs[s.code]["available"],
                 "weeklyAssignmentChange": figs[s.code]["assign_change"]} for s in order]  # fmt: skip
    else:
        overage = sum(f["overage"] for f in figs.values())
        kpis = {"customers": customers, "totalOverageLicenses": overage,
                "averageOverage": round(overage / customers, 1) if customers else 0.0}  # fmt: skip
        order = sorted(chosen, key=lambda s: (-figs[s.code]["overage"], s.code))
        rows = [{"customer": {"name": s.customer}, "subscriptionId": s.code,
                 "monthsRemaining": months(fx.today, end[s.code]) if end[s.code] else None,
                 "autoRenew": s.auto_renew, "totalLicenses": figs[s.code]["total"],
                 "assigned": figs[s.code]["assigned"], "assignedPct": pct(figs[s.code]["assigned"], figs[s.code]["total"]),
                 "used": figs[s.code]["used"], "usedPct": pct(figs[s.code]["used"], figs[s.code]["total"]),
                 "overageLicenses": figs[s.code]["overage"]}
                for s in order]  # fmt: skip
    return kpis, rows


SECTIONS = {"recently_added": "recentlyAdded", "expiring": "expiringSoon", "renewing": "renewingSoon",
            "low_assignment": "lowAssignment", "over_limit": "overLicenseLimit"}  # fmt: skip


@pytest.mark.parametrize("role", [AdminRole.FULL_ADMIN, AdminRole.ADMIN])
@pytest.mark.parametrize("family", list(ProductFamily))
async def test_every_kpi_and_section_matches_the_spec_formulas(
    client: httpx.AsyncClient, fx: Fixture, family: ProductFamily, role: AdminRole
) -> None:
    visible = visible_to(fx, role)
    answer = (await data(client, fx.team[role].token, TREE, {"p": family.value}))[
        "subscriptionAnalytics"
    ]
    assert answer["product"] == family.value
    assert answer["kpis"] == expected_kpis(fx, visible)
    for section, name in SECTIONS.items():
        kpis, rows = section_expectation(fx, family, section, visible)
        assert answer[name]["kpis"] == kpis, (family, section)
        assert answer[name]["rows"]["totalCount"] == len(rows), (family, section)
        assert answer[name]["rows"]["nodes"] == rows, (family, section)


KPIS_ONLY = """query($p: ProductFamily!) { subscriptionAnalytics(product: $p) {
  kpis { totalCustomers aboutToExpire aboutToRenew lowLicenseAssignment overLicenseLimit } } }"""
KPIS_AND_LOW = """query($p: ProductFamily!) { subscriptionAnalytics(product: $p) {
  kpis { lowLicenseAssignment } lowAssignment { kpis { customers } } } }"""


@pytest.mark.parametrize("role", [AdminRole.FULL_ADMIN, AdminRole.ADMIN])
@pytest.mark.parametrize("family", list(ProductFamily))
async def test_the_kpis_asked_alone_or_beside_one_section_match_the_spec(
    client: httpx.AsyncClient, fx: Fixture, family: ProductFamily, role: AdminRole
) -> None:
    """The tree plans its passes from the selection: the top KPIs alone read each
    family's low-assignment customers without the sections' full pass, and must
    count the same customers as the formulas."""
    expected = expected_kpis(fx, visible_to(fx, role))
    assert expected["lowLicenseAssignment"] > 0  # the fixture gives it something to count
    token = fx.team[role].token
    alone = (await data(client, token, KPIS_ONLY, {"p": family.value}))["subscriptionAnalytics"]
    assert alone["kpis"] == expected
    beside = (await data(client, token, KPIS_AND_LOW, {"p": family.value}))["subscriptionAnalytics"]
    assert beside["kpis"]["lowLicenseAssignment"] == expected["lowLicenseAssignment"]
    section_kpis, _ = section_expectation(fx, family, "low_assignment", visible_to(fx, role))
    assert beside["lowAssignment"]["kpis"]["customers"] == section_kpis["customers"]


async def test_the_fixture_sits_on_every_boundary(client: httpx.AsyncClient, fx: Fixture) -> None:
    """The cases the issue asks for land on the side of each boundary they should."""
    visible = visible_to(fx, AdminRole.FULL_ADMIN)
    calling = ProductFamily.CALLING

    def names(section: str) -> set[str]:
        return {s.customer for s in fx.specs if in_section(fx, s, calling, section, visible)}

    assert {"ends today", "ends in 90", "trial ends in 10"} <= names("expiring")
    assert "ends in 91" not in names("expiring") and "messaging only" not in names("expiring")
    assert "renews in 30" in names("renewing") and "renews in 91" not in names("renewing")
    assert names("over_limit") == {"overage of one"}
    assert medians(fx, calling)[2] == 0.8
    boundary = {
        "ratio just under half",
        "ratio just over half",
        "low but added 29 days ago",
        "low and added 30 days ago",
    }
    assert names("low_assignment") & boundary == {
        "ratio just under half",
        "low and added 30 days ago",
    }
    answer = await data(client, fx.team[AdminRole.FULL_ADMIN].token, TREE, {"p": "CALLING"})
    low = {
        n["customer"]["name"]
        for n in answer["subscriptionAnalytics"]["lowAssignment"]["rows"]["nodes"]
    }
    assert low & boundary == {"ratio just under half", "low and added 30 days ago"}
    over = answer["subscriptionAnalytics"]["overLicenseLimit"]["kpis"]
    assert over == {"customers": 1, "totalOverageLicenses": 1, "averageOverage": 1.0}


async def test_region_restricts_everything_and_an_empty_region_answers_zeros(
    client: httpx.AsyncClient, fx: Fixture
) -> None:
    token = fx.team[AdminRole.FULL_ADMIN].token
    eu_customers = {
        n
        for n, c in fx.customers.items()
        if c.region == Region.EU and c.partner_id == fx.team[AdminRole.FULL_ADMIN].admin.partner_id
    }
    assert eu_customers == {"suspended meetings"}
    for family in ProductFamily:
        eu = (await data(client, token, TREE, {"p": family.value, "r": "EU"}))[
            "subscriptionAnalytics"
        ]
        assert eu["kpis"] == expected_kpis(fx, eu_customers)
        for section, name in SECTIONS.items():
            kpis, rows = section_expectation(fx, family, section, eu_customers)
            assert eu[name]["kpis"] == kpis and eu[name]["rows"]["nodes"] == rows, (family, section)
    empty = (await data(client, token, TREE, {"p": "CALLING", "r": "UAE"}))["subscriptionAnalytics"]
    assert empty["kpis"] == dict.fromkeys(empty["kpis"], 0)
    assert empty["expiringSoon"]["kpis"] == {
        "customers": 0,
        "licenseAssignmentPct": 0.0,
        "licenseUsagePct": 0.0,
    }
    assert empty["overLicenseLimit"]["kpis"] == {
        "customers": 0,
        "totalOverageLicenses": 0,
        "averageOverage": 0.0,
    }
    assert all(empty[name]["rows"]["nodes"] == [] for name in SECTIONS.values())


async def test_trend_sums_weekly_snapshots_oldest_first_with_zero_weeks(
    client: httpx.AsyncClient, fx: Fixture
) -> None:
    query = "query($w: Int) { subscriptionAnalytics(product: MEETINGS) { licenseDistributionTrend(weeks: $w) { weekStart total assigned used } } }"
    this_week = fx.today - timedelta(days=fx.today.weekday())
    expected = {}
    for weeks_ago in range(3):
        rows = [(s, t, v) for s in fx.specs if s.partner == "northwind"
                for t, v in s.snapshots.get(weeks_ago, {}).items() if t in FAMILY_LICENSE_TYPES[ProductFamily.MEETINGS]]  # fmt: skip
        expected[this_week - timedelta(weeks=weeks_ago)] = {
            "total": sum(next(q for lt, q, _ in s.lines if lt is t) for s, t, _ in rows),
            "assigned": sum(v[0] for _, _, v in rows), "used": sum(v[1] for _, _, v in rows)}  # fmt: skip
    answer = await data(client, fx.team[AdminRole.FULL_ADMIN].token, query, {"w": 3})
    points = answer["subscriptionAnalytics"]["licenseDistributionTrend"]
    assert [p["weekStart"] for p in points] == [
        (this_week - timedelta(weeks=n)).isoformat() for n in (2, 1, 0)
    ]
    for p in points:
        assert {k: p[k] for k in ("total", "assigned", "used")} == expected[
            date.fromisoformat(p["weekStart"])
        ]
    assert points[0] == {"weekStart": points[0]["weekStart"], "total": 0, "assigned": 0, "used": 0}
    default = await data(
        client,
        fx.team[AdminRole.FULL_ADMIN].token,
        query.replace("(weeks: $w)", "").replace("query($w: Int) ", ""),
        {},
    )
    assert len(default["subscriptionAnalytics"]["licenseDistributionTrend"]) == 12


@pytest.mark.parametrize("weeks", [0, 53, -1])
async def test_trend_weeks_out_of_range_is_an_error(
    client: httpx.AsyncClient, fx: Fixture, weeks: int
) -> None:
    query = "query($w: Int) { subscriptionAnalytics(product: CALLING) { licenseDistributionTrend(weeks: $w) { total } } }"
    response = await gql(client, fx.team[AdminRole.FULL_ADMIN].token, query, {"w": weeks})
    assert (
        response.json()["errors"][0]["message"] == f"`weeks` must be between 1 and 52 (got {weeks})"
    )


async def test_unknown_product_is_a_validation_error(
    client: httpx.AsyncClient, fx: Fixture
) -> None:
    response = await gql(
        client,
        fx.team[AdminRole.FULL_ADMIN].token,
        "{ subscriptionAnalytics(product: MESSAGING) { product } }",
    )
    assert "MESSAGING" in response.json()["errors"][0]["message"]


async def test_another_partner_counts_only_as_an_anonymous_peer(
    client: httpx.AsyncClient, fx: Fixture
) -> None:
    contoso = await fx.customers["peer 0"].partner
    contoso_full = await factories.admin(contoso, AdminRole.FULL_ADMIN)
    answer = (await data(client, contoso_full.token, TREE, {"p": "CALLING"}))[
        "subscriptionAnalytics"
    ]
    assert answer["kpis"]["totalCustomers"] == 9
    names = {
        n["customer"]["name"] for name in SECTIONS.values() for n in answer[name]["rows"]["nodes"]
    }
    assert all(name.startswith("peer") for name in names)


async def test_the_whole_tree_costs_the_same_statements_whatever_the_data(
    client: httpx.AsyncClient, fx: Fixture
) -> None:
    """One request answers the whole tree; the peer medians are computed once per
    family; adding subscriptions to every section adds no statement."""
    from tests.test_customer_detail import counting_statements

    token = fx.team[AdminRole.FULL_ADMIN].token
    await data(client, token, "{ viewer { email } }")  # the token's first use is written
    counts = []
    for round_ in range(2):
        with counting_statements() as statements:
            await data(client, token, TREE, {"p": "CALLING"})
        medians = [s for s in statements if "ROW_NUMBER() OVER (PARTITION BY band" in s]
        assert len(medians) == 2  # CALLING and MEETINGS: the top KPI looks at both
        counts.append(len(statements))
        if round_ == 0:
            northwind = fx.customers["ends today"].partner_id
            for n in range(30):
                customer = await Customer.create(partner_id=northwind, name=f"more {n}", org_id=uuid.uuid4(),
                                                 region=Region.US, created_at=fx.now)  # fmt: skip
                sub = await Subscription.create(
                    customer=customer, subscription_id=f"More-{n}", kind="SUBSCRIPTION", status="ACTIVE",
                    start_date=fx.today, end_date=fx.today + timedelta(days=n), auto_renew=n % 2 == 0,
                    added_at=fx.now - timedelta(days=n * 3),
                )  # fmt: skip
                await LicenseLine.create(subscription=sub, license_type=CP, product="CALLING",
                                         quantity=10 + n, assigned=n if n % 3 else 11 + n, used=0)  # fmt: skip
    assert counts[0] == counts[1], counts


async def test_the_demo_data_answers_the_whole_tree(client: httpx.AsyncClient, db) -> None:
    from app.demo import demo_admins, load_demo

    await load_demo(60, seed=4, now=datetime.now(UTC))
    token = demo_admins(4)[0].token
    counts = {name: 0 for name in SECTIONS.values()}
    for family in ("CALLING", "MEETINGS"):
        tree = (await data(client, token, TREE, {"p": family}))["subscriptionAnalytics"]
        assert tree["kpis"]["totalCustomers"] > 0
        for name in counts:
            counts[name] += tree[name]["rows"]["totalCount"]
    assert all(counts.values()), counts  # every section shows rows for one family or both


async def test_pages_follow_one_another_in_the_section_order(
    client: httpx.AsyncClient, fx: Fixture
) -> None:
    """Paging a section with `after` gives its rows once each, in order, whatever
    the page size; two pages of one section asked side by side (aliases, a fragment,
    an inline fragment) are the pages asked alone."""
    token = fx.team[AdminRole.FULL_ADMIN].token
    visible = visible_to(fx, AdminRole.FULL_ADMIN)
    query = """query($n: Int, $a: String) { subscriptionAnalytics(product: CALLING) {
      expiringSoon { rows(first: $n, after: $a) {
        totalCount pageInfo { hasNextPage endCursor } nodes { subscriptionId } } } } }"""
    for section, name in (("expiring", "expiringSoon"), ("recently_added", "recentlyAdded")):
        _, rows = section_expectation(fx, ProductFamily.CALLING, section, visible)
        expected = [r["subscriptionId"] for r in rows]
        assert len(expected) >= 3, (section, expected)
        for size in (1, 2, 3):
            seen, after = [], None
            while True:
                answer = await data(client, token, query.replace("expiringSoon", name),
                                    {"n": size, "a": after})  # fmt: skip
                rows_ = answer["subscriptionAnalytics"][name]["rows"]
                assert rows_["totalCount"] == len(expected)
                seen += [n["subscriptionId"] for n in rows_["nodes"]]
                if not rows_["pageInfo"]["hasNextPage"]:
                    break
                after = rows_["pageInfo"]["endCursor"]
            assert seen == expected, (section, size)

    _, rows = section_expectation(fx, ProductFamily.CALLING, "expiring", visible)
    codes = [r["subscriptionId"] for r in rows]
    first = await data(client, token, query, {"n": 2})
    cursor = first["subscriptionAnalytics"]["expiringSoon"]["rows"]["pageInfo"]["endCursor"]
    both = await data(
        client,
        token,
        """fragment Page on PeriodRowConnection { totalCount nodes { subscriptionId } }
        query($a: String) { subscriptionAnalytics(product: CALLING) {
          head: expiringSoon { rows(first: 2) { ...Page } }
          tail: expiringSoon { ... on PeriodSection { rows(first: 3, after: $a) { ...Page } } }
          renewingSoon { kpis { customers } } } }""",
        {"a": cursor},
    )
    tree = both["subscriptionAnalytics"]
    assert [n["subscriptionId"] for n in tree["head"]["rows"]["nodes"]] == codes[:2]
    assert [n["subscriptionId"] for n in tree["tail"]["rows"]["nodes"]] == codes[2:5]
    assert tree["tail"]["rows"]["totalCount"] == len(codes)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("first: 0", "`first` must be between 1 and 100 (got 0)"),
        ('first: 2, after: "bm90IGEgY3Vyc29y"', "`after` is not a cursor of this list"),
    ],
)
async def test_a_refused_page_is_an_error_of_its_own_field(
    client: httpx.AsyncClient, fx: Fixture, arguments: str, message: str
) -> None:
    """The tree reads what the query asks for up front; a page argument it refuses
    is still the error of that `rows` field, with its path, and the only one."""
    response = await gql(
        client,
        fx.team[AdminRole.FULL_ADMIN].token,
        f"""{{ subscriptionAnalytics(product: CALLING) {{
          expiringSoon {{ kpis {{ customers }} rows({arguments}) {{ totalCount }} }}
          overLicenseLimit {{ rows(first: 5) {{ totalCount }} }} }} }}""",
    )
    body = response.json()
    [error] = body["errors"]
    assert error["message"].startswith(message)
    assert error["path"] == ["subscriptionAnalytics", "expiringSoon", "rows"]
    # `rows` and every field above it are non-null: the error nulls the whole answer.
    assert body["data"] is None
