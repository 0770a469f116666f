"""Scoped readers by primary key: the object behind a global id (`node(id:)`) or
reached from another object already in scope, as the typed values of
app/domain/customers.py and app/domain/customer_pages.py. The GraphQL layer
runs no query of its own; it asks these."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.expressions import Subquery

from app.domain.access import Viewer, visible_customers
from app.domain.customer_pages import SubscriptionRow, TrialRow, subscription_row, trial_row
from app.domain.customers import CustomerRow, customer_rows
from app.models.subscriptions import Subscription
from app.models.trials import Trial


async def subscription_by_id(viewer: Viewer, subscription_id: int) -> SubscriptionRow | None:
    """A subscription (or a trial's subscription row) of a customer the viewer sees."""
    sub = await Subscription.get_or_none(
        id=subscription_id, customer_id__in=Subquery(visible_customers(viewer).values("id"))
    )
    return subscription_row(sub) if sub else None


async def trial_by_id(viewer: Viewer, trial_id: int) -> TrialRow | None:
    """A trial of a customer the viewer sees."""
    trial = await Trial.get_or_none(
        id=trial_id, customer_id__in=Subquery(visible_customers(viewer).values("id"))
    )
    return trial_row(trial) if trial else None


async def customers_by_ids(ids: Sequence[int]) -> dict[int, CustomerRow]:
    """Customers reached through objects already in scope (a subscription's or an
    analytics row's customer), in one query. The ids must come from scoped reads."""
    return await customer_rows(ids)
