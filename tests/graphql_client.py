"""A small helper to post GraphQL as a partner admin would."""

from __future__ import annotations

from typing import Any

import httpx


async def gql(
    client: httpx.AsyncClient, token: str | None, query: str, variables: dict | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )


async def data(
    client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> Any:
    """The `data` of a successful answer; fails the test on errors."""
    response = await gql(client, token, query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]
