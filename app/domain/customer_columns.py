"""Kept per-customer columns: what the customer list sorts and filters by
(app/domain/statuses.py, app/domain/customers.py), stored on the customer row
instead of computed per customer in scope at every read.

Each writer of subscriptions, license lines or trials calls
`refresh_customer_columns` for the customers it touched, inside its own
transaction: one UPDATE that recomputes every column from the rows, so the
columns and the rows they come from commit (or roll back) together.

The columns ("holding": a subscription or trial in ACTIVE, SUSPENDED or
PENDING_SETUP; "subscription": kind SUBSCRIPTION; "trial": the Trial row):
- total_licenses: the quantity of every license line of a holding one;
- next_end_date: the soonest end date on or after the day kept of a holding one;
- expiring_end_date: the soonest end date on or after the day kept of an ACTIVE
  subscription without auto-renew, or of an ACTIVE trial;
- trial_end_date: the latest end date of an ACTIVE trial (TRIAL: it is today or
  later; this one does not depend on the day kept);
- has_active, has_suspended, has_pending_setup: a subscription in that status;
- has_overage: a license line of a holding one with assigned > quantity;
- holds_licenses: a holding subscription.

The two "on or after the day kept" dates stay exact for any later day up to
their own value (no candidate lies between the day kept and them). Once the
day passes one of them, the daily `refresh_passed_dates` recomputes that
customer (workers/crons.py, `partnerhub refresh-customer-columns`); until then
the status filters fall back to the rows for such a customer
(app/domain/statuses.py), so statuses stay exact whenever the job runs.
That recomputation changes no status (it only stops the fallback), so it
announces nothing; the same daily job then evaluates every customer's
attention state (workers/crons.py), which announces what the day changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from app.clock import utcnow
from app.db import execute, fetch_all
from app.domain.attention_states import record_changes, scan_all
from app.domain.sql import TRUE, Sql, one_of
from app.domain.statuses import HOLDING

KEPT_COLUMNS: tuple[str, ...] = (
    "total_licenses",
    "next_end_date",
    "expiring_end_date",
    "trial_end_date",
    "has_active",
    "has_suspended",
    "has_pending_setup",
    "has_overage",
    "holds_licenses",
)


def _subscription(condition: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = customer.id"
        f" AND s.kind = 'SUBSCRIPTION' AND {condition})"
    )


# Every kept column from the rows, for the customer row being updated; the
# three `?` are the day kept.
_ASSIGNMENTS = f"""
total_licenses = COALESCE((SELECT SUM(l.quantity) FROM subscription s
    JOIN license_line l ON l.subscription_id = s.id
    WHERE s.customer_id = customer.id AND s.status IN {HOLDING}), 0),
next_end_date = (SELECT MIN(s.end_date) FROM subscription s
    WHERE s.customer_id = customer.id AND s.status IN {HOLDING} AND s.end_date >= ?),
expiring_end_date = (SELECT MIN(candidate.end_date) FROM (
    SELECT s.end_date FROM subscription s
    WHERE s.customer_id = customer.id AND s.kind = 'SUBSCRIPTION' AND s.status = 'ACTIVE'
      AND NOT s.auto_renew AND s.end_date >= ?
    UNION ALL
    SELECT t.end_date FROM trial t
    WHERE t.customer_id = customer.id AND t.status = 'ACTIVE' AND t.end_date >= ?) candidate),
trial_end_date = (SELECT MAX(t.end_date) FROM trial t
    WHERE t.customer_id = customer.id AND t.status = 'ACTIVE'),
has_active = {_subscription("s.status = 'ACTIVE'")},
has_suspended = {_subscription("s.status = 'SUSPENDED'")},
has_pending_setup = {_subscription("s.status = 'PENDING_SETUP'")},
has_overage = EXISTS (SELECT 1 FROM subscription s JOIN license_line l ON l.subscription_id = s.id
    WHERE s.customer_id = customer.id AND s.status IN {HOLDING} AND l.assigned > l.quantity),
holds_licenses = {_subscription(f"s.status IN {HOLDING}")}
"""


async def _refresh(where: Sql, today: date) -> None:
    await execute(
        f"UPDATE customer SET {_ASSIGNMENTS} WHERE {where.text}",
        [today, today, today, *where.params],
    )


def moment_of(today: date) -> datetime:
    """The instant a write "as of `today`" happens at: now, on `today` (a chosen
    day keeps the wall clock's time of day)."""
    now = utcnow()
    return now if now.date() == today else datetime.combine(today, now.timetz())


async def refresh_customer_columns(
    customer_ids: Sequence[int], today: date, now: datetime | None = None
) -> None:
    """Recompute the kept columns of these customers from their rows, as of
    `today`, in one statement, and announce the changes of their attention
    states as of `now` (default: `moment_of(today)`), inside the caller's
    transaction when there is one."""
    ids = sorted(set(customer_ids))
    if ids:
        await _refresh(one_of("id", ids), today)
        await record_changes(ids, now or moment_of(today))


async def refresh_all_customer_columns(today: date, now: datetime | None = None) -> int:
    """Recompute the kept columns of every customer (a demo load, a repair) and
    evaluate every customer's attention state (a first one recorded silently);
    returns how many customers there are."""
    await _refresh(TRUE, today)
    await scan_all(now or moment_of(today))
    rows = await fetch_all("SELECT COUNT(*) AS n FROM customer")
    return int(rows[0]["n"])


async def refresh_passed_dates(today: date) -> int:
    """The daily job: recompute the customers whose kept next end date or
    expiring end date is before `today` (kept for an earlier day, now passed),
    in one statement. Returns how many customers it recomputed."""
    rows = await fetch_all(
        f"UPDATE customer SET {_ASSIGNMENTS}"
        " WHERE next_end_date < ? OR expiring_end_date < ? RETURNING id",
        [today, today, today, today, today],
    )
    return len(rows)
