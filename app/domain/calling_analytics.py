"""Calling engagement analytics for one region and one week, read from the
weekly rollups (app/domain/calling_rollup.py), never from raw call legs.

The per-customer lists (usage, quality, call queues) page by keyset, each in
its own order with the customer's id last; each page is two statements (the
list's count, and the page with its figures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

from app.db import as_date, fetch_all
from app.domain.access import Viewer, customer_scope
from app.domain.calling_rollup import monday_of, refreshed_week
from app.domain.errors import InvalidArgument
from app.domain.ids import MAX_PK
from app.domain.pagination import ID, NUMBER, KeyPart, Keyset, Page, cursor_int, page_size
from app.domain.sql import Sql, in_list
from app.domain.subscription_analytics import pct
from app.models.enums import EndpointType, Region

MAX_TREND_WEEKS = 52
MEASURED_ENDPOINTS = (
    EndpointType.DESK_PHONE,
    EndpointType.ROOM_DEVICE,
    EndpointType.APP,
    EndpointType.OTHER_DEVICE,
)


@dataclass(frozen=True)
class UsagePoint:
    week_start: date
    active_users: int
    none: int
    low: int
    medium: int
    high: int


@dataclass(frozen=True)
class QualityFigures:
    total_legs: int
    poor_legs: int

    @property
    def poor_pct(self) -> float:
        return pct(self.poor_legs, self.total_legs)


@dataclass(frozen=True, slots=True)
class QueueKpis:
    avg_time_to_answer: float  # seconds, over answered calls
    avg_wait_before_abandon: float  # seconds, over abandoned calls
    abandoned_rate: float  # abandoned / total calls, in percent


@dataclass(frozen=True, slots=True)
class CustomerUsage:
    """A customer's calls of the week, against the week before."""

    customer_id: int
    total_calls: int
    call_minutes: int
    active_users: int
    previous_calls: int | None  # None: no rollup row the week before
    calls_change_pct: float | None  # None without calls the week before


@dataclass(frozen=True, slots=True)
class CustomerQuality:
    customer_id: int
    total_legs: int  # legs that carry quality metrics
    poor_legs: int
    poor_ratio: float  # poor / total legs, as the database computed it (the list's order)
    poor_pct: float


@dataclass(frozen=True, slots=True)
class CustomerQueue:
    customer_id: int
    total_calls: int
    answered_calls: int
    abandoned_calls: int
    abandoned_ratio: float  # abandoned / total calls, as the database computed it (the order)
    abandoned_rate_pct: float
    avg_time_to_answer: float
    avg_wait_before_abandon: float
    timed_out_calls: int
    overflowed_calls: int
    transferred_calls: int


R = TypeVar("R")
# A count of an INTEGER column, negated (a list ordered by it, most first).
NEGATED_COUNT = KeyPart(int, lambda v: cursor_int(v, -MAX_PK, 0))


@dataclass(frozen=True)
class CustomerList(Generic[R]):
    """A per-customer list of the week: its rollup table, the columns of a row,
    the rows it keeps, and its order as a keyset: SQL expressions over the table
    alias `{t}` (the customer's id last; a value ordered most first is negated,
    so one direction serves the whole key) and the same values of a row."""

    table: str
    columns: str
    where: str
    keyset: Keyset
    order: tuple[str, ...]
    row: Callable[[dict[str, Any]], R]
    key: Callable[[R], tuple[Any, ...]]
    # The page's rows gain each customer's calls of the week before (`previous_calls`).
    with_previous_calls: bool = False

    def columns_of(self, alias: str) -> list[str]:
        return [c.format(t=alias) for c in self.order]


def _usage(r: dict[str, Any]) -> CustomerUsage:
    total, previous = int(r["total_calls"]), r["previous_calls"]
    previous = None if previous is None else int(previous)
    change = round(100.0 * (total - previous) / previous, 1) if previous else None
    return CustomerUsage(
        customer_id=int(r["customer_id"]),
        total_calls=total,
        call_minutes=int(r["call_minutes"]),
        active_users=int(r["active_users"]),
        previous_calls=previous,
        calls_change_pct=change,
    )


