"""Customer statuses (SPEC.md: customer list), as SQL conditions on a customer
row aliased `c`, so that the list filters by status in the database and a page
computes its statuses in one query (one definition for both). "Today" is the
UTC date. The conditions read the customer's kept columns
(app/domain/customer_columns.py), not its subscriptions.

A customer can carry several statuses. "Subscription" means kind SUBSCRIPTION;
a trial is its Trial row (its TRIAL subscription mirrors it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.db import Row, fetch_records
from app.domain.sql import Sql, one_of
from app.models.enums import CustomerStatus

# Subscription states that still hold licenses (SPEC.md: overage, expiry).
HOLDING = "('ACTIVE', 'SUSPENDED', 'PENDING_SETUP')"
STATUS_ORDER: tuple[CustomerStatus, ...] = tuple(CustomerStatus)


@dataclass(frozen=True)
class StatusClock:
    """The instant statuses are computed for, and the settings' windows."""

    now: datetime
    expiring_soon_days: int = 30
    no_recent_activity_days: int = 30

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass(frozen=True)
class StatusWindows:
    """The settings' windows (expiring soon, no recent activity), for a clock made later."""

    expiring_soon_days: int = 30
    no_recent_activity_days: int = 30

    def at(self, now: datetime) -> StatusClock:
        return StatusClock(now, self.expiring_soon_days, self.no_recent_activity_days)


def _subscription(condition: str, *params: object) -> Sql:
    return Sql(
        "EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id"
        f" AND s.kind = 'SUBSCRIPTION' AND {condition})",
        params,
    )


def _ongoing_trial(clock: StatusClock, extra: str = "", *params: object) -> Sql:
    return Sql(
        "EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id"
        f" AND t.status = 'ACTIVE' AND t.end_date >= ?{extra})",
        (clock.today, *params),
    )


def _expiring_from_rows(clock: StatusClock) -> Sql:
    """EXPIRING_SOON read from the rows (the definition the kept column serves)."""
    today = clock.today
    soon = today + timedelta(days=clock.expiring_soon_days)
    return _subscription(
        "s.status = 'ACTIVE' AND NOT s.auto_renew AND s.end_date >= ? AND s.end_date <= ?",
        today,
        soon,
    ) | _ongoing_trial(clock, " AND t.end_date <= ?", soon)


def status_condition(status: CustomerStatus, clock: StatusClock) -> Sql:
    """The SQL that holds for a customer `c` carrying `status`: a test of its kept
    columns (app/domain/customer_columns.py), served by the customer indexes."""
    today = clock.today
    if status is CustomerStatus.TRIAL:
        return Sql("c.trial_end_date >= ?", (today,))
    if status is CustomerStatus.ACTIVE:
        return Sql("c.has_active")
    if status is CustomerStatus.EXPIRING_SOON:
        # The kept date is exact for any day up to itself; one the day has passed
        # (the daily job not yet run) is read from the rows meanwhile.
        soon = today + timedelta(days=clock.expiring_soon_days)
        fallback = _expiring_from_rows(clock)
        # `IS NOT NULL` first: without it, `NULL < ?` leaves the fallback to be
        # evaluated for every customer without such a date (its subqueries then
        # read every row: at 100k, 11 ms a page instead of 1).
        return Sql(
            "(c.expiring_end_date >= ? AND c.expiring_end_date <= ?)"
            " OR (c.expiring_end_date IS NOT NULL AND c.expiring_end_date < ?"
            f" AND ({fallback.text}))",
            (today, soon, today, *fallback.params),
        )
    if status is CustomerStatus.LICENSE_OVERAGE:
        # A subscription or a trial: both have license lines.
        return Sql("c.has_overage")
    if status is CustomerStatus.NO_RECENT_ACTIVITY:
        since = clock.now - timedelta(days=clock.no_recent_activity_days)
        return Sql("c.last_admin_activity_at IS NULL OR c.last_admin_activity_at < ?", (since,))
    if status is CustomerStatus.READY_FOR_ORDER_SETUP:
        return Sql("c.has_pending_setup")
    if status is CustomerStatus.SUSPENDED:
        return Sql("c.has_suspended")
    if status is CustomerStatus.EXPIRED:
        return Sql(
            "NOT c.holds_licenses AND (c.trial_end_date IS NULL OR c.trial_end_date < ?)",
            (today,),
        )
    raise ValueError(status)


def status_columns(clock: StatusClock) -> Sql:
    """Columns `s0`, `s1`, ... of a select over customers aliased `c`: 1 where the
    customer has the status of STATUS_ORDER at that place (read with `statuses_in`)."""
    columns: list[str] = []
    params: list[object] = []
    for n, status in enumerate(STATUS_ORDER):
        condition = status_condition(status, clock)
        columns.append(f"CASE WHEN {condition.text} THEN 1 ELSE 0 END AS s{n}")
        params.extend(condition.params)
    return Sql(", ".join(columns), tuple(params))


_STATUS_COLUMNS = tuple((f"s{n}", status) for n, status in enumerate(STATUS_ORDER))


def statuses_in(row: Row) -> list[CustomerStatus]:
    """The statuses of a row with `status_columns`, in STATUS_ORDER."""
    return [status for column, status in _STATUS_COLUMNS if row[column]]


async def statuses_of(
    customer_ids: Sequence[int], clock: StatusClock
) -> dict[int, list[CustomerStatus]]:
    """Every status of each customer, in one query (ids must already be in scope)."""
    if not customer_ids:
        return {}
    columns = status_columns(clock)
    where = one_of("c.id", list(customer_ids))
    rows = await fetch_records(
        f"SELECT c.id, {columns.text} FROM customer c WHERE {where.text}",
        [*columns.params, *where.params],
    )
    return {row["id"]: statuses_in(row) for row in rows}
