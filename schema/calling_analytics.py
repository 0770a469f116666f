"""callingAnalytics(region, weekStart): weekly calling engagement. The
per-customer tables are `Connection`s of the domain's typed rows, paged by
their keysets."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from app.domain import calling_analytics as calling
from app.models.enums import Region as RegionValue
from schema.context import Info
from schema.customers import Customer
from schema.enums import Region
from schema.pagination import Connection
from schema.subscription_analytics import rows_with_customers


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


@strawberry.type(name="CustomerCallingUsage")
class CustomerCallingUsage:
    customer: Customer
    total_calls: int
    call_minutes: int
    active_users: int
    calls_change_pct: float | None = strawberry.field(
        description="Change of totalCalls against the previous week, in percent."
    )

    @classmethod
    def of(cls, row: calling.CustomerUsage, customer: Customer) -> CustomerCallingUsage:
        return cls(
            customer=customer,
            total_calls=row.total_calls,
            call_minutes=row.call_minutes,
            active_users=row.active_users,
            calls_change_pct=row.calls_change_pct,
        )


@strawberry.type(name="CustomerCallQuality")
class CustomerCallQuality:
    customer: Customer
    total_legs: int
    poor_legs: int
    poor_pct: float

    @classmethod
    def of(cls, row: calling.CustomerQuality, customer: Customer) -> CustomerCallQuality:
        return cls(
            customer=customer,
            total_legs=row.total_legs,
            poor_legs=row.poor_legs,
            poor_pct=row.poor_pct,
        )


@strawberry.type(name="CustomerCallQueue")
class CustomerCallQueue:
    customer: Customer
    total_calls: int
    answered_calls: int
    abandoned_calls: int
    abandoned_rate_pct: float
    avg_time_to_answer_seconds: float
    avg_wait_before_abandon_seconds: float
    timed_out_calls: int
    overflowed_calls: int
    transferred_calls: int

    @classmethod
    def of(cls, row: calling.CustomerQueue, customer: Customer) -> CustomerCallQueue:
        return cls(
            customer=customer,
            total_calls=row.total_calls,
            answered_calls=row.answered_calls,
            abandoned_calls=row.abandoned_calls,
            abandoned_rate_pct=row.abandoned_rate_pct,
            avg_time_to_answer_seconds=row.avg_time_to_answer,
            avg_wait_before_abandon_seconds=row.avg_wait_before_abandon,
            timed_out_calls=row.timed_out_calls,
            overflowed_calls=row.overflowed_calls,
            transferred_calls=row.transferred_calls,
        )


@strawberry.type(name="CallQueueInsights")
class CallQueueInsights:
    view: strawberry.Private[calling.CallingAnalytics]

    @strawberry.field
    async def kpis(self) -> CallQueueKpis:
        k = await self.view.queue_kpis()
        return CallQueueKpis(
            avg_time_to_answer_seconds=k.avg_time_to_answer,
            avg_wait_before_abandon_seconds=k.avg_wait_before_abandon,
            avg_abandoned_rate_pct=k.abandoned_rate,
        )

    @strawberry.field(description="Customers with a call queue, highest abandoned rate first.")
    async def customers(
        self, first: int | None = None, after: str | None = None
    ) -> Connection[CustomerCallQueue]:
        page = await self.view.customers_queue(first, after)
        return await rows_with_customers(Connection[CustomerCallQueue], page, CustomerCallQueue.of)


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
    ) -> Connection[CustomerCallingUsage]:
        page = await self.view.customers_usage(first, after)
        return await rows_with_customers(
            Connection[CustomerCallingUsage], page, CustomerCallingUsage.of
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
    ) -> Connection[CustomerCallQuality]:
        page = await self.view.customers_quality(first, after)
        return await rows_with_customers(
            Connection[CustomerCallQuality], page, CustomerCallQuality.of
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