def _quality(r: dict[str, Any]) -> CustomerQuality:
    legs, poor = int(r["quality_legs"]), int(r["poor_legs"])
    return CustomerQuality(
        customer_id=int(r["customer_id"]),
        total_legs=legs,
        poor_legs=poor,
        poor_ratio=float(r["poor_ratio"]),
        poor_pct=pct(poor, legs),
    )


def _queue(r: dict[str, Any]) -> CustomerQueue:
    total, answered, abandoned = (
        int(r[k]) for k in ("total_calls", "answered_calls", "abandoned_calls")
    )
    return CustomerQueue(
        customer_id=int(r["customer_id"]),
        total_calls=total,
        answered_calls=answered,
        abandoned_calls=abandoned,
        abandoned_ratio=float(r["abandoned_ratio"]),
        abandoned_rate_pct=pct(abandoned, total),
        avg_time_to_answer=average(r["answer_wait_seconds"], answered),
        avg_wait_before_abandon=average(r["abandon_wait_seconds"], abandoned),
        timed_out_calls=int(r["timed_out_calls"]),
        overflowed_calls=int(r["overflowed_calls"]),
        transferred_calls=int(r["transferred_calls"]),
    )


# Ratios in DOUBLE PRECISION on both engines (a cursor holds them exactly); the
# divisor is never 0 in a kept row, NULLIF keeps a condition evaluated before the
# row's filter from dividing by it.
POOR_RATIO = "CAST({t}.poor_legs AS DOUBLE PRECISION) / NULLIF({t}.quality_legs, 0)"
ABANDONED_RATIO = "CAST({t}.abandoned_calls AS DOUBLE PRECISION) / NULLIF({t}.total_calls, 0)"

# Customers by calls, most first; by poor share of legs, then poor legs, worst
# first; by abandoned share of queue calls, worst first. The cursor kinds differ:
# a cursor of one list is refused by the others.
USAGE: CustomerList[CustomerUsage] = CustomerList(
    "calling_weekly_customer",
    "r.customer_id, r.total_calls, r.call_minutes, r.active_users",
    "",
    Keyset("calling-usage", (NEGATED_COUNT, ID)),
    ("-{t}.total_calls", "{t}.customer_id"),
    _usage,
    lambda r: (-r.total_calls, r.customer_id),
    with_previous_calls=True,
)
QUALITY: CustomerList[CustomerQuality] = CustomerList(
    "calling_weekly_customer",
    f"r.customer_id, r.quality_legs, r.poor_legs, {POOR_RATIO.format(t='r')} AS poor_ratio",
    "AND r.quality_legs > 0",
    Keyset("calling-quality", (NUMBER, NEGATED_COUNT, ID)),
    (f"-({POOR_RATIO})", "-{t}.poor_legs", "{t}.customer_id"),
    _quality,
    lambda r: (-r.poor_ratio, -r.poor_legs, r.customer_id),
)
QUEUE: CustomerList[CustomerQueue] = CustomerList(
    "calling_weekly_queue",
    "r.customer_id, r.total_calls, r.answered_calls, r.abandoned_calls,"
    " r.timed_out_calls, r.overflowed_calls, r.transferred_calls,"
    " r.answer_wait_seconds, r.abandon_wait_seconds,"
    f" {ABANDONED_RATIO.format(t='r')} AS abandoned_ratio",
    "AND r.total_calls > 0",
    Keyset("calling-queue", (NUMBER, ID)),
    (f"-({ABANDONED_RATIO})", "{t}.customer_id"),
    _queue,
    lambda r: (-r.abandoned_ratio, r.customer_id),
)


