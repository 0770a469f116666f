"""callingAnalytics(region, weekStart): weekly calling engagement."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from app.domain import calling_analytics as calling
from app.domain.subscription_analytics import pct
from app.models.customers import Customer as CustomerModel
from app.models.enums import Region as RegionValue
from schema.context import Info
from schema.customers import Customer
from schema.enums import Region
from schema.pagination import PageInfo, customer_rows


@strawberry.type(name="Week")
class Week:
    start: date
    end: date


@strawberry.type(name="UsageBucket")
class UsageBucket:
    bucket: str = strawberry.field(
        description="NONE, LOW (1-5), MEDIUM (6-20) or HIGH calls per user in the week."
    )
    users: int


@strawberry.type(name="CallingUsagePoint")
class CallingUsagePoint:
    week: Week
    active_users: int
    users_by_volume: list[UsageBucket]


@strawberry.type(name="CallQualityPoint")
class CallQualityPoint:
    week: Week
    total_legs: int
    poor_legs: int
    poor_pct: float


@strawberry.type(name="EndpointQuality")
class EndpointQuality:
    endpoint_type: str = strawberry.field(
        description="DESK_PHONE, ROOM_DEVICE, APP or OTHER_DEVICE."
    )
    total_legs: int
    poor_legs: int
    poor_pct: float


@strawberry.type(name="FeatureUse")
class FeatureUse:
    feature: str = strawberry.field(description="HUNT_GROUP, AUTO_ATTENDANT, CALL_QUEUE, ...")
    calls: int


@strawberry.type(name="CallQueueKpis")
class CallQueueKpis:
    avg_time_to_answer_seconds: float
    avg_wait_before_abandon_seconds: float
    avg_abandoned_rate_pct: float


@strawberry.type
class _WithCustomer:
    customer_model: strawberry.Private[CustomerModel]

    @strawberry.field
    def customer(self) -> Customer:
        return Customer.of(self.customer_model)


@strawberry.type(name="CustomerCallingUsage")
class CustomerCallingUsage(_WithCustomer):
    total_calls: int
    call_minutes: int
    active_users: int
    calls_change_pct: float | None = strawberry.field(
        description="Change of totalCalls against the previous week, in percent."
    )


@strawberry.type(name="CustomerCallQuality")
class CustomerCallQuality(_WithCustomer):
    total_legs: int
    poor_legs: int
    poor_pct: float


@strawberry.type(name="CustomerCallQueue")
class CustomerCallQueue(_WithCustomer):
    total_calls: int
    answered_calls: int
    abandoned_calls: int
    abandoned_rate_pct: float
    avg_time_to_answer_seconds: float
    avg_wait_before_abandon_seconds: float
    timed_out_calls: int
    overflowed_calls: int
    transferred_calls: int


@strawberry.type(name="CustomerCallingUsageConnection")
class CustomerCallingUsageConnection:
    nodes: list[CustomerCallingUsage]
    page_info: PageInfo
    total_count: int


@strawberry.type(name="CustomerCallQualityConnection")
class CustomerCallQualityConnection:
    nodes: list[CustomerCallQuality]
    page_info: PageInfo
    total_count: int


@strawberry.type(name="CustomerCallQueueConnection")
class CustomerCallQueueConnection:
    nodes: list[CustomerCallQueue]
    page_info: PageInfo
    total_count: int


def _usage(row: dict, customer: CustomerModel) -> CustomerCallingUsage:
    previous = row["previous_calls"]
    change = round(100.0 * (row["total_calls"] - previous) / previous, 1) if previous else None
    return CustomerCallingUsage(
        customer_model=customer,
        total_calls=int(row["total_calls"]),
        call_minutes=int(row["call_minutes"]),
        active_users=int(row["active_users"]),
        calls_change_pct=change,
    )


def _quality(row: dict, customer: CustomerModel) -> CustomerCallQuality:
    legs, poor = int(row["quality_legs"]), int(row["poor_legs"])
    return CustomerCallQuality(
        customer_model=customer, total_legs=legs, poor_legs=poor, poor_pct=pct(poor, legs)
    )


def _queue(row: dict, customer: CustomerModel) -> CustomerCallQueue:
    total, answered, abandoned = (
        int(row[k]) for k in ("total_calls", "answered_calls", "abandoned_calls")
    )
    return CustomerCallQueue(
        customer_model=customer,
        total_calls=total,
        answered_calls=answered,
        abandoned_calls=abandoned,
        abandoned_rate_pct=pct(abandoned, total),
        avg_time_to_answer_seconds=calling.average(row["answer_wait_seconds"], answered),
        avg_wait_before_abandon_seconds=calling.average(row["abandon_wait_seconds"], abandoned),
        timed_out_calls=int(row["timed_out_calls"]),
        overflowed_calls=int(row["overflowed_calls"]),
        transferred_calls=int(row["transferred_calls"]),
    )


@strawberry.type(name="CallQueueInsights")
class CallQueueInsights:
    view: strawberry.Private[calling.CallingAnalytics]

    @strawberry.field
    async def kpis(self) -> CallQueueKpis:
        k = await self.view.queue_kpis()
        return CallQueueKpis(
            avg_time_to_answer_seconds=k["avg_time_to_answer"],
            avg_wait_before_abandon_seconds=k["avg_wait_before_abandon"],
            avg_abandoned_rate_pct=k["abandoned_rate"],
        )

    @strawberry.field(description="Customers with a call queue, highest abandoned rate first.")
    async def customers(
        self, first: int | None = None, after: str | None = None
    ) -> CustomerCallQueueConnection:
        return await customer_rows(
            CustomerCallQueueConnection,
            "calling-queue",
            first,
            after,
            lambda offset, size: self.view.customer_list("queue", offset, size),
            lambda r: r["customer_id"],
            _queue,
        )


def _week(start: date) -> Week:
    return Week(start=start, end=start.fromordinal(start.toordinal() + 6))


@strawberry.type(
    name="CallingAnalytics",
    description="Weekly calling engagement, for the most recent completed week "
    "(refreshed Sunday 00:00 UTC).",
)
class CallingAnalytics:
    view: strawberry.Private[calling.CallingAnalytics]
    region: Region
    week: Week
    refreshed_at: datetime | None

    @strawberry.field
    async def usage_trend(self, weeks: int | None = 8) -> list[CallingUsagePoint]:
        return [
            CallingUsagePoint(
                week=_week(p.week_start),
                active_users=p.active_users,
                users_by_volume=[
                    UsageBucket(bucket=b, users=n)
                    for b, n in (
                        ("NONE", p.none),
                        ("LOW", p.low),
                        ("MEDIUM", p.medium),
                        ("HIGH", p.high),
                    )
                ],
            )
            for p in await self.view.usage_trend(weeks)
        ]

    @strawberry.field(description="Customers by calls in the week, most first.")
    async def customers_usage(
        self, first: int | None = None, after: str | None = None
    ) -> CustomerCallingUsageConnection:
        return await customer_rows(
            CustomerCallingUsageConnection,
            "calling-usage",
            first,
            after,
            lambda offset, size: self.view.customer_list("usage", offset, size),
            lambda r: r["customer_id"],
            _usage,
        )

    @strawberry.field
    async def quality_trend(self, weeks: int | None = 8) -> list[CallQualityPoint]:
        return [
            CallQualityPoint(
                week=_week(w), total_legs=q.total_legs, poor_legs=q.poor_legs, poor_pct=q.poor_pct
            )
            for w, q in await self.view.quality_trend(weeks)
        ]

    @strawberry.field
    async def quality_by_endpoint_type(self) -> list[EndpointQuality]:
        return [
            EndpointQuality(
                endpoint_type=e.value,
                total_legs=q.total_legs,
                poor_legs=q.poor_legs,
                poor_pct=q.poor_pct,
            )
            for e, q in await self.view.quality_by_endpoint()
        ]

    @strawberry.field(description="Customers by share of poor legs in the week, worst first.")
    async def customers_quality(
        self, first: int | None = None, after: str | None = None
    ) -> CustomerCallQualityConnection:
        return await customer_rows(
            CustomerCallQualityConnection,
            "calling-quality",
            first,
            after,
            lambda offset, size: self.view.customer_list("quality", offset, size),
            lambda r: r["customer_id"],
            _quality,
        )

    @strawberry.field
    async def feature_use(self) -> list[FeatureUse]:
        return [FeatureUse(feature=f, calls=n) for f, n in await self.view.feature_use()]

    @strawberry.field
    def call_queue(self) -> CallQueueInsights:
        return CallQueueInsights(view=self.view)


async def resolve_calling_analytics(
    info: Info, region: Region, week_start: date | None = None
) -> CallingAnalytics:
    view = await calling.open_calling_analytics(
        info.context.viewer, RegionValue(region), week_start, info.context.clock.now
    )
    return CallingAnalytics(
        view=view, region=region, week=_week(view.week_start), refreshed_at=view.refreshed_at
    )
