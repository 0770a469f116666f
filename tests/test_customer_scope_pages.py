"""The customer list of an admin holding external-admin grants: its own partner's
customers and the granted ones are counted and paged as two parts and merged;
every order and page size must give exactly the one list a plain sort gives."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from app.domain.access import Viewer
from app.domain.customers import CustomerOrder, CustomerOrderField, list_customers
from app.domain.statuses import StatusClock
from app.models.admins import ExternalAdminGrant
from app.models.customers import Customer
from app.models.enums import AdminRole
from tests import factories
from tests.factories import NOW

NAMES = ["alpha", "Beta", "beta", "Gamma", "delta", "Epsilon", "zeta", "Eta", "theta", "Iota"]


async def _world() -> tuple[Viewer, list[Customer]]:
    rng = random.Random(7)
    home = await factories.partner("Home", "home.example")
    other = await factories.partner("Other", "other.example")
    holder = await factories.admin(home, AdminRole.FULL_ADMIN)
    seen: list[Customer] = []
    for n, name in enumerate(NAMES * 2):
        own = n % 3 != 0
        customer = await factories.customer(home if own else other, name=f"{name} {n % 4}")
        customer.created_at = NOW - timedelta(days=rng.randrange(5))  # ties on purpose
        await customer.save(update_fields=["created_at"])
        if not own and n % 2 == 0:
            await ExternalAdminGrant.create(customer=customer, admin=holder.admin, granted_at=NOW)
        if own or n % 2 == 0:
            seen.append(customer)
    await factories.customer(other, name="aaa never seen")
    await holder.admin.fetch_related("partner")
    return Viewer(admin=holder.admin, partner=holder.admin.partner), seen


def _expected(customers: list[Customer], order: CustomerOrder) -> list[int]:
    if order.field is CustomerOrderField.NAME:
        keyed = [((c.name.lower(), c.id), c.id) for c in customers]
    elif order.field is CustomerOrderField.CREATED_AT:
        keyed = [((c.created_at, c.id), c.id) for c in customers]
    else:  # no subscriptions: every next end date and license total is the same
        keyed = [((0, c.id), c.id) for c in customers]
    return [i for _, i in sorted(keyed, reverse=order.descending)]


@pytest.mark.parametrize("field", list(CustomerOrderField))
@pytest.mark.parametrize("descending", [False, True])
async def test_pages_of_own_and_granted_customers_merge_into_one_order(
    db: None, field: CustomerOrderField, descending: bool
) -> None:
    viewer, seen = await _world()
    order = CustomerOrder(field, descending)
    clock = StatusClock(now=NOW)
    for size in (1, 3, 7, 100):
        ids, after, pages = [], None, 0
        while True:
            page = await list_customers(viewer, clock, first=size, after=after, order=order)
            assert page.total_count == len(seen)
            ids += [c.id for c in page.items]
            pages += 1
            if not page.has_next_page:
                break
            after = page.cursors[-1]
            assert pages <= len(seen)
        assert ids == _expected(seen, order), (size, order)
