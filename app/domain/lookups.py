"""Scoped readers by primary key: the object behind a global id (`node(id:)`) or
reached from another object already in scope. The GraphQL layer runs no query of
its own; it asks these."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.expressions import Subquery

from app.domain.access import Viewer, visible_customers
from app.models.customers import Customer
from app.models.subscriptions import Subscription
from app.models.tags import Tag
from app.models.trials import Trial


async def subscription_by_id(viewer: Viewer, subscription_id: int) -> Subscription | None:
    """A subscription (or a trial's subscription row) of a customer the viewer sees."""
    return await Subscription.get_or_none(
        id=subscription_id, customer_id__in=Subquery(visible_customers(viewer).values("id"))
    )


async def trial_by_id(viewer: Viewer, trial_id: int) -> Trial | None:
    """A trial of a customer the viewer sees."""
    return await Trial.get_or_none(
        id=trial_id, customer_id__in=Subquery(visible_customers(viewer).values("id"))
    )


async def tag_by_id(viewer: Viewer, tag_id: int) -> Tag | None:
    """A tag of the viewer's partner."""
    return await Tag.get_or_none(id=tag_id, partner_id=viewer.partner_id)


async def customers_by_ids(ids: Sequence[int]) -> dict[int, Customer]:
    """Customers reached through objects already in scope (a subscription's or an
    analytics row's customer), in one query. The ids must come from scoped reads."""
    wanted = list(set(ids))
    return {c.id: c for c in await Customer.filter(id__in=wanted)} if wanted else {}
