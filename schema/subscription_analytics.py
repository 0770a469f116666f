"""subscriptionAnalytics(product, region): KPIs, trend and the five sections.

The root resolver reads what the query selects (sections, page arguments,
trend lengths) and has the domain load all of it at once (`Plan`); the
fields below then answer from what was loaded. Each section's rows are a
`Connection` of the domain's typed rows, paged by the section's keyset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any, Protocol, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from app.domain import subscription_analytics as analytics
from app.domain.errors import InvalidArgument
from app.domain.lookups import customers_by_ids
from app.domain.pagination import Page
from app.models.enums import ProductFamily as ProductFamilyValue
from app.models.enums import Region as RegionValue
from schema.context import Info
from schema.customers import Customer
from schema.enums import ProductFamily
from schema.pagination import Connection


class OfCustomer(Protocol):
    customer_id: int


Node = TypeVar("Node")
Item = TypeVar("Item", bound=OfCustomer)


async def rows_with_customers(
    connection: type[Connection[Node]],
    page: Page[Item],
    node: Callable[[Item, Customer], Node],
) -> Connection[Node]:
    """The connection of a page of analytics rows, each with its customer (the
    page's customers read in one query, whatever the page's size)."""
    customers = await customers_by_ids([r.customer_id for r in page.items])
    return connection.of(page, lambda r: node(r, Customer.of(customers[r.customer_id])))


@strawberry.type(
    name="SubscriptionKpis",
    description="Top KPIs. Counted over customers with Webex Calling or Webex Meetings only.",
)
class SubscriptionKpis:
    total_customers: int
    about_to_expire: int = strawberry.field(
        description="Customers with a subscription or trial ending within 90 days."
    )
    about_to_renew: int = strawberry.field(
        description="Customers with auto-renewing subscriptions renewing within 90 days."
    )
    low_license_assignment: int
    over_license_limit: int


@strawberry.type(name="LicenseTrendPoint")
class LicenseTrendPoint:
    week_start: date
    total: int
    assigned: int
    used: int


# ----------------------------------------------------------- recently added ----


@strawberry.type(name="RecentlyAddedKpis")
class RecentlyAddedKpis:
    new_customers: int = strawberry.field(
        description="Customers with a new subscription or trial in the last 90 days."
    )
    total_licenses: int


@strawberry.type(name="RecentlyAddedRow")
class RecentlyAddedRow:
    customer: Customer
    subscription_id: str
    days_since_added: int
    total_licenses: int
    used: int
    assigned: int
    available: int
    weekly_assignment_change: int
    weekly_usage_change: int


@strawberry.type(name="RecentlyAddedSection")
class RecentlyAddedSection:
    view: strawberry.Private[analytics.SubscriptionAnalytics]

    @strawberry.field
    async def kpis(self) -> RecentlyAddedKpis:
        totals = await self.view.section_totals("recently_added")
        return RecentlyAddedKpis(new_customers=totals.customers, total_licenses=totals.total)

    @strawberry.field
    async def rows(
        self, first: int | None = None, after: str | None = None
    ) -> Connection[RecentlyAddedRow]:
        def node(r: analytics.Row, customer: Customer) -> RecentlyAddedRow:
            return RecentlyAddedRow(
                customer=customer,
                subscription_id=r.subscription_id,
                days_since_added=r.days_since_added,
                total_licenses=r.total,
                used=r.used,
                assigned=r.assigned,
                available=r.available,
                weekly_assignment_change=r.assignment_change,
                weekly_usage_change=r.usage_change,
            )

        page = await self.view.section_page("recently_added", first, after)
        return await rows_with_customers(Connection[RecentlyAddedRow], page, node)


# ------------------------------------------------------- expiring, renewing ----


@strawberry.type(name="PeriodKpis")
class PeriodKpis:
    customers: int
    license_assignment_pct: float = strawberry.field(
        description="assigned / total licenses of the section's subscriptions, in percent."
    )
    license_usage_pct: float = strawberry.field(
        description="used in the last 7 days / total licenses of the section's subscriptions, "
        "in percent."
    )


@strawberry.type(name="PeriodRow")
class PeriodRow:
    customer: Customer
    subscription_id: str
    days_remaining: int = strawberry.field(
        description="Days until expiry (expiring section) or until renewal (renewing section)."
    )
    total_licenses: int
    used: int
    assigned: int
    available: int
    usage_last3_months: int = strawberry.field(name="usageLast3Months")


@strawberry.type(name="PeriodSection")
class PeriodSection:
    view: strawberry.Private[analytics.SubscriptionAnalytics]
    section: strawberry.Private[str]

    @strawberry.field
    async def kpis(self) -> PeriodKpis:
        t = await self.view.section_totals(self.section)
        return PeriodKpis(
            customers=t.customers,
            license_assignment_pct=t.assignment_pct,
            license_usage_pct=t.usage_pct,
        )

    @strawberry.field
    async def rows(
        self, first: int | None = None, after: str | None = None
    ) -> Connection[PeriodRow]:
        def node(r: analytics.Row, customer: Customer) -> PeriodRow:
            return PeriodRow(
                customer=customer,
                subscription_id=r.subscription_id,
                days_remaining=r.days_remaining,
                total_licenses=r.total,
                used=r.used,
                assigned=r.assigned,
                available=r.available,
                usage_last3_months=r.used_90d,
            )

        page = await self.view.section_page(self.section, first, after)
        return await rows_with_customers(Connection[PeriodRow], page, node)


# ------------------------------------------------------------ low assignment ----


@strawberry.type(name="LowAssignmentKpis")
class LowAssignmentKpis:
    customers: int
    license_assignment_pct: float
    usage_on_assignment_pct: float = strawberry.field(
        description="used assigned licenses / total licenses, in percent."
    )
    total_unassigned_licenses: int


@strawberry.type(name="LowAssignmentRow")
class LowAssignmentRow:
    customer: Customer
    subscription_id: str
    months_since_added: int
    assigned: int
    assigned_pct: float
    total_licenses: int
    used: int
    available: int
    weekly_assignment_change: int


@strawberry.type(name="LowAssignmentSection")
class LowAssignmentSection:
    view: strawberry.Private[analytics.SubscriptionAnalytics]

    @strawberry.field
    async def kpis(self) -> LowAssignmentKpis:
        t = await self.view.section_totals("low_assignment")
        return LowAssignmentKpis(
            customers=t.customers,
            license_assignment_pct=t.assignment_pct,
            usage_on_assignment_pct=t.usage_pct,
            total_unassigned_licenses=t.available,
        )

    @strawberry.field
    async def rows(
        self, first: int | None = None, after: str | None = None
    ) -> Connection[LowAssignmentRow]:
        def node(r: analytics.Row, customer: Customer) -> LowAssignmentRow:
            return LowAssignmentRow(
                customer=customer,
                subscription_id=r.subscription_id,
                months_since_added=r.months_since_added,
                assigned=r.assigned,
                assigned_pct=r.assigned_pct,
                total_licenses=r.total,
                used=r.used,
                available=r.available,
                weekly_assignment_change=r.assignment_change,
            )

        page = await self.view.section_page("low_assignment", first, after)
        return await rows_with_customers(Connection[LowAssignmentRow], page, node)


# ----------------------------------------------------------- over the limit ----


@strawberry.type(name="OverageKpis")
class OverageKpis:
    customers: int
    total_overage_licenses: int
    average_overage: float = strawberry.field(description="totalOverageLicenses / customers.")


@strawberry.type(name="OverageRow")
class OverageRow:
    customer: Customer
    subscription_id: str
    months_remaining: int | None
    auto_renew: bool
    total_licenses: int
    assigned: int
    assigned_pct: float
    used: int
    used_pct: float
    overage_licenses: int = strawberry.field(
        description="Licenses assigned over the quantity, line by line: the sum over the "
        "row's license lines of the chosen family of max(assigned - quantity, 0) (a line "
        "under its quantity offsets nothing). The KPIs' totalOverageLicenses adds these up."
    )


@strawberry.type(name="OverageSection")
class OverageSection:
    view: strawberry.Private[analytics.SubscriptionAnalytics]

    @strawberry.field
    async def kpis(self) -> OverageKpis:
        t = await self.view.section_totals("over_limit")
        return OverageKpis(
            customers=t.customers,
            total_overage_licenses=t.overage,
            average_overage=t.average_overage,
        )

    @strawberry.field
    async def rows(
        self, first: int | None = None, after: str | None = None
    ) -> Connection[OverageRow]:
        def node(r: analytics.Row, customer: Customer) -> OverageRow:
            return OverageRow(
                customer=customer,
                subscription_id=r.subscription_id,
                months_remaining=r.months_remaining,
                auto_renew=r.auto_renew,
                total_licenses=r.total,
                assigned=r.assigned,
                assigned_pct=r.assigned_pct,
                used=r.used,
                used_pct=r.used_pct,
                overage_licenses=r.overage,
            )

        page = await self.view.section_page("over_limit", first, after)
        return await rows_with_customers(Connection[OverageRow], page, node)


# ---------------------------------------------------------------- the tree ----


@strawberry.type(name="SubscriptionAnalytics")
class SubscriptionAnalytics:
    view: strawberry.Private[analytics.SubscriptionAnalytics]
    product: ProductFamily

    @strawberry.field
    async def kpis(self) -> SubscriptionKpis:
        k = await self.view.kpis()
        return SubscriptionKpis(
            total_customers=k.total_customers,
            about_to_expire=k.about_to_expire,
            about_to_renew=k.about_to_renew,
            low_license_assignment=k.low_license_assignment,
            over_license_limit=k.over_license_limit,
        )

    @strawberry.field
    async def license_distribution_trend(self, weeks: int | None = 12) -> list[LicenseTrendPoint]:
        weeks = 12 if weeks is None else weeks
        return [
            LicenseTrendPoint(
                week_start=p.week_start, total=p.total, assigned=p.assigned, used=p.used
            )
            for p in await self.view.trend(weeks)
        ]

    @strawberry.field
    def recently_added(self) -> RecentlyAddedSection:
        return RecentlyAddedSection(view=self.view)

    @strawberry.field
    def expiring_soon(self) -> PeriodSection:
        return PeriodSection(view=self.view, section="expiring")

    @strawberry.field
    def renewing_soon(self) -> PeriodSection:
        return PeriodSection(view=self.view, section="renewing")

    @strawberry.field
    def low_assignment(self) -> LowAssignmentSection:
        return LowAssignmentSection(view=self.view)

    @strawberry.field
    def over_license_limit(self) -> OverageSection:
        return OverageSection(view=self.view)


# Section fields of the tree -> the domain's section.
SECTION_FIELDS = {
    "recentlyAdded": "recently_added",
    "expiringSoon": "expiring",
    "renewingSoon": "renewing",
    "lowAssignment": "low_assignment",
    "overLicenseLimit": "over_limit",
}
DEFAULT_TREND_WEEKS = 12


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection, fragments spread (a skipped field is read all
    the same: the plan may only ask for more than the answer shows)."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


def _int(value: object) -> int | None:
    """An Int argument as `selected_fields` gives it: a literal's text, or a variable's int."""
    return None if value is None else int(value)  # type: ignore[call-overload]


def plan_of(info: Info) -> analytics.Plan:
    """What the query asks of the tree. Arguments a field will refuse (a bad
    cursor, a page or trend out of range) are left out: the field says so."""
    kpis, weeks, totals, pages = False, set(), set(), set()
    for tree in info.selected_fields:
        for f in _fields(tree.selections):
            if f.name == "kpis":
                kpis = True
            elif f.name == "licenseDistributionTrend":
                n = _int(f.arguments.get("weeks", DEFAULT_TREND_WEEKS))
                weeks.add(DEFAULT_TREND_WEEKS if n is None else n)
            elif f.name in SECTION_FIELDS:
                section = SECTION_FIELDS[f.name]
                for part in _fields(f.selections):
                    if part.name == "kpis":
                        totals.add(section)
                    elif part.name == "rows" and (page := _page(section, part)) is not None:
                        totals.add(section)
                        pages.add(page)
    return analytics.Plan(
        kpis=kpis, trend_weeks=frozenset(weeks), totals=frozenset(totals), pages=frozenset(pages)
    )


def _page(section: str, rows: SelectedField) -> analytics.PageKey | None:
    """The page a section's `rows(first, after)` asks for; None for arguments it refuses."""
    after: Any = rows.arguments.get("after")
    try:
        return analytics.page_key(section, _int(rows.arguments.get("first")), after)
    except InvalidArgument:
        return None


async def resolve_subscription_analytics(
    info: Info, product: ProductFamily, region: RegionValue | None = None
) -> SubscriptionAnalytics:
    view = analytics.SubscriptionAnalytics(
        viewer=info.context.viewer,
        family=ProductFamilyValue(product),
        region=region,
        clock=info.context.clock,
    )
    await view.load(plan_of(info))
    return SubscriptionAnalytics(view=view, product=product)
