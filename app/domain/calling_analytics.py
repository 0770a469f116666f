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
from app.domain.sql import Sql
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

    def _weeks(self, weeks: int | None) -> tuple[date, int]:
        weeks = 8 if weeks is None else weeks
        if not 1 <= weeks <= MAX_TREND_WEEKS:
            raise InvalidArgument(f"`weeks` must be between 1 and {MAX_TREND_WEEKS} (got {weeks})")
        return self.week_start - timedelta(weeks=weeks - 1), weeks

    async def _rows(
        self, table: str, columns: str, extra: str = "", params: tuple = (), join: str = ""
    ) -> list[dict]:
        scope = self._scope()
        return await fetch_all(
            f"SELECT {columns} FROM {table} r JOIN customer c ON c.id = r.customer_id {join}"
            f" WHERE ({scope.text}) {extra}",
            [*scope.params, *params],
        )

    async def usage_trend(self, weeks: int | None) -> list[UsagePoint]:
        first, count = self._weeks(weeks)
        rows = await self._rows(
            "calling_weekly_customer",
            "r.week_start, SUM(r.active_users) AS active, SUM(r.users_low) AS low,"
            " SUM(r.users_medium) AS medium, SUM(r.users_high) AS high,"
            # users of each customer who made no call, never below zero per customer
            " SUM(CASE WHEN COALESCE(u.n, 0) > r.active_users"
            " THEN u.n - r.active_users ELSE 0 END) AS none",
            "AND r.week_start >= ? AND r.week_start <= ? GROUP BY r.week_start",
            (first, self.week_start),
            join="LEFT JOIN (SELECT customer_id, COUNT(*) AS n FROM customer_user"
            " GROUP BY customer_id) u ON u.customer_id = r.customer_id",
        )
        found = {as_date(r["week_start"]): r for r in rows}
        points = []
        for n in range(count):
            week = first + timedelta(weeks=n)
            r = found.get(week)
            if r is None:
                points.append(UsagePoint(week, 0, 0, 0, 0, 0))
                continue
            active = int(r["active"])
            points.append(UsagePoint(week, active, int(r["none"]),
                                     int(r["low"]), int(r["medium"]), int(r["high"])))  # fmt: skip
        return points

    async def quality_trend(self, weeks: int | None) -> list[tuple[date, QualityFigures]]:
        first, count = self._weeks(weeks)
        rows = await self._rows(
            "calling_weekly_customer",
            "r.week_start, SUM(r.quality_legs) AS legs, SUM(r.poor_legs) AS poor",
            "AND r.week_start >= ? AND r.week_start <= ? GROUP BY r.week_start",
            (first, self.week_start),
        )
        found = {as_date(r["week_start"]): r for r in rows}
        return [
            (week, QualityFigures(int(found[week]["legs"]), int(found[week]["poor"]))
             if week in found else QualityFigures(0, 0))
            for week in (first + timedelta(weeks=n) for n in range(count))
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
            "r.customer_id, r.total_calls, r.call_minutes, r.active_users,"
            " (SELECT p.total_calls FROM calling_weekly_customer p"
            "  WHERE p.customer_id = r.customer_id AND p.week_start = ?) AS previous_calls",
            "",
            "r.total_calls DESC, r.customer_id",
        ),
        "quality": (
            "calling_weekly_customer",
            "r.customer_id, r.quality_legs, r.poor_legs,"
            " r.poor_legs * 1.0 / r.quality_legs AS poor_ratio",
            "AND r.quality_legs > 0",
            "poor_ratio DESC, r.poor_legs DESC, r.customer_id",
        ),
        "queue": (
            "calling_weekly_queue",
            "r.customer_id, r.total_calls, r.answered_calls, r.abandoned_calls,"
            " r.timed_out_calls, r.overflowed_calls, r.transferred_calls,"
            " r.answer_wait_seconds, r.abandon_wait_seconds,"
            " r.abandoned_calls * 1.0 / r.total_calls AS abandoned_ratio",
            "AND r.total_calls > 0",
            "abandoned_ratio DESC, r.customer_id",
        ),
    }

    async def customer_list(self, name: str, offset: int, limit: int) -> tuple[int, list[dict]]:
        """(total count, one page) of a per-customer list of the week."""
        table, columns, where, order = self.LISTS[name]
        scope = self._scope()
        # The usage list's columns hold a parameter of their own: last week's start.
        head = [self.week_start - timedelta(weeks=1)] if name == "usage" else []
        base = (
            f"FROM {table} r JOIN customer c ON c.id = r.customer_id"
            f" WHERE ({scope.text}) AND r.week_start = ? {where}"
        )
        [count] = await fetch_all(f"SELECT COUNT(*) AS n {base}", [*scope.params, self.week_start])
        rows = await fetch_all(
            f"SELECT {columns} {base} ORDER BY {order} LIMIT ? OFFSET ?",
            [*head, *scope.params, self.week_start, limit, offset],
        )
        return int(count["n"]), rows


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