@dataclass
class CallingAnalytics:
    viewer: Viewer
    region: Region
    week_start: date
    refreshed_at: datetime | None

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    def _scope(self) -> Sql:
        return customer_scope(self.viewer) & Sql("c.region = ?", (self.region.value,))

    def _weeks(self, weeks: int | None) -> list[date]:
        """The Mondays of a trend of `weeks` weeks ending with this one, oldest first."""
        weeks = 8 if weeks is None else weeks
        if not 1 <= weeks <= MAX_TREND_WEEKS:
            raise InvalidArgument(f"`weeks` must be between 1 and {MAX_TREND_WEEKS} (got {weeks})")
        return [self.week_start - timedelta(weeks=n) for n in reversed(range(weeks))]

    async def _rows(
        self,
        table: str,
        columns: str,
        extra: str = "",
        params: tuple = (),
        join: str = "",
        head: Sql | None = None,
    ) -> list[dict]:
        scope, head = self._scope(), head or Sql("")
        return await fetch_all(
            f"{head.text} SELECT {columns} FROM {table} r JOIN customer c ON c.id = r.customer_id"
            f" {join} WHERE ({scope.text}) {extra}",
            [*head.params, *scope.params, *params],
        )

    async def _trend_rows(self, columns: str, mondays: list[date], head: Sql | None = None,
                          join: str = "") -> dict[date, dict]:  # fmt: skip
        """A trend's customer rollup rows summed per week, by week. The weeks go in as a
        list, not a range: the plan PostgreSQL caches for the statement after five runs
        then still knows they hold most rows, and joins them by hash."""
        weeks = in_list("r.week_start", mondays)
        rows = await self._rows(
            "calling_weekly_customer",
            f"r.week_start, {columns}",
            f"AND {weeks.text} GROUP BY r.week_start",
            weeks.params,
            join=join,
            head=head,
        )
        return {as_date(r["week_start"]): r for r in rows}

    async def usage_trend(self, weeks: int | None) -> list[UsagePoint]:
        mondays = self._weeks(weeks)
        scope = self._scope()
        # The number of users of each customer in scope, read once (materialized:
        # not once per parallel worker), for the users who made no call.
        users = Sql(
            "WITH u AS MATERIALIZED (SELECT cu.customer_id, COUNT(*) AS n FROM customer_user cu"
            f" JOIN customer c ON c.id = cu.customer_id WHERE ({scope.text})"
            " GROUP BY cu.customer_id)",
            scope.params,
        )
        found = await self._trend_rows(
            "SUM(r.active_users) AS active, SUM(r.users_low) AS low,"
            " SUM(r.users_medium) AS medium, SUM(r.users_high) AS high,"
            # users of each customer who made no call, never below zero per customer
            " SUM(CASE WHEN COALESCE(u.n, 0) > r.active_users"
            " THEN u.n - r.active_users ELSE 0 END) AS none",
            mondays,
            head=users,
            join="LEFT JOIN u ON u.customer_id = r.customer_id",
        )
        points = []
        for week in mondays:
            r = found.get(week)
            if r is None:
                points.append(UsagePoint(week, 0, 0, 0, 0, 0))
                continue
            active = int(r["active"])
            points.append(UsagePoint(week, active, int(r["none"]),
                                     int(r["low"]), int(r["medium"]), int(r["high"])))  # fmt: skip
        return points

    async def quality_trend(self, weeks: int | None) -> list[tuple[date, QualityFigures]]:
        mondays = self._weeks(weeks)
        found = await self._trend_rows(
            "SUM(r.quality_legs) AS legs, SUM(r.poor_legs) AS poor", mondays
        )
        return [
            (week, QualityFigures(int(found[week]["legs"]), int(found[week]["poor"]))
             if week in found else QualityFigures(0, 0))
            for week in mondays
        ]  # fmt: skip

    async def quality_by_endpoint(self) -> list[tuple[EndpointType, QualityFigures]]:
        rows = await self._rows(
            "calling_weekly_endpoint",
            "r.endpoint_type, SUM(r.total_legs) AS legs, SUM(r.poor_legs) AS poor",
            "AND r.week_start = ? GROUP BY r.endpoint_type",
            (self.week_start,),
        )
        found = {r["endpoint_type"]: r for r in rows}
        return [
            (e, QualityFigures(int(found[e.value]["legs"]), int(found[e.value]["poor"])))
            for e in MEASURED_ENDPOINTS
            if e.value in found
        ]

    async def feature_use(self) -> list[tuple[str, int]]:
        rows = await self._rows(
            "calling_weekly_feature",
            "r.feature, SUM(r.calls) AS calls",
            "AND r.week_start = ? GROUP BY r.feature ORDER BY calls DESC, r.feature",
            (self.week_start,),
        )
        return [(r["feature"], int(r["calls"])) for r in rows]

    async def queue_kpis(self) -> QueueKpis:
        [r] = await self._rows(
            "calling_weekly_queue",
            "COALESCE(SUM(r.total_calls), 0) AS total,"
            " COALESCE(SUM(r.answered_calls), 0) AS answered,"
            " COALESCE(SUM(r.abandoned_calls), 0) AS abandoned,"
            " COALESCE(SUM(r.answer_wait_seconds), 0) AS answer_wait,"
            " COALESCE(SUM(r.abandon_wait_seconds), 0) AS abandon_wait",
            "AND r.week_start = ?",
            (self.week_start,),
        )
        return QueueKpis(
            avg_time_to_answer=average(r["answer_wait"], r["answered"]),
            avg_wait_before_abandon=average(r["abandon_wait"], r["abandoned"]),
            abandoned_rate=pct(int(r["abandoned"]), int(r["total"])),
        )

    # --------------------------------------------------- per-customer lists ----

    async def customer_list(
        self, spec: CustomerList[R], first: int | None, after: str | None
    ) -> Page[R]:
        """One page of a per-customer list of the week (`first` rows past the
        cursor `after`) and the list's count: two statements. The usage list's
        page gains each customer's calls of the week before, joined to the page's
        rows only."""
        size = page_size(first)
        past = spec.keyset.after(after)
        scope = self._scope()
        base = (
            f"FROM {spec.table} r JOIN customer c ON c.id = r.customer_id"
            f" WHERE ({scope.text}) AND r.week_start = ? {spec.where}"
        )
        [count] = await fetch_all(f"SELECT COUNT(*) AS n {base}", [*scope.params, self.week_start])
        columns = spec.columns_of("r")
        condition = spec.keyset.sql_after(columns, past)
        page = (
            f"SELECT {spec.columns} {base} AND ({condition.text})"
            f" ORDER BY {spec.keyset.sql_order(columns)} LIMIT ?"
        )
        params = [*scope.params, self.week_start, *condition.params, size + 1]
        if spec.with_previous_calls:
            page = (
                f"SELECT page.*, p.total_calls AS previous_calls FROM ({page}) page"
                " LEFT JOIN calling_weekly_customer p"
                " ON p.customer_id = page.customer_id AND p.week_start = ?"
                f" ORDER BY {spec.keyset.sql_order(spec.columns_of('page'))}"
            )
            params.append(self.week_start - timedelta(weeks=1))
        rows = [spec.row(r) for r in await fetch_all(page, params)]
        return spec.keyset.page_of(rows, size, spec.key, total=int(count["n"]), after=past)

    async def customers_usage(self, first: int | None, after: str | None) -> Page[CustomerUsage]:
        """Customers by calls in the week, most first."""
        return await self.customer_list(USAGE, first, after)

    async def customers_quality(
        self, first: int | None, after: str | None
    ) -> Page[CustomerQuality]:
        """Customers with quality legs by share of poor legs, worst first."""
        return await self.customer_list(QUALITY, first, after)

    async def customers_queue(self, first: int | None, after: str | None) -> Page[CustomerQueue]:
        """Customers with queue calls by abandoned share, worst first."""
        return await self.customer_list(QUEUE, first, after)


def average(total: Any, count: Any) -> float:
    """total / count rounded to one decimal; 0 when count is 0."""
    return round(float(total) / float(count), 1) if count else 0.0


async def open_calling_analytics(
    viewer: Viewer, region: Region, week_start: date | None, now: datetime
) -> CallingAnalytics:
    """The analytics of one week: `week_start` (a Monday) or the latest refreshed week."""
    if week_start is None:
        week_start = refreshed_week(now)
    elif week_start.weekday() != 0:
        raise InvalidArgument(
            f"`weekStart` {week_start.isoformat()} is a {week_start.strftime('%A')}: "
            f"weeks start on Monday (e.g. {monday_of(week_start).isoformat()})"
        )
    rows = await fetch_all(
        "SELECT refreshed_at FROM calling_week WHERE week_start = ?", [week_start]
    )
    refreshed = rows[0]["refreshed_at"] if rows else None
    if refreshed is not None and not isinstance(refreshed, datetime):
        refreshed = datetime.fromisoformat(str(refreshed))
    return CallingAnalytics(
        viewer=viewer, region=region, week_start=week_start, refreshed_at=refreshed
    )
