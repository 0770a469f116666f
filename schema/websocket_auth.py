"""An open websocket keeps checking its token.

BearerAuth (app/http.py) resolves the token once, at the upgrade, and leaves its
sha256 in `scope["state"]["token_hash"]`. While the socket is open, a task asks
the database every `websocket_auth_recheck_seconds` whether that token is still
neither revoked nor expired, and closes the socket (4401) as soon as it is not,
subscriptions and all. Both subprotocols (graphql-transport-ws, graphql-ws) do.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from app.auth import token_hash_is_active

log = logging.getLogger("partnerhub.websocket")

CLOSE_CODE = 4401
CLOSE_REASON = "Unauthorized: the token was revoked or has expired"


async def watch_token(websocket: Any, token_hash: str, interval: float) -> None:
    """Close `websocket` (a Strawberry websocket adapter) once the token stops working.
    A failed check (the database briefly away) is retried at the next tick."""
    while True:
        await asyncio.sleep(interval)
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
        request = self.context.request
        token_hash = getattr(request.state, "token_hash", None)
        watcher = None
        if token_hash is not None:
            interval = self.context.settings.websocket_auth_recheck_seconds
            watcher = asyncio.create_task(watch_token(self.websocket, token_hash, interval))
        try:
            await super().handle()  # type: ignore[misc]
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)


class TransportWSHandler(TokenRecheck, BaseGraphQLTransportWSHandler):
    """graphql-transport-ws, re-checking the token."""


class LegacyWSHandler(TokenRecheck, BaseGraphQLWSHandler):
    """graphql-ws (the legacy subprotocol), re-checking the token."""
