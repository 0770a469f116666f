"""Bearer tokens on every request but /healthz, the viewer and organization
queries, /healthz itself, and the GraphiQL page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from app.models.admins import ApiToken
from app.models.enums import AdminRole
from tests import factories
from tests.graphql_client import data, gql

VIEWER_QUERY = """{ viewer { email role accessAllCustomers displayName }
  organization { name setupCompleted orgId } }"""


async def test_missing_token_is_401_with_a_json_error(client: httpx.AsyncClient) -> None:
    await factories.partner("Northwind Partners", "northwind.example")
    response = await gql(client, None, VIEWER_QUERY)
    assert response.status_code == 401
    error = response.json()["errors"][0]
    assert "Missing bearer token" in error["message"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_revoked_expired_and_malformed_tokens_are_401(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    revoked = await factories.admin(org, AdminRole.FULL_ADMIN)
    await ApiToken.filter(admin=revoked.admin).update(revoked_at=datetime.now(UTC))
    expired = await factories.admin(org, AdminRole.FULL_ADMIN)
    await ApiToken.filter(admin=expired.admin).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    for token in ("not-a-token", revoked.token, expired.token):
        response = await gql(client, token, VIEWER_QUERY)
        assert response.status_code == 401, token
        assert "Unknown, revoked or expired" in response.json()["errors"][0]["message"]
    basic = await client.post(
        "/graphql", json={"query": VIEWER_QUERY}, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert basic.status_code == 401


async def test_each_admin_sees_itself_and_its_own_organization(client: httpx.AsyncClient) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example", setup_completed=False)
    for org in (northwind, contoso):
        for role, member in (await factories.team(org)).items():
            answer = await data(client, member.token, VIEWER_QUERY)
            assert answer["viewer"]["email"] == member.admin.email
            assert answer["viewer"]["role"] == role.value
            assert answer["viewer"]["accessAllCustomers"] == (
                role
                in (AdminRole.FULL_ADMIN, AdminRole.READ_ONLY_ADMIN, AdminRole.SALES_FULL_ADMIN)
            )
            assert answer["organization"] == {
                "name": org.name,
                "setupCompleted": org is northwind,
                "orgId": str(org.org_id),
            }


async def test_a_used_token_records_when_it_was_last_used(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    member = await factories.admin(org, AdminRole.ADMIN)
    before = datetime.now(UTC)
    await data(client, member.token, "{ viewer { email } }")
    record = await ApiToken.get(admin=member.admin)
    assert record.last_used_at is not None and record.last_used_at >= before - timedelta(seconds=1)


async def test_get_requests_carry_queries_too(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    member = await factories.admin(org, AdminRole.READ_ONLY_ADMIN)
    response = await client.get(
        "/graphql",
        params={"query": "{ viewer { email } }"},
        headers={"Authorization": f"Bearer {member.token}"},
    )
    assert response.json()["data"] == {"viewer": {"email": member.admin.email}}
    anonymous = await client.get("/graphql", params={"query": "{ viewer { email } }"})
    assert anonymous.status_code == 401


async def test_graphiql_page_opens_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    # ... but a query sent from it with no token is refused.
    refused = await client.get(
        "/graphql", params={"query": "{ viewer { email } }"}, headers={"Accept": "text/html"}
    )
    assert refused.status_code == 401


async def test_healthz_needs_no_token_and_checks_database_and_redis(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "database", "redis")} == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
    }


async def test_healthz_is_503_when_redis_is_down(http_settings, redis_url: str) -> None:
    from app.http import create_app

    app = create_app(http_settings)
    app.state.runtime.redis_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["redis"] == "unreachable"
    assert response.json()["status"] == "unavailable"
