"""`node(id:)` answers objects in the viewer's scope and null for everything
else: another partner's objects, malformed ids, unknown types and pks."""

from __future__ import annotations

import httpx

from app.domain.ids import decode_global_id, encode_global_id
from app.models.enums import AdminRole
from tests import factories
from tests.graphql_client import data

NODE = """query($id: ID!) { node(id: $id) { id __typename
  ... on Admin { email role } ... on PartnerOrganization { name } } }"""


async def test_node_finds_own_admins_and_own_organization(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await factories.admin(org, AdminRole.READ_ONLY_ADMIN)
    colleague = await factories.admin(org, AdminRole.SALES_ADMIN)

    me = await data(client, viewer.token, "{ viewer { id } organization { id } }")
    found = await data(client, viewer.token, NODE, {"id": me["viewer"]["id"]})
    assert found["node"]["email"] == viewer.admin.email

    colleague_id = encode_global_id("Admin", colleague.admin.id)
    found = await data(client, viewer.token, NODE, {"id": colleague_id})
    assert found["node"] == {
        "id": colleague_id,
        "__typename": "Admin",
        "email": colleague.admin.email,
        "role": "SALES_ADMIN",
    }
    found = await data(client, viewer.token, NODE, {"id": me["organization"]["id"]})
    assert found["node"]["name"] == "Northwind Partners"


async def test_node_of_another_partner_is_null_exactly_like_a_missing_id(
    client: httpx.AsyncClient,
) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    viewer = await factories.admin(northwind, AdminRole.FULL_ADMIN)
    stranger = await factories.admin(contoso, AdminRole.FULL_ADMIN)

    for foreign in (
        encode_global_id("Admin", stranger.admin.id),
        encode_global_id("PartnerOrganization", contoso.id),
        encode_global_id("Admin", 999_999),
        encode_global_id("PartnerOrganization", 999_999),
    ):
        response = await client.post(
            "/graphql",
            json={"query": NODE, "variables": {"id": foreign}},
            headers={"Authorization": f"Bearer {viewer.token}"},
        )
        body = response.json()
        assert body["data"] == {"node": None} and "errors" not in body
        # The answer is the same for a foreign id and a missing one, its cost too.
        assert body["extensions"]["cost"]["requestedQueryCost"] == 1


async def test_malformed_and_unknown_ids_are_null(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await factories.admin(org, AdminRole.ADMIN)
    for bad in (
        "",
        "%%%",
        "QWRtaW4",
        "x" * 10_000,
        encode_global_id("Spaceship", 1),
        "QWRtaW46LTE",
    ):
        answer = await data(client, viewer.token, NODE, {"id": bad})
        assert answer == {"node": None}, bad


def test_global_ids_round_trip_and_reject_garbage() -> None:
    assert decode_global_id(encode_global_id("Customer", 42)) == ("Customer", 42)
    for bad in ("", "@@", "Q3VzdG9tZXI6", "Q3VzdG9tZXI6YWJj", "QTpCOkM", "a" * 201):
        assert decode_global_id(bad) is None, bad


async def test_node_answers_subscriptions_trials_and_tags_only_within_scope(
    client: httpx.AsyncClient,
) -> None:
    from datetime import date, timedelta

    from app.models.subscriptions import Subscription
    from app.models.tags import Tag

    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    foreign_full = await factories.admin(contoso, AdminRole.FULL_ADMIN)
    assigned = await factories.customer(northwind, "Assigned")
    unassigned = await factories.customer(northwind, "Unassigned")
    await factories.assign(team[AdminRole.ADMIN].admin, assigned)
    today = date.today()
    objects = {}
    for name, customer in (("assigned", assigned), ("unassigned", unassigned)):
        trial = await factories.trial(customer, today, today + timedelta(days=10))
        sub = await Subscription.get(trial_id=trial.id)
        objects[name] = (
            encode_global_id("Trial", trial.id),
            encode_global_id("CustomerSubscription", sub.id),
        )
    tag = encode_global_id(
        "Tag", (await Tag.create(partner=northwind, name="Gold", name_key="gold")).id
    )
    query = """query($id: ID!) { node(id: $id) { id __typename
      ... on Trial { customer { name } } ... on CustomerSubscription { customer { name } } } }"""

    async def found(token: str, global_id: str) -> bool:
        return (await data(client, token, query, {"id": global_id}))["node"] is not None

    full, admin = team[AdminRole.FULL_ADMIN].token, team[AdminRole.ADMIN].token
    for global_id in (*objects["assigned"], *objects["unassigned"], tag):
        assert await found(full, global_id)
        assert not await found(foreign_full.token, global_id)  # another partner: null
    for global_id in objects["assigned"]:
        assert await found(admin, global_id)
    for global_id in objects["unassigned"]:
        assert not await found(admin, global_id)  # outside the ADMIN's customers: null
    assert await found(admin, tag)  # tags are visible to every admin of the partner
