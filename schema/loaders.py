"""Per-request DataLoaders: every relation of a page is read in one query,
whatever the page size (see app/domain/customer_detail.py). A customers page
reads its relations up front (app/domain/customer_pages.py); these serve the
objects reached another way (a mutation's payload, an analytics row, a
subscription by id). Each hands out the domain's typed values (the rows of
app/domain/customer_pages.py, `CustomerRow`), never a table's model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from app.domain import customer_detail as detail
from app.domain import external_admins, report_emails, reports
from app.domain.access import Viewer
from app.domain.customer_pages import SubscriptionRow
from app.domain.customers import CustomerRow, assigned_customer_pages
from app.domain.lookups import customers_by_ids
from app.domain.statuses import StatusClock, statuses_of
from app.models.enums import ManagedBy

K = TypeVar("K", bound=Hashable)


def batched(fetch: Callable[[list[Any]], Awaitable[dict]], default: Any) -> DataLoader:
    async def load(keys: Sequence[Any]) -> list[Any]:
        found = await fetch(list(keys))
        return [found.get(key, default() if callable(default) else default) for key in keys]

    return DataLoader(load_fn=load)


class Loaders:
    def __init__(self, viewer: Viewer, clock: StatusClock) -> None:
        self.statuses = batched(lambda ids: statuses_of(ids, clock), list)
        self.products = batched(detail.products_of, list)
        self.tags = batched(lambda ids: detail.tags_of(viewer, ids), list)
        self.license_lines = batched(detail.license_lines_of, list)
        self.subscriptions = batched(self._subscriptions_with_lines, list)
        self.latest_invoice = batched(detail.latest_invoices_of, None)
        self.orders = batched(detail.orders_of, list)
        self.trials = batched(detail.trials_of, list)
        self.trial_products = batched(detail.trial_products_of, list)
        self.partner_admins = batched(lambda ids: detail.partner_admins_of(viewer, ids), list)
        self.managed_by = batched(
            lambda ids: detail.managed_by_of(viewer, ids), ManagedBy.PARTNER_ORGANIZATION
        )
        self.locations = batched(detail.locations_of, list)
        self.external_admins = batched(
            lambda ids: external_admins.external_admins_of(viewer, ids), list
        )
        # All admins of the partner in one query: ids come from tags and trials at
        # different depths, and one load keeps a page's cost independent of timing.
        self.admins = batched(_once(lambda: detail.admins_of_partner(viewer)), None)
        self.tag_customer_counts = batched(lambda ids: detail.tag_customer_counts(viewer, ids), 0)
        # Customers reached through an object already in scope (a subscription's customer).
        self.customers = batched(customers_by_ids, None)
        self.report_templates = batched(lambda ids: reports.templates_by_ids(viewer, ids), None)
        self.report_schedules = batched(lambda ids: reports.schedules_by_ids(viewer, ids), None)
        self.last_reports = batched(lambda ids: reports.last_reports_of(viewer, ids), None)
        self._viewer = viewer
        self._assigned: dict[int | None, DataLoader] = {}
        self._deliveries: dict[int | None, DataLoader] = {}

    def assigned_customers(self, first: int | None) -> DataLoader:
        """First pages of admins' assigned customers, one loader per page size."""
        if first not in self._assigned:
            viewer = self._viewer
            self._assigned[first] = batched(
                lambda ids: assigned_customer_pages(viewer, ids, first), None
            )
        return self._assigned[first]

    def delivery_pages(self, first: int | None) -> DataLoader:
        """First pages of schedules' e-mail deliveries, one loader per page size."""
        if first not in self._deliveries:
            viewer = self._viewer
            self._deliveries[first] = batched(
                lambda ids: report_emails.first_delivery_pages(viewer, ids, first), None
            )
        return self._deliveries[first]

    async def _subscriptions_with_lines(
        self, customer_ids: list[int]
    ) -> dict[int, list[SubscriptionRow]]:
        """Subscriptions of the customers, with their license lines in the same
        batch: totals, products and licenses then never issue a second query."""
        subscriptions = await detail.subscriptions_of(customer_ids)
        ids = [sub.id for group in subscriptions.values() for sub in group]
        lines = await detail.license_lines_of(ids) if ids else {}
        for group in subscriptions.values():
            for sub in group:
                sub.lines = lines.get(sub.id, [])
                self.license_lines.prime(sub.id, sub.lines)
        return subscriptions


def _once(fetch: Callable[[], Awaitable[dict]]) -> Callable[[list[Any]], Awaitable[dict]]:
    """A batch function that loads everything once and serves any key from it
    (batches that start while the load is under way wait for the same load)."""
    loading: asyncio.Future[dict] | None = None

    async def load(_keys: list[Any]) -> dict:
        nonlocal loading
        if loading is None:
            loading = asyncio.ensure_future(fetch())
        return await loading

    return load


async def reached_customer(info: Any, customer_id: int) -> CustomerRow:
    """The customer of a subscription or trial reached without it (by id, from a
    list of trials), loaded in one batch with the others of the request."""
    return await info.context.loaders.customers.load(customer_id)
