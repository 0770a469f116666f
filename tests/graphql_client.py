"""A small helper to post GraphQL as a partner admin would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.config import Settings


@asynccontextmanager
async def app_client(settings: Settings, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a fresh app with these settings (sharing the test's
    database connection: the app's lifespan does not run)."""
    from app.http import create_app

    app = create_app(settings)
    app.state.runtime.redis_url = redis_url
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.runtime.close_queue()


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
