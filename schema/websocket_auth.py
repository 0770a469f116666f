"""An open websocket keeps checking its token.

BearerAuth (app/http.py) resolves the token at the upgrade, or the view's
`on_ws_connect` at `connection_init` (schema/asgi.py), and leaves an API
token's sha256 (or an OIDC token's expiry) in the connection's `state.sign_in`
(app/sign_in.py). While the socket is open, a task asks
the database every `websocket_auth_recheck_seconds` whether that token is still
neither revoked nor expired, and closes the socket (4401) as soon as it is not,
subscriptions and all. Both subprotocols (graphql-transport-ws, graphql-ws) do.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from app.auth import token_hash_is_active

log = logging.getLogger("partnerhub.websocket")

CLOSE_CODE = 4401
CLOSE_REASON = "Unauthorized: the token was revoked or has expired"


async def watch_token(websocket: Any, state: Any, interval: float) -> None:
    """Close `websocket` (a Strawberry websocket adapter) once its sign-in stops
    working: an API token revoked or expired, an OIDC token past its `exp`.
    The sign-in is read from the connection's state at each tick, since a
    browser signs in with `connection_init`, after the socket opened. A failed
    check (the database briefly away) is retried at the next tick."""
    while True:
        await asyncio.sleep(interval)
        signed = getattr(state, "sign_in", None)
        expires_at = signed.expires_at if signed is not None else None
        token_hash = signed.token_hash if signed is not None else None
        if expires_at is not None and expires_at <= datetime.now(UTC):
            active = False
        elif token_hash is None:
            continue
        else:
            try:
                active = await token_hash_is_active(token_hash)
            except Exception:
                log.warning("could not re-check a websocket's token; retrying", exc_info=True)
                continue
        if not active:
            log.info("closing a websocket: its token was revoked or has expired")
            await websocket.close(code=CLOSE_CODE, reason=CLOSE_REASON)
            return


class TokenRecheck:
    """Mixin for a Strawberry websocket protocol handler: runs `watch_token` for as
    long as the handler runs."""

    websocket: Any
    context: Any

    async def handle(self) -> None:
        interval = self.context.settings.websocket_auth_recheck_seconds
        watcher = asyncio.create_task(
            watch_token(self.websocket, self.context.request.state, interval)
        )
        try:
            await super().handle()  # type: ignore[misc]
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


class TransportWSHandler(TokenRecheck, BaseGraphQLTransportWSHandler):
    """graphql-transport-ws, re-checking the token."""


class LegacyWSHandler(TokenRecheck, BaseGraphQLWSHandler):
    """graphql-ws (the legacy subprotocol), re-checking the token."""
