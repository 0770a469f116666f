"""Subscription analytics (SPEC.md): the top KPIs, the Meetings/Calling toggle,
the license distribution trend and the five sections.

Everything is aggregated in SQL. One CTE (`facts`) gives, per subscription or
trial in the viewer's scope, the figures of its license lines of the chosen
family and of its latest weekly snapshots; each section is a filtered
aggregate (KPIs) and a paged, ordered select (rows) over it. The peer-group
medians of the low-assignment rule are computed once per request, over every
partner's subscriptions, with window functions (no percentile_cont needed, so
SQLite and PostgreSQL run the same SQL).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.db import as_date, as_datetime, fetch_all
from app.domain.access import Viewer, customer_scope
from app.domain.errors import InvalidArgument
from app.domain.sql import Sql
from app.domain.statuses import HOLDING, StatusClock
from app.models.enums import FAMILY_LICENSE_TYPES, ProductFamily, Region

WINDOW_DAYS = 90
LOW_ASSIGNMENT_MIN_AGE_DAYS = 30
MAX_TREND_WEEKS = 52
SIZE_BANDS = ((1, 50), (51, 250), (251, 1000), (1001, None))


def pct(part: float, whole: float) -> float:
    """part / whole in percent, rounded to one decimal; 0 when whole is 0."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def _types(family: ProductFamily) -> str:
    return ", ".join(f"'{t.value}'" for t in FAMILY_LICENSE_TYPES[family])


def _band_sql(total: str) -> str:
    return (
        f"CASE WHEN {total} <= 50 THEN 1 WHEN {total} <= 250 THEN 2 "
        f"WHEN {total} <= 1000 THEN 3 ELSE 4 END"
    )


def months_between(start: date, end: date) -> int:
    """Whole calendar months from start to end (negative when end is earlier)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return months


@dataclass(frozen=True)
class Kpis:
    total_customers: int
    about_to_expire: int
    about_to_renew: int
    low_license_assignment: int
    over_license_limit: int


@dataclass(frozen=True)
class TrendPoint:
    week_start: date
    total: int
    assigned: int
    used: int


@dataclass(frozen=True)
class SectionTotals:
    """A section's aggregate: what its KPIs are made of."""

    subscriptions: int
    customers: int
    total: int
    assigned: int
    used: int
    available: int
    overage: int


@dataclass(frozen=True)
class Row:
    """One subscription or trial of a section, with its family figures."""

    customer_id: int
    subscription_id: str
    kind: str
    added_at: datetime
    end_date: date | None
    auto_renew: bool
    total: int
    assigned: int
    used: int
    used_90d: int
    available: int
    # Sum over the row's lines of the family of max(assigned - quantity, 0) (SPEC.md:
    # a subscription's overage); the over-limit KPIs add these up.
    overage: int
    assignment_change: int
    usage_change: int


