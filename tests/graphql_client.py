"""A small helper to post GraphQL as a partner admin would."""

from __future__ import annotations

import asyncio
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


# How often `data` waits out the query-cost throttle, as a well-behaved client does.
THROTTLED_RETRIES = 10


async def data(
    client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> Any:
    """The `data` of a successful answer; fails the test on errors. A THROTTLED
    answer (a test sending expensive queries faster than the cost budget comes
    back) is waited out for its retryAfterSeconds and sent again, a bounded
    number of times: what these tests check is the answer, not the throttle."""
    for _ in range(THROTTLED_RETRIES):
        response = await gql(client, token, query, variables)
        body = response.json()
        errors = body.get("errors") or []
        # The throttle answers with its own HTTP status (429): check it first.
        if errors and all(e.get("extensions", {}).get("code") == "THROTTLED" for e in errors):
            wait = max(e["extensions"].get("retryAfterSeconds", 1) for e in errors)
            await asyncio.sleep(min(float(wait), 5.0))
            continue
        assert response.status_code == 200, response.text
        break
    assert "errors" not in body, body["errors"]
    return body["data"]
