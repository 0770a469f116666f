"""GraphQL over HTTP to the letter: what the served schema and the endpoint say."""

from __future__ import annotations

from pathlib import Path

import httpx
from graphql import GraphQLEnumType, build_schema

from app.models.enums import AdminRole
from tests import factories
from tests.graphql_client import gql

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract" / "schema.graphql"


def test_every_enum_value_description_of_the_contract_is_served() -> None:
    from schema import schema

    contract = build_schema(CONTRACT.read_text())
    served = schema._schema
    described = 0
    for name, type_ in contract.type_map.items():
        if name.startswith("__") or not isinstance(type_, GraphQLEnumType):
            continue
        for value_name, value in type_.values.items():
            if value.description:
                described += 1
                ours = served.type_map[name].values[value_name].description  # type: ignore[union-attr]
                assert ours == value.description, f"{name}.{value_name}"
    assert described >= 13


async def test_several_operations_without_an_operation_name_are_an_error(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.FULL_ADMIN)
    document = "query A { viewer { email } } query B { organization { name } }"
    response = await gql(client, admin.token, document)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body.get("data") is None, body
    assert "operationName" in body["errors"][0]["message"] or "operation name" in (
        body["errors"][0]["message"].lower()
    )
    named = await client.post(
        "/graphql",
        json={"query": document, "operationName": "B"},
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert named.json()["data"] == {"organization": {"name": "Northwind Partners"}}
    unknown = await client.post(
        "/graphql",
        json={"query": document, "operationName": "C"},
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert unknown.headers["content-type"].startswith("application/json")
    assert unknown.json()["errors"]


async def test_every_4xx_from_graphql_is_a_json_body_with_errors(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.FULL_ADMIN)
    auth = {"Authorization": f"Bearer {admin.token}"}
    answers = [
        await client.put("/graphql", json={"query": "{ viewer { email } }"}, headers=auth),
        await client.delete("/graphql", headers=auth),
        await client.post(
            "/graphql", content=b"query=x", headers={**auth, "Content-Type": "text/plain"}
        ),
        await client.post("/graphql", json={"variables": {}}, headers=auth),  # no query
        await client.post("/graphql", json={"query": 5}, headers=auth),
        await client.post(
            "/graphql", json={"query": "{ viewer { email } }", "variables": [1]}, headers=auth
        ),
        await client.get(
            "/graphql",
            params={"query": 'mutation { createTag(input: {name: "x"}) { tag { id } } }'},
            headers=auth,
        ),
        await client.get("/nowhere", headers=auth),
        await client.post("/graphql", json={"query": "{ viewer { email } }"}),
    ]
    for response in answers:
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/json"), response.text
        error = response.json()["errors"][0]
        assert error["message"] and error["extensions"]["code"], response.text


async def test_a_document_is_validated_once_and_the_depth_and_alias_limits_still_hold(
    client: httpx.AsyncClient,
) -> None:
    """The validation cache serves a document sent again (its key holds the
    validation rules, which are made once), and the depth and alias limits still
    refuse what they refused, each time it is sent."""
    from strawberry.extensions.validation_cache import _get_validate_cache

    from schema.root import DOCUMENT_CACHE_SIZE, MAX_ALIASES, MAX_QUERY_DEPTH

    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.FULL_ADMIN)
    cache = _get_validate_cache(DOCUMENT_CACHE_SIZE)
    document = "query Once { viewer { email role } organization { name } }"
    await gql(client, admin.token, document)
    before = cache.cache_info()
    for _ in range(3):
        body = (await gql(client, admin.token, document)).json()
        assert body["data"]["organization"] == {"name": "Northwind Partners"}
    after = cache.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)

    # Every field exists (customer -> its admins -> their customers -> ...):
    # only the depth is at fault.
    laps = MAX_QUERY_DEPTH // 4 + 1
    deep = "query Deep { customers { nodes { " + (
        "partnerAdmins { admin { assignedCustomers { nodes { " * laps
    )
    deep += "id" + " } } } }" * laps + " } } }"
    aliased = (
        "query Many { "
        + " ".join(f"a{n}: viewer {{ email }}" for n in range(MAX_ALIASES + 1))
        + " }"
    )
    for refused, words in ((deep, "depth"), (aliased, "aliases")):
        for _ in range(2):
            errors = (await gql(client, admin.token, refused)).json()["errors"]
            assert any(words in e["message"].lower() for e in errors), errors
