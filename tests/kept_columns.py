"""The customers' kept list columns recomputed in plain Python from their rows
(written from the definitions in app/domain/customer_columns.py, not from its
SQL), and a check that what is kept equals it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from app.domain.customer_columns import KEPT_COLUMNS
from app.models.customers import Customer
from app.models.subscriptions import LicenseLine, Subscription
from app.models.trials import Trial

HOLDING = {"ACTIVE", "SUSPENDED", "PENDING_SETUP"}


def _text(value: Any) -> str:
    return getattr(value, "value", value)


async def recomputed(customer_ids: Iterable[int], today: date) -> dict[int, dict[str, Any]]:
    """Every kept column of each customer as of `today`, from its rows."""
    ids = list(customer_ids)
    subs = await Subscription.filter(customer_id__in=ids)
    lines: dict[int, list[LicenseLine]] = defaultdict(list)
    for line in await LicenseLine.filter(subscription_id__in=[s.id for s in subs]):
        lines[line.subscription_id].append(line)
    trials = await Trial.filter(customer_id__in=ids)
    out: dict[int, dict[str, Any]] = {}
    for cid in ids:
        mine = [s for s in subs if s.customer_id == cid]
        holding = [s for s in mine if _text(s.status) in HOLDING]
        paid = [s for s in mine if _text(s.kind) == "SUBSCRIPTION"]
        active_trials = [t for t in trials if t.customer_id == cid and _text(t.status) == "ACTIVE"]
        ends = [s.end_date for s in holding if s.end_date is not None and s.end_date >= today]
        expiring = [
            s.end_date
            for s in paid
            if _text(s.status) == "ACTIVE"
            and not s.auto_renew
            and s.end_date is not None
            and s.end_date >= today
        ] + [t.end_date for t in active_trials if t.end_date >= today]
        out[cid] = {
            "total_licenses": sum(line.quantity for s in holding for line in lines[s.id]),
            "next_end_date": min(ends, default=None),
            "expiring_end_date": min(expiring, default=None),
            "trial_end_date": max((t.end_date for t in active_trials), default=None),
            "has_active": any(_text(s.status) == "ACTIVE" for s in paid),
            "has_suspended": any(_text(s.status) == "SUSPENDED" for s in paid),
            "has_pending_setup": any(_text(s.status) == "PENDING_SETUP" for s in paid),
            "has_overage": any(
                line.assigned > line.quantity for s in holding for line in lines[s.id]
            ),
            "holds_licenses": any(_text(s.status) in HOLDING for s in paid),
        }
    return out


async def kept(customer_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The kept columns as stored."""
    rows = await Customer.filter(id__in=list(customer_ids)).values("id", *KEPT_COLUMNS)
    return {
        r["id"]: {k: bool(r[k]) if k.startswith(("has_", "holds_")) else r[k] for k in KEPT_COLUMNS}
        for r in rows
    }


async def assert_kept_columns_exact(today: date, customer_ids: Iterable[int] | None = None) -> int:
    """Assert every customer's (or these customers') kept columns equal the
    recomputation as of `today`; returns how many customers were compared."""
    ids = (
        list(customer_ids)
        if customer_ids is not None
        else await Customer.all().values_list("id", flat=True)
    )
    stored, expected = await kept(ids), await recomputed(ids, today)
    wrong = {cid: (stored[cid], expected[cid]) for cid in ids if stored[cid] != expected[cid]}
    assert not wrong, f"kept columns differ from the rows (kept, recomputed): {wrong}"
    return len(ids)
