"""Subscription analytics (SPEC.md): the top KPIs, the Meetings/Calling toggle,
the license distribution trend and the five sections.

Everything is aggregated in SQL, set-wise, and each figure is read once per
request. One CTE (`facts`, materialized) gives, per subscription or trial in
the viewer's scope, the figures of its license lines of the chosen family and
of its latest weekly snapshots; a *pass* is one statement that computes it
once and answers, from it, every section total, page of rows and
low-assignment customer the request asks for (`Plan`), as branches of one
UNION ALL. The peer-group medians of the low-assignment rule are a CTE of the
same statement, over every partner's subscriptions, with window functions (no
percentile_cont needed, so SQLite and PostgreSQL run the same SQL).

The top KPI's low-assignment customers are of both families, the toggle's
and the other one. The other family's need no per-subscription figures of the
viewer's own: a low-assignment subscription is one of the peers (every
partner's subscriptions in a holding status with lines of the family), so they
come from the grouping that ranks the peers, joined to the viewer's customers
(`_low_pass`), with no second grouping of the viewer's lines.

A request that says what it wants up front (`SubscriptionAnalytics.load`)
costs a fixed number of statements: the toggle's pass, one low-assignment
statement for the other family (when it asks for the top KPIs), one for the
customer KPIs and one per trend; a figure asked for later, that the plan did
not name, costs a pass of its own (same answer, more work).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.db import as_date, as_datetime, fetch_all
from app.domain.access import Viewer, customer_scope
from app.domain.errors import InvalidArgument
from app.domain.pagination import (
    DATE,
    DATETIME,
    ID,
    INTEGER,
    NUMBER,
    Keyset,
    Page,
    page_size,
)
from app.domain.sql import Sql, in_list
from app.domain.statuses import HOLDING, StatusClock
from app.models.enums import FAMILY_LICENSE_TYPES, ProductFamily, Region

WINDOW_DAYS = 90
LOW_ASSIGNMENT_MIN_AGE_DAYS = 30
MAX_TREND_WEEKS = 52
SIZE_BANDS = ((1, 50), (51, 250), (251, 1000), (1001, None))
SECTIONS = ("recently_added", "expiring", "renewing", "low_assignment", "over_limit")


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


def medians_sql(family: ProductFamily) -> str:
    """CTEs `peers` (every partner's subscriptions and trials in a holding status
    with license lines of `family`, one row each: its customer, when it was added,
    its size band and its assignment ratio), `ranked` and `medians` (the median
    ratio of each band's peer group)."""
    return f"""
peers AS (
  SELECT s.id AS sub_id, s.customer_id, s.added_at,
         {_band_sql("SUM(l.quantity)")} AS band,
         SUM(l.assigned) * 1.0 / SUM(l.quantity) AS ratio
  FROM subscription s JOIN license_line l ON l.subscription_id = s.id
  WHERE s.status IN {HOLDING} AND l.license_type IN ({_types(family)})
  GROUP BY s.id HAVING SUM(l.quantity) > 0
),
ranked AS (
  SELECT band, ratio,
         ROW_NUMBER() OVER (PARTITION BY band ORDER BY ratio) AS rn,
         COUNT(*) OVER (PARTITION BY band) AS cnt
  FROM peers
),
medians AS (
  SELECT band, AVG(ratio) AS median FROM ranked
  WHERE rn = (cnt + 1) / 2 OR rn = (cnt + 2) / 2
  GROUP BY band
)"""


def low_peer_condition(added_by: datetime) -> Sql:
    """The low-assignment rule on a row `p` of `peers` joined to `medians` (SPEC.md):
    added by `added_by` (LOW_ASSIGNMENT_MIN_AGE_DAYS ago) and below half its band's
    median, compared as DOUBLE PRECISION on both engines."""
    return Sql(
        "p.added_at <= ?"
        " AND CAST(p.ratio AS DOUBLE PRECISION) < 0.5 * CAST(medians.median AS DOUBLE PRECISION)",
        (added_by,),
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

    @property
    def assignment_pct(self) -> float:
        """assigned / total licenses, in percent."""
        return pct(self.assigned, self.total)

    @property
    def usage_pct(self) -> float:
        """used (last 7 days) / total licenses, in percent."""
        return pct(self.used, self.total)

    @property
    def average_overage(self) -> float:
        """Overage licenses per customer of the section, to one decimal."""
        return round(self.overage / self.customers, 1) if self.customers else 0.0


@dataclass(frozen=True, slots=True)
class Row:
    """One subscription or trial of a section, with its family figures and the
    figures of its row computed on the request's day."""

    id: int  # the subscription's key: the last value of every section's order
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
    ratio: float  # assigned / total (0 without licenses): the low-assignment order
    days_since_added: int
    months_since_added: int
    days_remaining: int  # to the end date (0 without one)
    months_remaining: int | None  # None without an end date
    assigned_pct: float
    used_pct: float


@dataclass(frozen=True)
class PageKey:
    """One page of a section's rows: `size` rows past `after` (the order values of
    the edge a cursor names; None: from the start), in the section's order."""

    section: str
    after: tuple[Any, ...] | None
    size: int


@dataclass(frozen=True)
class Plan:
    """What a request will ask for: `load` answers all of it in a few statements."""

    kpis: bool = False
    trend_weeks: frozenset[int] = frozenset()
    totals: frozenset[str] = frozenset()
    pages: frozenset[PageKey] = frozenset()


# The one row shape of a pass: every branch of its UNION ALL gives these columns,
# a column it has no value for as a NULL of the column's type (PostgreSQL types a
# bare NULL of a subquery as text, which no date or number column unites with).
PASS_COLUMNS = {
    "part": "TEXT",
    "customer_id": "BIGINT",
    "sub_id": "BIGINT",
    "code": "TEXT",
    "kind": "TEXT",
    "added_at": "TIMESTAMPTZ",
    "end_date": "DATE",
    "auto_renew": "BOOLEAN",
    "total": "BIGINT",
    "assigned": "BIGINT",
    "used7": "BIGINT",
    "used90": "BIGINT",
    "available": "BIGINT",
    "overage": "BIGINT",
    "assignment_change": "BIGINT",
    "usage_change": "BIGINT",
    "ratio": "DOUBLE PRECISION",
    "subscriptions": "BIGINT",
    "customers": "BIGINT",
}
ROW_COLUMNS = (
    "customer_id", "sub_id", "code", "kind", "added_at", "end_date", "auto_renew", "total",
    "assigned", "used7", "used90", "available", "overage", "assignment_change", "usage_change",
    "ratio",
)  # fmt: skip


def _select(values: dict[str, str]) -> str:
    """The select list of one branch of a pass: `values` by column, NULL elsewhere."""
    unknown = set(values) - set(PASS_COLUMNS)
    assert not unknown, unknown
    return ", ".join(
        f"{values.get(name, f'CAST(NULL AS {kind})')} AS {name}"
        for name, kind in PASS_COLUMNS.items()
    )


@dataclass(frozen=True)
class SectionOrder:
    """A section's order as a keyset: its SQL expressions over `facts` and the
    same values of a Row (the subscription's id last: a total order). A mixed
    order (most overage first, then by id) negates the value that goes the other
    way, so one direction serves the whole key."""

    keyset: Keyset
    columns: tuple[str, ...]
    key: Callable[[Row], tuple[Any, ...]]

    def in_order(self, rows: Iterable[Row]) -> list[Row]:
        return sorted(rows, key=self.key, reverse=self.keyset.descending)


# The sections' orders (also the kinds of their cursors: a cursor of one section is
# refused by every other).
ORDERS = {
    "recently_added": SectionOrder(
        Keyset("recently_added", (DATETIME, ID), descending=True),
        ("added_at", "sub_id"),
        lambda r: (r.added_at, r.id),
    ),
    "expiring": SectionOrder(
        Keyset("expiring", (DATE, ID)), ("end_date", "sub_id"), lambda r: (r.end_date, r.id)
    ),
    "renewing": SectionOrder(
        Keyset("renewing", (DATE, ID)), ("end_date", "sub_id"), lambda r: (r.end_date, r.id)
    ),
    "low_assignment": SectionOrder(
        Keyset("low_assignment", (NUMBER, ID)), ("ratio", "sub_id"), lambda r: (r.ratio, r.id)
    ),
    "over_limit": SectionOrder(
        Keyset("over_limit", (INTEGER, ID)),
        ("-overage", "sub_id"),
        lambda r: (-r.overage, r.id),
    ),
}


def page_key(section: str, first: int | None, after: str | None) -> PageKey:
    """The page of `section` that `rows(first, after)` asks for (InvalidArgument
    for a page size out of range or a cursor that is not one of the section's)."""
    size = page_size(first)
    return PageKey(section, ORDERS[section].keyset.after(after), size)


@dataclass
class SubscriptionAnalytics:
    """The analytics of one request: viewer, toggle, region and clock fixed."""

    viewer: Viewer
    family: ProductFamily
    region: Region | None
    clock: StatusClock
    # What this request has read: each figure once (the toggle's family only,
    # except the low-assignment customers, which the top KPI needs of both).
    _totals: dict[str, SectionTotals] = field(default_factory=dict)
    # Each page read: at most size + 1 rows (the one more says a next page follows).
    _pages: dict[PageKey, list[Row]] = field(default_factory=dict)
    _low: dict[ProductFamily, frozenset[int]] = field(default_factory=dict)
    _kpis: Kpis | None = None
    _trends: dict[int, list[TrendPoint]] = field(default_factory=dict)

    # ------------------------------------------------------------- helpers ----

    @property
    def today(self) -> date:
        return self.clock.today

    def _customers(self) -> Sql:
        where = customer_scope(self.viewer)
        if self.region is not None:
            where = where & Sql("c.region = ?", (self.region.value,))
        return where

    def _window(self) -> tuple[date, date]:
        return self.today, self.today + timedelta(days=WINDOW_DAYS)

    def _facts(self, family: ProductFamily, with_medians: bool, with_snapshots: bool) -> Sql:
        """WITH ... facts: one row per subscription/trial of the viewer's customers
        that has license lines of `family`, read set-wise: the lines in one join;
        with `with_snapshots`, the snapshots since last week in one range (this
        week's, last week's and, nearly always, the latest) and, for a subscription
        with none since, its earlier ones by its key; with `with_medians`, the
        median ratio of each row's peer group."""
        types = _types(family)
        this_week = self.today - timedelta(days=self.today.weekday())
        last_week = this_week - timedelta(days=7)
        customers = self._customers()
        parts = [
            Sql(
                f"""
fam AS (
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
)""",
                customers.params,
            )
        ]
        figures = ["0 AS used7", "0 AS used90", "0 AS assignment_change", "0 AS usage_change"]
        joins = []
        if with_snapshots:
            parts.append(
                Sql(
                    f"""
recent AS (
  SELECT ls.subscription_id AS sub_id, ls.week_start, ls.assigned, ls.used_7d, ls.used_90d
  FROM license_snapshot ls JOIN fam ON fam.sub_id = ls.subscription_id
  WHERE ls.license_type IN ({types}) AND ls.week_start >= ? AND ls.week_start <= ?
),
weeks AS (
  SELECT sub_id,
         SUM(CASE WHEN week_start = ? THEN assigned ELSE 0 END) AS a_this,
         SUM(CASE WHEN week_start = ? THEN assigned ELSE 0 END) AS a_last,
         SUM(CASE WHEN week_start = ? THEN used_7d ELSE 0 END) AS u_this,
         SUM(CASE WHEN week_start = ? THEN used_7d ELSE 0 END) AS u_last,
         MAX(CASE WHEN week_start = ? THEN 1 ELSE 0 END) AS has_this,
         MAX(CASE WHEN week_start = ? THEN 1 ELSE 0 END) AS has_last,
         MAX(week_start) AS newest
  FROM recent
  GROUP BY sub_id
),
earlier AS (
  SELECT ls.subscription_id AS sub_id, ls.week_start, ls.used_7d, ls.used_90d
  FROM license_snapshot ls
  WHERE ls.subscription_id IN (
          SELECT sub_id FROM fam WHERE sub_id NOT IN (SELECT sub_id FROM weeks))
    AND ls.license_type IN ({types}) AND ls.week_start < ?
),
older AS (
  SELECT sub_id, MAX(week_start) AS newest FROM earlier GROUP BY sub_id
),
latest AS (
  SELECT r.sub_id, SUM(r.used_7d) AS used7, SUM(r.used_90d) AS used90
  FROM recent r JOIN weeks w ON w.sub_id = r.sub_id AND w.newest = r.week_start
  GROUP BY r.sub_id
  UNION ALL
  SELECT e.sub_id, SUM(e.used_7d) AS used7, SUM(e.used_90d) AS used90
  FROM earlier e JOIN older o ON o.sub_id = e.sub_id AND o.newest = e.week_start
  GROUP BY e.sub_id
)""",
                    (last_week, self.today, *(this_week, last_week) * 3, last_week),
                )
            )
            figures = [
                "COALESCE(latest.used7, 0) AS used7",
                "COALESCE(latest.used90, 0) AS used90",
                "CASE WHEN weeks.has_this = 1 AND weeks.has_last = 1"
                " THEN weeks.a_this - weeks.a_last ELSE 0 END AS assignment_change",
                "CASE WHEN weeks.has_this = 1 AND weeks.has_last = 1"
                " THEN weeks.u_this - weeks.u_last ELSE 0 END AS usage_change",
            ]
            joins += [
                "LEFT JOIN weeks ON weeks.sub_id = fam.sub_id",
                "LEFT JOIN latest ON latest.sub_id = fam.sub_id",
            ]
        if with_medians:
            parts.append(Sql(medians_sql(family)))
            joins.append(f"LEFT JOIN medians ON medians.band = {_band_sql('fam.total')}")
        parts.append(
            Sql(
                f"""
facts AS MATERIALIZED (
  SELECT fam.*, {", ".join(figures)},
         CASE WHEN fam.total > 0 THEN CAST(fam.assigned AS DOUBLE PRECISION) / fam.total
              ELSE 0 END AS ratio,
         {"medians.median" if with_medians else "NULL"} AS median
  FROM fam
  {" ".join(joins)}
)
"""
            )
        )
        return Sql(
            "WITH " + ",".join(p.text for p in parts), tuple(v for p in parts for v in p.params)
        )

    # ------------------------------------------------------ section filters ----

    def _condition(self, section: str) -> Sql:
        """The section's rows among `facts` (SPEC.md)."""
        if section == "recently_added":
            return Sql("added_at >= ?", (self.clock.now - timedelta(days=WINDOW_DAYS),))
        if section == "expiring":
            return Sql(
                "status = 'ACTIVE' AND (kind = 'TRIAL' OR NOT auto_renew)"
                " AND end_date >= ? AND end_date <= ?",
                self._window(),
            )
        if section == "renewing":
            return Sql(
                "kind = 'SUBSCRIPTION' AND status = 'ACTIVE' AND auto_renew"
                " AND end_date >= ? AND end_date <= ?",
                self._window(),
            )
        if section == "low_assignment":
            # Below half the peer group's median; compared as DOUBLE PRECISION on
            # both engines (a band without peers has no median: nothing is low).
            return Sql(
                f"status IN {HOLDING} AND total > 0 AND added_at <= ? AND median IS NOT NULL"
                " AND CAST(ratio AS DOUBLE PRECISION) < 0.5 * CAST(median AS DOUBLE PRECISION)",
                (self.clock.now - timedelta(days=LOW_ASSIGNMENT_MIN_AGE_DAYS),),
            )
        if section == "over_limit":
            return Sql(f"status IN {HOLDING} AND overage > 0")
        raise ValueError(section)

    # ---------------------------------------------------------------- passes ----

    async def _pass(
        self,
        family: ProductFamily,
        totals: Iterable[str] = (),
        pages: Iterable[PageKey] = (),
        low: bool = False,
    ) -> None:
        """One statement over `family`'s facts: the totals of the sections named,
        the pages named and (with `low`) the customers with a low-assignment
        subscription; stores them on this request."""
        totals, pages = sorted(set(totals)), sorted(set(pages), key=_page_sort)
        assert family is self.family or not (totals or pages), "sections follow the toggle"
        if not (totals or pages or low):
            return
        if not (totals or pages):
            await self._low_pass(family)
            return
        with_medians = (
            low or "low_assignment" in totals or any(p.section == "low_assignment" for p in pages)
        )
        facts = self._facts(family, with_medians, with_snapshots=True)
        branches: list[Sql] = []
        for section in totals:
            where = self._condition(section)
            aggregates = {
                "part": f"'T{SECTIONS.index(section)}'",
                "subscriptions": "COUNT(*)",
                "customers": "COUNT(DISTINCT customer_id)",
                "total": "COALESCE(SUM(total), 0)",
                "assigned": "COALESCE(SUM(assigned), 0)",
                "used7": "COALESCE(SUM(used7), 0)",
                "available": "COALESCE(SUM(available), 0)",
                "overage": "COALESCE(SUM(overage), 0)",
            }
            branches.append(
                Sql(f"SELECT {_select(aggregates)} FROM facts WHERE {where.text}", where.params)
            )
        for n, page in enumerate(pages):
            order = ORDERS[page.section]
            where = self._condition(page.section) & order.keyset.sql_after(
                order.columns, page.after
            )
            columns = {"part": f"'P{n}'", **{name: name for name in ROW_COLUMNS}}
            branches.append(
                Sql(
                    f"SELECT * FROM (SELECT {_select(columns)} FROM facts WHERE {where.text}"
                    f" ORDER BY {order.keyset.sql_order(order.columns)} LIMIT ?) AS page{n}",
                    (*where.params, page.size + 1),
                )
            )
        if low:
            where = self._condition("low_assignment")
            columns = {"part": "'L'", "customer_id": "customer_id"}
            select = f"SELECT DISTINCT {_select(columns)} FROM facts WHERE {where.text}"
            branches.append(Sql(select, where.params))
        rows = await fetch_all(
            facts.text + "\nUNION ALL\n".join(b.text for b in branches),
            [*facts.params, *(v for b in branches for v in b.params)],
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            found.setdefault(r["part"], []).append(r)
        for section in totals:
            [t] = found[f"T{SECTIONS.index(section)}"]
            self._totals[section] = SectionTotals(
                subscriptions=int(t["subscriptions"]),
                customers=int(t["customers"]),
                total=int(t["total"]),
                assigned=int(t["assigned"]),
                used=int(t["used7"]),
                available=int(t["available"]),
                overage=int(t["overage"]),
            )
        for n, page in enumerate(pages):
            rows_ = (_row(r, self.today) for r in found.get(f"P{n}", []))
            self._pages[page] = ORDERS[page.section].in_order(rows_)
        if low:
            self._low[family] = frozenset(int(r["customer_id"]) for r in found.get("L", []))

    async def _low_pass(self, family: ProductFamily) -> None:
        """The customers with a low-assignment subscription of `family` (what the
        top KPI needs of the family the toggle does not show), from one grouping of
        every partner's subscriptions: a low-assignment subscription is a peer (a
        holding status, licenses of the family) of one of the viewer's customers,
        added long enough ago, below half its band's median. No per-customer
        grouping of the viewer's lines and no snapshot: the sections' figures are
        a full pass's."""
        customers = self._customers()
        low = low_peer_condition(self.clock.now - timedelta(days=LOW_ASSIGNMENT_MIN_AGE_DAYS))
        rows = await fetch_all(
            f"""WITH {medians_sql(family)}
SELECT DISTINCT p.customer_id
FROM peers p
JOIN medians ON medians.band = p.band
JOIN customer c ON c.id = p.customer_id
WHERE ({customers.text}) AND {low.text}""",
            [*customers.params, *low.params],
        )
        self._low[family] = frozenset(int(r["customer_id"]) for r in rows)

    async def load(self, plan: Plan) -> None:
        """Read everything `plan` names: one pass over the toggle's family, for
        the top KPIs one low-assignment statement for the other family and one
        for the customer KPIs, and one statement per trend. A trend of an invalid
        length is left for `trend` to refuse."""
        sections = {
            "totals": [s for s in plan.totals if s not in self._totals],
            "pages": [p for p in plan.pages if p not in self._pages],
        }
        low = plan.kpis and self._kpis is None
        await self._pass(self.family, **sections, low=low and self.family not in self._low)
        if low:
            await self.kpis()
        for weeks in sorted(plan.trend_weeks):
            if 1 <= weeks <= MAX_TREND_WEEKS:
                await self.trend(weeks)

    # ------------------------------------------------------------- queries ----

    async def section_totals(self, section: str) -> SectionTotals:
        """A section's aggregate (its KPIs and row count)."""
        if section not in self._totals:
            await self._pass(self.family, totals=[section])
        return self._totals[section]

    async def section_page(self, section: str, first: int | None, after: str | None) -> Page[Row]:
        """One page of a section's rows (`first` of them past the cursor `after`),
        with the section's row count: in one pass when neither is read yet."""
        key = page_key(section, first, after)
        await self._pass(
            self.family,
            totals=[section] if section not in self._totals else [],
            pages=[key] if key not in self._pages else [],
        )
        return ORDERS[section].keyset.page_of(
            self._pages[key],
            key.size,
            ORDERS[section].key,
            total=self._totals[section].subscriptions,
            after=key.after,
        )

    async def low_customers(self, family: ProductFamily) -> frozenset[int]:
        """Customers with a subscription in the low-assignment section of `family`."""
        if family not in self._low:
            await self._pass(family, low=True)
        return self._low[family]

    async def kpis(self) -> Kpis:
        """The top KPIs: customers with Webex Calling or Meetings, whatever the toggle.
        One pass over the customers' subscriptions and lines, grouped by customer."""
        if self._kpis is not None:
            return self._kpis
        customers = self._customers()
        start, end = self._window()
        [row] = await fetch_all(
            f"""SELECT COUNT(*) AS total, SUM(expire) AS expire, SUM(renew) AS renew,
       SUM(over_limit) AS over_limit
FROM (
  SELECT s.customer_id,
    MAX(CASE WHEN l.product IN ('CALLING', 'MEETINGS') THEN 1 ELSE 0 END) AS population,
    MAX(CASE WHEN s.status = 'ACTIVE' AND (s.kind = 'TRIAL' OR NOT s.auto_renew)
        AND s.end_date >= ? AND s.end_date <= ? THEN 1 ELSE 0 END) AS expire,
    MAX(CASE WHEN s.kind = 'SUBSCRIPTION' AND s.status = 'ACTIVE' AND s.auto_renew
        AND s.end_date >= ? AND s.end_date <= ? THEN 1 ELSE 0 END) AS renew,
    MAX(CASE WHEN s.status IN {HOLDING} AND l.assigned > l.quantity
        THEN 1 ELSE 0 END) AS over_limit
  FROM customer c
  JOIN subscription s ON s.customer_id = c.id
  LEFT JOIN license_line l ON l.subscription_id = s.id
  WHERE ({customers.text})
  GROUP BY s.customer_id
) per_customer
WHERE population = 1""",
            [start, end, start, end, *customers.params],
        )
        low: set[int] = set()
        for family in ProductFamily:
            low |= await self.low_customers(family)
        # Low-assignment customers have Calling or Meetings lines: all are counted.
        self._kpis = Kpis(
            total_customers=int(row["total"] or 0),
            about_to_expire=int(row["expire"] or 0),
            about_to_renew=int(row["renew"] or 0),
            low_license_assignment=len(low),
            over_license_limit=int(row["over_limit"] or 0),
        )
        return self._kpis

    async def trend(self, weeks: int) -> list[TrendPoint]:
        """Weekly total, assigned and used licenses of the family, oldest first."""
        if not 1 <= weeks <= MAX_TREND_WEEKS:
            raise InvalidArgument(f"`weeks` must be between 1 and {MAX_TREND_WEEKS} (got {weeks})")
        if weeks in self._trends:
            return self._trends[weeks]
        this_week = self.today - timedelta(days=self.today.weekday())
        mondays = [this_week - timedelta(weeks=n) for n in reversed(range(weeks))]
        customers = self._customers()
        # The weeks as a list, not a range: a plan PostgreSQL caches for the statement
        # (after five runs) then still knows they hold most snapshots and joins them
        # by hash to the customers' subscriptions.
        week_in = in_list("ls.week_start", mondays)
        rows = await fetch_all(
            f"""SELECT ls.week_start, SUM(ls.quantity) AS total, SUM(ls.assigned) AS assigned,
       SUM(ls.used_7d) AS used
FROM license_snapshot ls
JOIN subscription s ON s.id = ls.subscription_id
JOIN customer c ON c.id = s.customer_id
WHERE ({customers.text}) AND ls.license_type IN ({_types(self.family)}) AND {week_in.text}
GROUP BY ls.week_start""",
            [*customers.params, *week_in.params],
        )
        found = {as_date(r["week_start"]): r for r in rows}
        points = []
        for week in mondays:
            r = found.get(week)
            points.append(
                TrendPoint(week, int(r["total"]), int(r["assigned"]), int(r["used"]))
                if r
                else TrendPoint(week, 0, 0, 0)
            )
        self._trends[weeks] = points
        return points


def _page_sort(page: PageKey) -> tuple[int, bool, str, int]:
    """Pages in a fixed order (so is the statement's text)."""
    return SECTIONS.index(page.section), page.after is not None, repr(page.after), page.size


def _row(r: dict[str, Any], today: date) -> Row:
    added_at = as_datetime(r["added_at"])
    end_date = as_date(r["end_date"]) if r["end_date"] is not None else None
    total, assigned, used = int(r["total"]), int(r["assigned"]), int(r["used7"])
    return Row(
        id=int(r["sub_id"]),
        customer_id=int(r["customer_id"]),
        subscription_id=r["code"],
        kind=r["kind"],
        added_at=added_at,
        end_date=end_date,
        auto_renew=bool(r["auto_renew"]),
        total=total,
        assigned=assigned,
        used=used,
        used_90d=int(r["used90"]),
        available=int(r["available"]),
        overage=int(r["overage"]),
        assignment_change=int(r["assignment_change"]),
        usage_change=int(r["usage_change"]),
        ratio=float(r["ratio"]),
        days_since_added=(today - added_at.date()).days,
        months_since_added=months_between(added_at.date(), today),
        days_remaining=(end_date - today).days if end_date else 0,
        months_remaining=months_between(today, end_date) if end_date else None,
        assigned_pct=pct(assigned, total),
        used_pct=pct(used, total),
    )
