"""The customer list: statuses at their boundary days, every filter alone and
combined, ordering, full pagination walks, scope for each role, bad input."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from app.db import fetch_all
from app.domain.ids import encode_global_id
from app.domain.statuses import StatusClock, status_condition, statuses_of
from app.models.admins import ExternalAdminGrant
from app.models.enums import AdminRole, CustomerStatus, SubscriptionStatus, TrialStatus
from tests.graphql_client import data, gql
from tests.world import StatusGrid, World, build_status_grid, build_world

LIST = """query($first: Int, $after: String, $filter: CustomerFilter, $orderBy: CustomerOrder) {
  customers(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id } }
    nodes { id name statuses }
  }
}"""


@pytest.fixture
async def world(db) -> World:
    return await build_world()


def token(world: World, role: AdminRole = AdminRole.FULL_ADMIN) -> str:
    return world.team[role].token


async def names(
    client: httpx.AsyncClient, world: World, flt: dict, role: AdminRole = AdminRole.FULL_ADMIN
) -> set[str]:
    answer = await data(client, token(world, role), LIST, {"first": 100, "filter": flt})
    assert answer["customers"]["totalCount"] == len(answer["customers"]["nodes"])
    return {node["name"] for node in answer["customers"]["nodes"]}


async def test_every_customer_carries_exactly_the_statuses_of_spec(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await data(client, token(world), LIST, {"first": 100})
    got = {node["name"]: set(node["statuses"]) for node in answer["customers"]["nodes"]}
    assert got == world.expected


@pytest.mark.parametrize("status", [s.value for s in CustomerStatus])
async def test_filtering_by_a_status_finds_exactly_its_customers(
    client: httpx.AsyncClient, world: World, status: str
) -> None:
    expected = {name for name, statuses in world.expected.items() if status in statuses}
    assert expected, f"the world has no customer with {status}"
    assert await names(client, world, {"statuses": [status]}) == expected


async def test_statuses_filter_is_any_of(client: httpx.AsyncClient, world: World) -> None:
    wanted = {"SUSPENDED", "READY_FOR_ORDER_SETUP", "TRIAL"}
    expected = {name for name, statuses in world.expected.items() if statuses & wanted}
    assert await names(client, world, {"statuses": sorted(wanted)}) == expected


async def test_search_matches_name_org_id_external_id_phone_and_mac(
    client: httpx.AsyncClient, world: World
) -> None:
    c = world.customers
    assert await names(client, world, {"search": "TRIAL ENDS"}) == {
        "trial ends today",
        "Trial ends in 30 days",
        "trial ends in 31 days",
    }
    org_id = str(c["suspended"].org_id)
    assert await names(client, world, {"search": org_id[9:23].upper()}) == {"suspended"}
    assert await names(client, world, {"search": "ws-7788"}) == {"sub ends in 31 days"}
    # Exact phone number in any usual writing, exact MAC with or without separators.
    for phone in ("+1 303 555 0100", "1-303-555-0100", "+13035550100"):
        assert await names(client, world, {"search": phone}) == {"suspended"}, phone
    assert await names(client, world, {"search": "+1303555"}) == set()  # not a prefix match
    for mac in ("00:1a:2b:3c:4d:5e", "001A.2B3C.4D5E", "001a2b3c4d5e"):
        assert await names(client, world, {"search": mac}) == {"pending setup"}, mac
    # LIKE wildcards are taken literally.
    assert await names(client, world, {"search": "%"}) == set()
    assert await names(client, world, {"search": "_"}) == set()
    assert len(await names(client, world, {"search": "   "})) == len(world.customers)


async def test_email_finds_the_organization_of_that_exact_user(
    client: httpx.AsyncClient, world: World
) -> None:
    assert await names(client, world, {"email": "Ana.Smith@EXAMPLE.com"}) == {
        "assigned equals quantity"
    }
    assert await names(client, world, {"email": "ana.smith@example.co"}) == set()
    assert await names(client, world, {"email": "smith@example.com"}) == set()


async def test_managed_by_is_relative_to_the_viewer(
    client: httpx.AsyncClient, world: World
) -> None:
    """Own customers are PARTNER_ORGANIZATION (assigned or not); a customer of another
    partner shows only through an external-admin grant, as EXTERNAL_ADMIN."""
    assert await names(client, world, {"managedBy": "EXTERNAL_ADMIN"}) == set()
    assert await names(client, world, {"managedBy": "EXTERNAL_ADMIN"}, AdminRole.ADMIN) == set()
    assert await names(client, world, {"managedBy": "PARTNER_ORGANIZATION"}, AdminRole.ADMIN) == {
        "overage of one",
        "assigned equals quantity",
    }
    assert world.foreign is not None
    await ExternalAdminGrant.create(
        customer=world.foreign,
        admin=world.team[AdminRole.FULL_ADMIN].admin,
        granted_by=world.contoso_team[AdminRole.FULL_ADMIN].admin,
        granted_at=world.now,
    )
    assert await names(client, world, {"managedBy": "EXTERNAL_ADMIN"}) == {world.foreign.name}
    assert await names(client, world, {"managedBy": "PARTNER_ORGANIZATION"}) == set(world.customers)
    answer = await data(
        client, token(world), "{ customers(first: 100) { nodes { name managedBy } } }"
    )
    managed = {n["name"]: n["managedBy"] for n in answer["customers"]["nodes"]}
    assert {k for k, v in managed.items() if v == "EXTERNAL_ADMIN"} == {world.foreign.name}
    assert {k for k, v in managed.items() if v == "PARTNER_ORGANIZATION"} == set(world.customers)


async def test_products_are_any_of_over_all_subscriptions_and_trials(
    client: httpx.AsyncClient, world: World
) -> None:
    assert await names(client, world, {"products": ["CONTACT_CENTER"]}) == {"pending setup"}
    assert await names(client, world, {"products": ["REAL_TIME_TRANSLATION", "MESSAGING"]}) == {
        "suspended",
        "overage of one",
    }
    calling = await names(client, world, {"products": ["CALLING"]})
    assert "trial ended yesterday" in calling  # a trial's products count, whatever its state
    assert "auto-renew in 5 days" in calling  # WEBEX_CALLING is a Calling license
    assert "no subscription at all" not in calling


async def test_subscription_type_and_regions(client: httpx.AsyncClient, world: World) -> None:
    trials = {n for n, s in world.expected.items() if "TRIAL" in s}
    assert await names(client, world, {"subscriptionType": "TRIAL"}) == trials
    holding = {
        n for n, s in world.expected.items() if s & {"ACTIVE", "SUSPENDED", "READY_FOR_ORDER_SETUP"}
    }
    assert await names(client, world, {"subscriptionType": "SUBSCRIPTION"}) == holding
    for regions in (["EU"], ["US", "UAE"]):
        expected = {n for n, c in world.customers.items() if c.region in regions}
        assert await names(client, world, {"regions": regions}) == expected


async def test_tags_are_all_of_and_never_another_partners(
    client: httpx.AsyncClient, world: World
) -> None:
    gold, risk = (encode_global_id("Tag", world.tags[t].id) for t in ("Gold", "Risk"))
    assert await names(client, world, {"tagIds": [gold]}) == {
        "sub ends in 30 days",
        "overage of one",
    }
    assert await names(client, world, {"tagIds": [gold, risk]}) == {"overage of one"}
    unused = encode_global_id("Tag", world.tags["Unused"].id)
    assert await names(client, world, {"tagIds": [gold, unused]}) == set()
    assert await names(client, world, {"tagIds": [encode_global_id("Tag", 10**6)]}) == set()
    assert await names(client, world, {"tagIds": ["not-an-id"]}) == set()


async def test_filters_combine_with_and(client: httpx.AsyncClient, world: World) -> None:
    flt = {"statuses": ["ACTIVE"], "products": ["MEETINGS"], "search": "sub"}
    expected = {"sub ends in 31 days", "sub ends today", "sub ended yesterday"}
    assert await names(client, world, flt) == expected
    assert await names(client, world, {**flt, "regions": ["EU"]}) == {
        n for n in expected if world.customers[n].region == "EU"
    }


async def expected_order(world: World, field: str, descending: bool) -> list[str]:
    """The order SPEC.md asks for, computed from the rows in Python; ties by id."""
    from app.models.subscriptions import LicenseLine, Subscription

    holding = {"ACTIVE", "SUSPENDED", "PENDING_SETUP"}
    totals: dict[int, int] = {}
    next_end: dict[int, date | None] = {}
    for sub in await Subscription.all():
        if sub.status in holding:
            for line in await LicenseLine.filter(subscription_id=sub.id):
                totals[sub.customer_id] = totals.get(sub.customer_id, 0) + line.quantity
            if sub.end_date and sub.end_date >= world.today:
                current = next_end.get(sub.customer_id)
                next_end[sub.customer_id] = min(sub.end_date, current) if current else sub.end_date
    customers = list(world.customers.values())

    def key(c):
        if field == "NAME":
            return c.name.lower()
        if field == "CREATED_AT":
            return c.created_at
        if field == "TOTAL_LICENSES":
            return totals.get(c.id, 0)
        return next_end.get(c.id)

    with_key = [c for c in customers if key(c) is not None]
    without = [c for c in customers if key(c) is None]  # no end date ahead: last either way
    ordered = sorted(with_key, key=lambda c: (key(c), c.id), reverse=descending)
    ordered += sorted(without, key=lambda c: c.id, reverse=descending)
    return [c.name for c in ordered]


ORDERINGS = [
    (f, d)
    for f in ("NAME", "CREATED_AT", "NEXT_END_DATE", "TOTAL_LICENSES")
    for d in ("ASC", "DESC")
]


@pytest.mark.parametrize(("field", "direction"), ORDERINGS)
async def test_walking_every_page_yields_every_customer_once_in_order(
    client: httpx.AsyncClient, world: World, field: str, direction: str
) -> None:
    expected = await expected_order(world, field, direction == "DESC")
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        answer = await data(
            client,
            token(world),
            LIST,
            {"first": 4, "after": after, "orderBy": {"field": field, "direction": direction}},
        )
        connection = answer["customers"]
        assert connection["totalCount"] == len(world.customers)
        assert connection["pageInfo"]["hasPreviousPage"] == (after is not None)
        assert [e["node"]["id"] for e in connection["edges"]] == [
            n["id"] for n in connection["nodes"]
        ]
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        seen += [n["name"] for n in connection["nodes"]]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == expected
    assert pages == -(-len(world.customers) // 4)


async def test_a_cursor_belongs_to_its_ordering_and_bad_cursors_are_errors(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await data(
        client, token(world), LIST, {"first": 2, "orderBy": {"field": "NAME", "direction": "ASC"}}
    )
    cursor = first["customers"]["pageInfo"]["endCursor"]
    other = await gql(
        client,
        token(world),
        LIST,
        {"first": 2, "after": cursor, "orderBy": {"field": "CREATED_AT", "direction": "ASC"}},
    )
    assert "another ordering" in other.json()["errors"][0]["message"]
    for bad in ("garbage", "", "eyJ4Ijox", "W10", cursor[:-3] + "AAA", "x" * 5000):
        response = await gql(client, token(world), LIST, {"first": 2, "after": bad})
        assert response.status_code == 200
        assert response.json()["data"] is None
        assert "cursor" in response.json()["errors"][0]["message"], bad


@pytest.mark.parametrize("first", [0, -1, 101, 10**6])
async def test_first_is_between_1_and_100(
    client: httpx.AsyncClient, world: World, first: int
) -> None:
    response = await gql(client, token(world), LIST, {"first": first})
    assert (
        response.json()["errors"][0]["message"]
        == f"`first` must be between 1 and 100 (got {first})"
    )


async def test_first_defaults_to_50_and_100_is_allowed(
    client: httpx.AsyncClient, world: World
) -> None:
    from tests import factories

    for n in range(60):
        await factories.customer(world.northwind, f"extra {n:02d}")
    total = len(world.customers) + 60
    default = await data(client, token(world), LIST, {})
    assert len(default["customers"]["nodes"]) == 50
    assert default["customers"]["totalCount"] == total
    hundred = await data(client, token(world), LIST, {"first": 100})
    assert len(hundred["customers"]["nodes"]) == min(100, total)


async def test_bad_filter_values_are_clear_errors_never_500(
    client: httpx.AsyncClient, world: World
) -> None:
    cases = [
        ({"search": "x" * 10_000}, "`search` is at most 200 characters"),
        ({"email": "not-an-email"}, "`email` is not an email address"),
        ({"statuses": ["ON_FIRE"]}, "ON_FIRE"),
        ({"regions": ["MARS"]}, "MARS"),
    ]
    for flt, message in cases:
        response = await gql(client, token(world), LIST, {"filter": flt})
        assert response.status_code == 200
        assert message in response.json()["errors"][0]["message"], flt


async def test_each_role_lists_exactly_its_customers(
    client: httpx.AsyncClient, world: World
) -> None:
    everyone = set(world.customers)
    expected = {
        AdminRole.FULL_ADMIN: everyone,
        AdminRole.READ_ONLY_ADMIN: everyone,
        AdminRole.SALES_FULL_ADMIN: everyone,
        AdminRole.ADMIN: {"overage of one", "assigned equals quantity"},
        AdminRole.SALES_ADMIN: {"suspended", "trial ends in 31 days"},
    }
    for role, names_expected in expected.items():
        assert await names(client, world, {}, role) == names_expected, role
        # Filters never widen the scope.
        assert await names(client, world, {"search": "+13035550100"}, role) == names_expected & {
            "suspended"
        }
    contoso = await data(
        client, world.contoso_team[AdminRole.FULL_ADMIN].token, LIST, {"first": 100}
    )
    assert [n["name"] for n in contoso["customers"]["nodes"]] == ["sub ends in 30 days (Contoso)"]


async def test_customer_by_id_is_null_outside_the_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    query = "query($id: ID!) { customer(id: $id) { name } node(id: $id) { id } }"
    mine = encode_global_id("Customer", world.customers["suspended"].id)
    assigned_elsewhere = encode_global_id("Customer", world.customers["overage of one"].id)
    foreign = encode_global_id("Customer", world.foreign.id)
    tag_id = encode_global_id("Tag", world.tags["Gold"].id)
    full, admin = token(world), token(world, AdminRole.ADMIN)
    assert (await data(client, full, query, {"id": mine}))["customer"] == {"name": "suspended"}
    for viewer, customer_id in (
        (full, foreign),
        (admin, mine),
        (full, "x"),
        (full, encode_global_id("Customer", 10**7)),
    ):
        assert await data(client, viewer, query, {"id": customer_id}) == {
            "customer": None,
            "node": None,
        }
    # An id of another type is no customer (node(id:) still finds the tag itself).
    assert await data(client, full, query, {"id": tag_id}) == {
        "customer": None,
        "node": {"id": tag_id},
    }
    assert (await data(client, admin, query, {"id": assigned_elsewhere}))["customer"] is not None


# ---------------------------------------------------------------- every status rule x every state


@pytest.fixture
async def grid(db) -> StatusGrid:
    return await build_status_grid()


async def test_each_status_rule_counts_exactly_the_subscription_states_spec_names(
    client: httpx.AsyncClient, grid: StatusGrid
) -> None:
    """LICENSE_OVERAGE on ACTIVE, SUSPENDED and PENDING_SETUP only, EXPIRING_SOON on
    ACTIVE only, EXPIRED unless something holds: through the API and the domain."""
    answer = await data(client, grid.full_admin.token, LIST, {"first": 100})
    got = {node["name"]: set(node["statuses"]) for node in answer["customers"]["nodes"]}
    assert got == grid.expected
    ids = {c.id: name for name, c in grid.customers.items()}
    computed = await statuses_of(list(ids), StatusClock(now=grid.now))
    assert {ids[i]: {s.value for s in statuses} for i, statuses in computed.items()} == (
        grid.expected
    )


@pytest.mark.parametrize("status", list(CustomerStatus))
async def test_each_status_filter_finds_exactly_its_customers_in_every_state(
    client: httpx.AsyncClient, grid: StatusGrid, status: CustomerStatus
) -> None:
    expected = {name for name, statuses in grid.expected.items() if status.value in statuses}
    answer = await data(
        client, grid.full_admin.token, LIST, {"first": 100, "filter": {"statuses": [status.value]}}
    )
    assert {n["name"] for n in answer["customers"]["nodes"]} == expected
    assert answer["customers"]["totalCount"] == len(expected)
    condition = status_condition(status, StatusClock(now=grid.now))
    rows = await fetch_all(
        f"SELECT c.name FROM customer c WHERE c.partner_id = ? AND ({condition.text})",
        [grid.partner.id, *condition.params],
    )
    assert {r["name"] for r in rows} == expected


async def test_the_status_grid_puts_an_overage_on_every_subscription_and_trial_state(
    grid: StatusGrid,
) -> None:
    """Guards the grid: each state of the enums carries an overage somewhere in it,
    so a rule that forgets a state has a customer to be wrong about."""
    from app.models.subscriptions import LicenseLine
    from app.models.trials import Trial

    over = LicenseLine.filter(
        subscription__customer__partner_id=grid.partner.id, assigned__gt=10, quantity=10
    )
    states = set(await over.values_list("subscription__kind", "subscription__status"))
    # CONVERTED belongs to a trial's own subscription row alone.
    assert {s.value for k, s in states if k == "SUBSCRIPTION"} == {
        s.value for s in SubscriptionStatus if s != SubscriptionStatus.CONVERTED
    }
    # A trial's row says what the trial says, in every trial state.
    assert {s.value for k, s in states if k == "TRIAL"} == {t.value for t in TrialStatus}
    trial_states = await Trial.filter(customer__partner_id=grid.partner.id).values_list(
        "status", flat=True
    )
    assert set(trial_states) == {s.value for s in TrialStatus}
