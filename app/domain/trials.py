"""Trials: their lifecycle rules."""

from __future__ import annotations

from datetime import date, datetime

from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.models.enums import SubscriptionKind, SubscriptionStatus, TrialStatus
from app.models.subscriptions import Subscription
from app.models.trials import Trial


async def expire_due_trials(today: date, now: datetime | None = None) -> int:
    """Move ACTIVE trials whose end date is before `today` (UTC) to EXPIRED, with
    their TRIAL subscriptions, in one transaction. Returns how many expired."""
    now = now or utcnow()
    async with in_transaction():
        due = Trial.filter(status=TrialStatus.ACTIVE, end_date__lt=today)
        trial_ids = await due.values_list("id", flat=True)
        if not trial_ids:
            return 0
        await Trial.filter(id__in=trial_ids).update(status=TrialStatus.EXPIRED, ended_at=now)
        await Subscription.filter(
            trial_id__in=trial_ids,
            kind=SubscriptionKind.TRIAL,
            status=SubscriptionStatus.ACTIVE,
        ).update(status=SubscriptionStatus.EXPIRED)
    return len(trial_ids)