@dataclass
class SubscriptionAnalytics:
    """The analytics of one request: viewer, toggle, region and clock fixed."""

    viewer: Viewer
    family: ProductFamily
    region: Region | None
    clock: StatusClock
    # Per-request caches of in-flight work: concurrent resolvers share one query.
    _medians: dict[ProductFamily, asyncio.Future] = field(default_factory=dict)
    _totals: dict[str, asyncio.Future] = field(default_factory=dict)

    # ------------------------------------------------------------- helpers ----

    @property
    def today(self) -> date:
        return self.clock.today

    def _customers(self) -> Sql:
        where = customer_scope(self.viewer)
        if self.region is not None:
            where = where & Sql("c.region = ?", (self.region.value,))
        return where

    def _facts(self, family: ProductFamily) -> Sql:
        """WITH ... facts: one row per subscription/trial of the viewer's customers
        that has license lines of `family`."""
        types = _types(family)
        this_week = self.today - timedelta(days=self.today.weekday())
        last_week = this_week - timedelta(days=7)
        customers = self._customers()
        text = f"""
WITH fam AS (
  SELECT s.id AS sub_id, s.customer_id, s.subscription_id AS code, s.kind, s.status,
         s.end_date, s.auto_renew, s.added_at,
         SUM(l.quantity) AS total, SUM(l.assigned) AS assigned,
         SUM(CASE WHEN l.quantity > l.assigned
             THEN l.quantity - l.assigned ELSE 0 END) AS available,
         SUM(CASE WHEN l.assigned > l.quantity
             THEN l.assigned - l.quantity ELSE 0 END) AS overage
  FROM customer c
  JOIN subscription s ON s.customer_id = c.id
  JOIN license_line l ON l.subscription_id = s.id
  WHERE ({customers.text}) AND l.license_type IN ({types})
  GROUP BY s.id, s.customer_id, s.subscription_id, s.kind, s.status, s.end_date,
           s.auto_renew, s.added_at
),
weeks AS (
  SELECT ls.subscription_id AS sub_id,
         SUM(CASE WHEN ls.week_start = ? THEN ls.assigned ELSE 0 END) AS a_this,
         SUM(CASE WHEN ls.week_start = ? THEN ls.assigned ELSE 0 END) AS a_last,
         SUM(CASE WHEN ls.week_start = ? THEN ls.used_7d ELSE 0 END) AS u_this,
         SUM(CASE WHEN ls.week_start = ? THEN ls.used_7d ELSE 0 END) AS u_last,
         MAX(CASE WHEN ls.week_start = ? THEN 1 ELSE 0 END) AS has_this,
         MAX(CASE WHEN ls.week_start = ? THEN 1 ELSE 0 END) AS has_last
  FROM license_snapshot ls
  WHERE ls.subscription_id IN (SELECT sub_id FROM fam) AND ls.license_type IN ({types})
    AND ls.week_start IN (?, ?)
  GROUP BY ls.subscription_id
),
newest AS (
  SELECT subscription_id AS sub_id, MAX(week_start) AS week_start
  FROM license_snapshot
  WHERE subscription_id IN (SELECT sub_id FROM fam) AND license_type IN ({types})
    AND week_start <= ?
  GROUP BY subscription_id
),
latest AS (
  SELECT ls.subscription_id AS sub_id, SUM(ls.used_7d) AS used7, SUM(ls.used_90d) AS used90
  FROM license_snapshot ls
  JOIN newest n ON n.sub_id = ls.subscription_id AND n.week_start = ls.week_start
  WHERE ls.license_type IN ({types})
  GROUP BY ls.subscription_id
),
facts AS (
  SELECT fam.*,
         COALESCE(latest.used7, 0) AS used7,
         COALESCE(latest.used90, 0) AS used90,
         CASE WHEN weeks.has_this = 1 AND weeks.has_last = 1
              THEN weeks.a_this - weeks.a_last ELSE 0 END AS assignment_change,
         CASE WHEN weeks.has_this = 1 AND weeks.has_last = 1
              THEN weeks.u_this - weeks.u_last ELSE 0 END AS usage_change,
         {_band_sql("fam.total")} AS band,
         CASE WHEN fam.total > 0 THEN fam.assigned * 1.0 / fam.total ELSE 0 END AS ratio
  FROM fam
  LEFT JOIN weeks ON weeks.sub_id = fam.sub_id
  LEFT JOIN latest ON latest.sub_id = fam.sub_id
)
"""
        params = (
            *customers.params,
            this_week,
            last_week,
            this_week,
            last_week,
            this_week,
            last_week,
            this_week,
            last_week,
            self.today,
        )
        return Sql(text, params)

    # ------------------------------------------------------ section filters ----

    def _recently_added(self) -> Sql:
        return Sql("added_at >= ?", (self.clock.now - timedelta(days=WINDOW_DAYS),))

    def _window(self) -> tuple[date, date]:
        return self.today, self.today + timedelta(days=WINDOW_DAYS)

    def _expiring(self) -> Sql:
        return Sql(
            "status = 'ACTIVE' AND (kind = 'TRIAL' OR NOT auto_renew)"
            " AND end_date >= ? AND end_date <= ?",
            self._window(),
        )

    def _renewing(self) -> Sql:
        return Sql(
            "kind = 'SUBSCRIPTION' AND status = 'ACTIVE' AND auto_renew"
            " AND end_date >= ? AND end_date <= ?",
            self._window(),
        )

    def _over_limit(self) -> Sql:
        return Sql(f"status IN {HOLDING} AND overage > 0")

    async def _low(self, family: ProductFamily) -> Sql:
        medians = await self.medians(family)
        if not medians:
            return Sql("1 = 0")
        cases = " ".join(f"WHEN {band} THEN CAST(? AS DOUBLE PRECISION)" for band in medians)
        return Sql(
            f"status IN {HOLDING} AND total > 0 AND added_at <= ?"
            f" AND ratio < 0.5 * (CASE band {cases} ELSE 0 END)",
            (self.clock.now - timedelta(days=LOW_ASSIGNMENT_MIN_AGE_DAYS), *medians.values()),
        )

    async def medians(self, family: ProductFamily) -> dict[int, float]:
        """Median assignment ratio per size band over every partner's holding
        subscriptions and trials of the family (computed once per request)."""
        if family not in self._medians:
            self._medians[family] = asyncio.ensure_future(self._compute_medians(family))
        return await self._medians[family]

    async def _compute_medians(self, family: ProductFamily) -> dict[int, float]:
        total = "SUM(l.quantity)"
        rows = await fetch_all(
            f"""
WITH peers AS (
  SELECT {_band_sql(total)} AS band, SUM(l.assigned) * 1.0 / {total} AS ratio
  FROM subscription s JOIN license_line l ON l.subscription_id = s.id
  WHERE s.status IN {HOLDING} AND l.license_type IN ({_types(family)})
  GROUP BY s.id HAVING {total} > 0
),
ranked AS (
  SELECT band, ratio,
         ROW_NUMBER() OVER (PARTITION BY band ORDER BY ratio) AS rn,
         COUNT(*) OVER (PARTITION BY band) AS cnt
  FROM peers
)
SELECT band, AVG(ratio) AS median FROM ranked
WHERE rn = (cnt + 1) / 2 OR rn = (cnt + 2) / 2
GROUP BY band ORDER BY band"""
        )
        return {int(r["band"]): float(r["median"]) for r in rows}

    async def section_condition(self, section: str) -> Sql:
        if section == "recently_added":
            return self._recently_added()
        if section == "expiring":
            return self._expiring()
        if section == "renewing":
            return self._renewing()
        if section == "low_assignment":
            return await self._low(self.family)
        if section == "over_limit":
            return self._over_limit()
        raise ValueError(section)

    # ------------------------------------------------------------- queries ----

    async def section_totals(self, section: str) -> SectionTotals:
        """A section's aggregate (its KPIs and row count), once per request."""
        if section not in self._totals:
            self._totals[section] = asyncio.ensure_future(self._section_totals(section))
        return await self._totals[section]

    async def _section_totals(self, section: str) -> SectionTotals:
        facts, where = self._facts(self.family), await self.section_condition(section)
        [row] = await fetch_all(
            f"""{facts.text}
SELECT COUNT(*) AS subscriptions, COUNT(DISTINCT customer_id) AS customers,
       COALESCE(SUM(total), 0) AS total, COALESCE(SUM(assigned), 0) AS assigned,
       COALESCE(SUM(used7), 0) AS used, COALESCE(SUM(available), 0) AS available,
       COALESCE(SUM(overage), 0) AS overage
FROM facts WHERE {where.text}""",
            [*facts.params, *where.params],
        )
        return SectionTotals(**{k: int(v) for k, v in row.items()})

    ORDERS = {
        "recently_added": "added_at DESC, sub_id DESC",
        "expiring": "end_date ASC, sub_id ASC",
        "renewing": "end_date ASC, sub_id ASC",
        "low_assignment": "ratio ASC, sub_id ASC",
        "over_limit": "overage DESC, sub_id ASC",
    }

    async def section_page(self, section: str, offset: int, limit: int) -> tuple[int, list[Row]]:
        """(rows in the section, one page of them)."""
        return (await self.section_totals(section)).subscriptions, await self.section_rows(
            section, offset, limit
        )

    async def section_rows(self, section: str, offset: int, limit: int) -> list[Row]:
        facts, where = self._facts(self.family), await self.section_condition(section)
        rows = await fetch_all(
            f"""{facts.text}
SELECT customer_id, code, kind, added_at, end_date, auto_renew, total, assigned, used7,
       used90, available, overage, assignment_change, usage_change
FROM facts WHERE {where.text}
ORDER BY {self.ORDERS[section]} LIMIT ? OFFSET ?""",
            [*facts.params, *where.params, limit, offset],
        )
        return [_row(r) for r in rows]

    async def kpis(self) -> Kpis:
        """The top KPIs: customers with Webex Calling or Meetings, whatever the toggle."""
        customers = self._customers()
        population = (
            "EXISTS (SELECT 1 FROM subscription ps JOIN license_line pl"
            " ON pl.subscription_id = ps.id WHERE ps.customer_id = c.id"
            " AND pl.product IN ('CALLING', 'MEETINGS'))"
        )
        start, end = self._window()
        [row] = await fetch_all(
            f"""SELECT COUNT(*) AS total,
  SUM(CASE WHEN EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
      AND s.status = 'ACTIVE' AND (s.kind = 'TRIAL' OR NOT s.auto_renew)
      AND s.end_date >= ? AND s.end_date <= ?) THEN 1 ELSE 0 END) AS expire,
  SUM(CASE WHEN EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
      AND s.kind = 'SUBSCRIPTION' AND s.status = 'ACTIVE' AND s.auto_renew
      AND s.end_date >= ? AND s.end_date <= ?) THEN 1 ELSE 0 END) AS renew,
  SUM(CASE WHEN EXISTS (SELECT 1 FROM subscription s JOIN license_line l
      ON l.subscription_id = s.id WHERE s.customer_id = c.id AND s.status IN {HOLDING}
      AND l.assigned > l.quantity) THEN 1 ELSE 0 END) AS over_limit
FROM customer c WHERE ({customers.text}) AND {population}""",
            [start, end, start, end, *customers.params],
        )
        low: set[int] = set()
        for family in ProductFamily:
            facts, where = self._facts(family), await self._low(family)
            rows = await fetch_all(
                f"{facts.text} SELECT DISTINCT customer_id FROM facts WHERE {where.text}",
                [*facts.params, *where.params],
            )
            low.update(r["customer_id"] for r in rows)
        return Kpis(
            total_customers=int(row["total"] or 0),
            about_to_expire=int(row["expire"] or 0),
            about_to_renew=int(row["renew"] or 0),
            low_license_assignment=len(low),
            over_license_limit=int(row["over_limit"] or 0),
        )

    async def trend(self, weeks: int) -> list[TrendPoint]:
        """Weekly total, assigned and used licenses of the family, oldest first."""
        if not 1 <= weeks <= MAX_TREND_WEEKS:
            raise InvalidArgument(f"`weeks` must be between 1 and {MAX_TREND_WEEKS} (got {weeks})")
        this_week = self.today - timedelta(days=self.today.weekday())
        first = this_week - timedelta(weeks=weeks - 1)
        customers = self._customers()
        rows = await fetch_all(
            f"""SELECT ls.week_start, SUM(ls.quantity) AS total, SUM(ls.assigned) AS assigned,
       SUM(ls.used_7d) AS used
FROM license_snapshot ls
JOIN subscription s ON s.id = ls.subscription_id
JOIN customer c ON c.id = s.customer_id
WHERE ({customers.text}) AND ls.license_type IN ({_types(self.family)})
  AND ls.week_start >= ? AND ls.week_start <= ?
GROUP BY ls.week_start""",
            [*customers.params, first, this_week],
        )
        found = {as_date(r["week_start"]): r for r in rows}
        points = []
        for n in range(weeks):
            week = first + timedelta(weeks=n)
            r = found.get(week)
            points.append(
                TrendPoint(week, int(r["total"]), int(r["assigned"]), int(r["used"]))
                if r
                else TrendPoint(week, 0, 0, 0)
            )
        return points


def _row(r: dict[str, Any]) -> Row:
    return Row(
        customer_id=r["customer_id"],
        subscription_id=r["code"],
        kind=r["kind"],
        added_at=as_datetime(r["added_at"]),
        end_date=as_date(r["end_date"]) if r["end_date"] is not None else None,
        auto_renew=bool(r["auto_renew"]),
        total=int(r["total"]),
        assigned=int(r["assigned"]),
        used=int(r["used7"]),
        used_90d=int(r["used90"]),
        available=int(r["available"]),
        overage=int(r["overage"]),
        assignment_change=int(r["assignment_change"]),
        usage_change=int(r["usage_change"]),
    )
