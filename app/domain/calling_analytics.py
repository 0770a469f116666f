"""Calling engagement analytics for one region and one week, read from the
weekly rollups (app/domain/calling_rollup.py), never from raw call legs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.db import as_date, fetch_all
from app.domain.access import Viewer, customer_scope
from app.domain.calling_rollup import monday_of, refreshed_week
from app.domain.errors import InvalidArgument
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


@dataclass(frozen=True)
class CustomerRow:
    customer_id: int
    values: dict[str, Any]


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

    async def queue_kpis(self) -> dict[str, float]:
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
        return {
            "avg_time_to_answer": average(r["answer_wait"], r["answered"]),
            "avg_wait_before_abandon": average(r["abandon_wait"], r["abandoned"]),
            "abandoned_rate": pct(int(r["abandoned"]), int(r["total"])),
        }

    # --------------------------------------------------- per-customer lists ----

    LISTS = {
        "usage": (
            "calling_weekly_customer",
            "r.customer_id, r.total_calls, r.call_minutes, r.active_users",
            "",
            "total_calls DESC, customer_id",
        ),
        "quality": (
            "calling_weekly_customer",
            "r.customer_id, r.quality_legs, r.poor_legs,"
            " r.poor_legs * 1.0 / r.quality_legs AS poor_ratio",
            "AND r.quality_legs > 0",
            "poor_ratio DESC, poor_legs DESC, customer_id",
        ),
        "queue": (
            "calling_weekly_queue",
            "r.customer_id, r.total_calls, r.answered_calls, r.abandoned_calls,"
            " r.timed_out_calls, r.overflowed_calls, r.transferred_calls,"
            " r.answer_wait_seconds, r.abandon_wait_seconds,"
            " r.abandoned_calls * 1.0 / r.total_calls AS abandoned_ratio",
            "AND r.total_calls > 0",
            "abandoned_ratio DESC, customer_id",
        ),
    }

    async def customer_list(self, name: str, offset: int, limit: int) -> tuple[int, list[dict]]:
        """(total count, one page) of a per-customer list of the week. The usage
        list's page gains each customer's calls of the week before, joined to the
        page's rows only (orders name output columns: they order both levels)."""
        table, columns, where, order = self.LISTS[name]
        scope = self._scope()
        base = (
            f"FROM {table} r JOIN customer c ON c.id = r.customer_id"
            f" WHERE ({scope.text}) AND r.week_start = ? {where}"
        )
        [count] = await fetch_all(f"SELECT COUNT(*) AS n {base}", [*scope.params, self.week_start])
        page = f"SELECT {columns} {base} ORDER BY {order} LIMIT ? OFFSET ?"
        params = [*scope.params, self.week_start, limit, offset]
        if name == "usage":
            page = (
                f"SELECT page.*, p.total_calls AS previous_calls FROM ({page}) page"
                " LEFT JOIN calling_weekly_customer p"
                " ON p.customer_id = page.customer_id AND p.week_start = ?"
                f" ORDER BY {order}"
            )
            params.append(self.week_start - timedelta(weeks=1))
        return int(count["n"]), await fetch_all(page, params)


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
