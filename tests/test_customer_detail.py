"""Customer detail: subscriptions with license lines, totals, invoice and order
history; trials; partner admins; locations; launch URL; and the statement
count of a page, which does not grow with its size."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from app.domain.ids import encode_global_id
from app.models.enums import AdminRole
from app.models.subscriptions import LicenseLine, Subscription
from tests.graphql_client import data, gql
from tests.world import World, build_world

DETAIL = """query($id: ID!) { customer(id: $id) {
  name orgId launchUrl externalId
  licenseTotals { total assigned used available overage }
  subscriptions(first: 10) { totalCount nodes {
    id subscriptionId kind status autoRenew endDate daysUntilEnd daysSinceAdded products
    licenses { licenseType product quantity assigned used available overage }
    totals { total assigned used available overage }
    invoice { number issuedOn amount currency paid }
    orders { orderNumber action description }
    customer { name }
  } }
  trials { trialId status durationDays daysRemaining products { product licenses } }
  partnerAdmins { role admin { email } }
  locations { name country }
  tags { name customerCount }
} }"""


@pytest.fixture
async def world(db) -> World:
    return await build_world()


def customer_id(world: World, name: str) -> str:
    return encode_global_id("Customer", world.customers[name].id)


async def test_subscriptions_tab_shows_lines_totals_latest_invoice_and_orders(
    client: httpx.AsyncClient, world: World
) -> None:
    full = world.team[AdminRole.FULL_ADMIN].token
    answer = await data(client, full, DETAIL, {"id": customer_id(world, "sub ends in 30 days")})
    customer = answer["customer"]
    sub = customer["subscriptions"]["nodes"][0]
    assert customer["subscriptions"]["totalCount"] == 1
    assert sub["kind"] == "SUBSCRIPTION" and sub["status"] == "ACTIVE" and not sub["autoRenew"]
    assert sub["daysUntilEnd"] == 30 and sub["daysSinceAdded"] == 100
    assert sub["products"] == ["CALLING"]
    assert sub["licenses"] == [
        {
            "licenseType": "CALLING_PROFESSIONAL",
            "product": "CALLING",
            "quantity": 300,
            "assigned": 200,
            "used": 100,
            "available": 100,
            "overage": 0,
        }
    ]
    assert sub["invoice"] == {
        "number": "INV-2",
        "issuedOn": str(world.today.fromordinal(world.today.toordinal() - 30)),
        "amount": 120.5,
        "currency": "USD",
        "paid": False,
    }
    assert [o["orderNumber"] for o in sub["orders"]] == ["ORD-2", "ORD-1"]  # newest first
    assert sub["orders"][0]["description"] == "More seats"
    assert sub["customer"] == {"name": "sub ends in 30 days"}
    assert sorted(t["name"] for t in customer["tags"]) == ["Gold"]
    assert customer["tags"][0]["customerCount"] == 2
    assert (
        customer["launchUrl"] == f"https://admin.webex.com/partner/launch?orgId={customer['orgId']}"
    )


async def test_license_totals_sum_lines_of_holding_subscriptions_only(
    client: httpx.AsyncClient, world: World
) -> None:
    """Totals computed here from the rows: ACTIVE, SUSPENDED and PENDING_SETUP
    subscriptions and trials count; expired ones do not."""
    full = world.team[AdminRole.FULL_ADMIN].token
    for name in world.customers:
        expected = dict.fromkeys(("total", "assigned", "used", "available", "overage"), 0)
        for sub in await Subscription.filter(customer_id=world.customers[name].id):
            if sub.status not in ("ACTIVE", "SUSPENDED", "PENDING_SETUP"):
                continue
            for line in await LicenseLine.filter(subscription_id=sub.id):
                expected["total"] += line.quantity
                expected["assigned"] += line.assigned
                expected["used"] += line.used
                expected["available"] += max(line.quantity - line.assigned, 0)
                expected["overage"] += max(line.assigned - line.quantity, 0)
        answer = await data(client, full, DETAIL, {"id": customer_id(world, name)})
        assert answer["customer"]["licenseTotals"] == expected, name
    overage = await data(client, full, DETAIL, {"id": customer_id(world, "overage of one")})
    assert overage["customer"]["licenseTotals"]["overage"] == 1
    assert overage["customer"]["licenseTotals"]["available"] == 8  # 0 + (10 - 2): no netting


async def test_trials_tab_partner_admins_and_locations(
    client: httpx.AsyncClient, world: World
) -> None:
    full = world.team[AdminRole.FULL_ADMIN].token
    trial = await data(client, full, DETAIL, {"id": customer_id(world, "Trial ends in 30 days")})
    [t] = trial["customer"]["trials"]
    assert t["status"] == "ACTIVE" and t["durationDays"] == 40 and t["daysRemaining"] == 30
    assert t["trialId"].startswith("ET-")
    assert t["products"] == [{"product": "CALLING", "licenses": 25}]
    subs = trial["customer"]["subscriptions"]["nodes"]
    assert [(s["kind"], s["subscriptionId"]) for s in subs] == [("TRIAL", t["trialId"])]

    suspended = await data(client, full, DETAIL, {"id": customer_id(world, "suspended")})
    assert suspended["customer"]["partnerAdmins"] == [
        {"role": "SALES_ADMIN", "admin": {"email": world.team[AdminRole.SALES_ADMIN].admin.email}}
    ]
    assert suspended["customer"]["locations"] == [{"name": "Denver HQ", "country": "US"}]


async def test_subscriptions_connection_pages(client: httpx.AsyncClient, world: World) -> None:
    from tests.world import subscription

    c = world.customers["suspended"]
    for n in range(4):
        await subscription(c, "ACTIVE", None, today=world.today, added_days_ago=10 + n)
    query = """query($id: ID!, $after: String) { customer(id: $id) {
      subscriptions(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        nodes { subscriptionId } } } }"""
    full = world.team[AdminRole.FULL_ADMIN].token
    seen, after = [], None
    while True:
        page = await data(
            client, full, query, {"id": customer_id(world, "suspended"), "after": after}
        )
        subs = page["customer"]["subscriptions"]
        assert subs["totalCount"] == 5
        seen += [s["subscriptionId"] for s in subs["nodes"]]
        if not subs["pageInfo"]["hasNextPage"]:
            break
        after = subs["pageInfo"]["endCursor"]
    newest_first = await Subscription.filter(customer_id=c.id).order_by("-added_at", "-id")
    assert seen == [s.subscription_id for s in newest_first]
    bad = await gql(client, full, query, {"id": customer_id(world, "suspended"), "after": "nope"})
    assert "cursor" in bad.json()["errors"][0]["message"]


PAGE = """query($first: Int) { customers(first: $first) { totalCount nodes {
  id name orgId statuses products managedBy launchUrl lastAdminActivityAt
  tags { id name customerCount createdBy { email } }
  licenseTotals { total assigned used available overage }
  subscriptions(first: 5) { totalCount nodes { subscriptionId status
    licenses { licenseType quantity assigned } totals { total } invoice { number }
    orders { orderNumber } customer { name } } }
  trials { trialId products { product licenses } startedBy { email } customer { name } }
  partnerAdmins { role admin { email } }
  locations { name }
} } }"""


@contextmanager
def counting_statements() -> Iterator[list[str]]:
    """Every SQL statement Tortoise sends, as it logs them."""
    statements: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg == "%s: %s":
                statements.append(str(record.args[0]) if record.args else "")

    logger = logging.getLogger("tortoise.db_client")
    handler, level = Collect(level=logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield statements
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_page_costs_the_same_statements_for_10_and_100_customers(
    client: httpx.AsyncClient, db
) -> None:
    from app.demo import demo_admins, load_demo

    await load_demo(240, seed=2, now=datetime.now(UTC))
    token = demo_admins(2)[0].token  # full@northwind.example: 120 customers
    await data(client, token, "{ viewer { email } }")  # the token's first use writes last_used_at
    counts, shapes = {}, {}
    for size in (10, 100):
        with counting_statements() as statements:
            answer = await data(client, token, PAGE, {"first": size})
        assert len(answer["customers"]["nodes"]) == size
        counts[size] = len(statements)
        shapes[size] = [" ".join(st.split()[:12])[:110] for st in statements]
    assert counts[10] == counts[100], shapes
    assert counts[100] <= 25, counts
