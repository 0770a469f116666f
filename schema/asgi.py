"""The Strawberry ASGI app for /graphql, with the viewer in its context.

Beyond Strawberry's own view: every HTTP error is a JSON GraphQL error, a body
must be one UTF-8 JSON object, and each query or mutation runs within the
operation time limit (TIMEOUT past it). An answer whose resolver lost the
database is HTTP 503 with Retry-After (`UNAVAILABLE`); a websocket whose token
cannot be checked for that reason closes with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from app.auth import bearer_token
from app.config import Settings
from app.domain.text import text_fault
from app.middleware import (
    DATABASE_RETRY_AFTER_SECONDS,
    error_response,
    origin_allowed,
    wants_graphiql_page,
)
from app.persisted_queries import PersistedQueryError, resolve_document
from app.sign_in import SignInRefused, remember_sign_in, sign_in
from schema.context import Context
from schema.errors import apply_policy, is_unavailable
from schema.root import schema
from schema.websocket_auth import LegacyWSHandler, TransportWSHandler

log = logging.getLogger("partnerhub.graphql")


GRAPHIQL_FALLBACK = """<noscript><p>GraphiQL needs JavaScript. The API itself answers
POST /graphql with an Authorization: Bearer token.</p></noscript>
<script>
  setTimeout(function () {
    if (window.GraphiQL) return;
    var box = document.getElementById("graphiql");
    box.textContent = "GraphiQL could not load its scripts (they come from a CDN: this " +
      "browser may have no internet access). The API works without it: POST /graphql " +
      "with a JSON body and an Authorization: Bearer <token> header.";
    box.setAttribute("role", "alert");
  }, 8000);
</script>
"""


class GraphQLHTTPError(HTTPException):
    """An HTTP answer with a JSON GraphQL error of its own code."""

    def __init__(self, status_code: int, reason: str, code: str) -> None:
        super().__init__(status_code, reason)
        self.code = code


class RequestAdapter(StarletteRequestAdapter):
    @property
    def request(self) -> Request:
        return self._request


# RFC 6455's "Try Again Later": a socket whose sign-in cannot be checked now
# (the database or the OIDC issuer's keys out of reach) closes with it, not
# with graphql-transport-ws's 4403 Forbidden, which tells a page its token is bad.
TRY_AGAIN_LATER = 1013
TRY_AGAIN_LATER_REASON = "Sign-in unavailable for now: retry in a few seconds"


class WebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's websocket adapter, closing with the code `on_ws_connect`
    chose (`state.websocket_close`) when it refused a sign-in for now."""

    async def close(self, code: int, reason: str) -> None:
        chosen = getattr(self.ws.state, "websocket_close", None)
        if chosen is not None:
            code, reason = chosen
        await super().close(code, reason)

    async def send_json(self, message: Any) -> None:
        """Websocket messages go as text frames (graphql-ws clients read text)."""
        encoded = self.view.encode_json(message)
        await self.ws.send_text(encoded.decode() if isinstance(encoded, bytes) else encoded)


class PartnerHubGraphQL(GraphQL):
    request_adapter_class = RequestAdapter
    websocket_adapter_class = WebSocketAdapter

    # Open websockets re-check their token (schema/websocket_auth.py).
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            # A socket that does not sign in (connection_init) within this closes (4408).
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.settings = settings

    def should_render_graphql_ide(self, request: Any) -> bool:
        """Only a browser's GET with no operation parameter (an APQ GET carries
        `extensions` and no `query`: an operation, not the page)."""
        return wants_graphiql_page(
            request.method, request.query_params.keys(), request.headers.get("accept", "")
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL, which says so in words when its scripts (from a CDN) cannot load."""
        html = self.graphql_ide_html.replace("</body>", GRAPHIQL_FALLBACK + "</body>", 1)
        return HTMLResponse(html)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except GraphQLHTTPError as refused:
            response = error_response(refused.status_code, refused.reason, refused.code)
        except HTTPException as refused:
            code = "BAD_REQUEST" if refused.status_code == 400 else f"HTTP_{refused.status_code}"
            response = error_response(refused.status_code, refused.reason, code)
        await response(scope, receive, send)

    def encode_json(self, data: object) -> bytes:
        """Answers encoded by orjson (UTF-8, several times faster than the json
        module on a page of rows); the json module only for what orjson refuses
        (a lone surrogate quoted back in an error message)."""
        try:
            return orjson.dumps(data)
        except (orjson.JSONEncodeError, TypeError):
            return json.dumps(data, separators=(",", ":")).encode()

    def parse_json(self, data: str | bytes) -> Any:
        """A request body (or the `variables` / `extensions` parameter of a GET):
        UTF-8 JSON holding one object."""
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise HTTPException(400, "The request body is not UTF-8 text.") from None
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            raise HTTPException(400, "The request body is not valid JSON.") from None
        if isinstance(value, list):
            raise HTTPException(
                400, "Batched operations are not supported: send one JSON object per request."
            )
        if not isinstance(value, dict):
            raise HTTPException(
                400,
                'The request body must be a JSON object: {"query": ..., "variables": {...}}.',
            )
        return value

    async def parse_http_body(self, request: Any) -> Any:
        """The request's operation, with persisted queries resolved (APQ by hash,
        trusted documents for OIDC sign-ins: app/persisted_queries.py)."""
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            return data
        name = data.operation_name
        if name is not None and (not isinstance(name, str) or text_fault(name)):
            raise GraphQLHTTPError(
                400,
                "`operationName` must be the name of an operation of the document.",
                "BAD_REQUEST",
            )
        http: Request = request.request
        runtime = http.app.state.runtime
        signed = getattr(http.state, "sign_in", None)
        try:
            data.query = await resolve_document(
                data.query,
                data.extensions,
                runtime.query_store,
                runtime.trusted_documents,
                trusted_only=signed is not None and signed.method == "oidc",
            )
        except PersistedQueryError as refused:
            raise GraphQLHTTPError(refused.status, str(refused), refused.code) from None
        return data

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """One query or mutation, stopped at the operation time limit."""
        limit = self.settings.operation_timeout_seconds
        context: Context = kwargs["context"]
        try:
            async with asyncio.timeout(limit):
                result = await super().execute_single(*args, **kwargs)
            if result.errors:
                result.errors = apply_policy(result.errors, context.request_id)
                if is_unavailable(result.errors) and context.response is not None:
                    # The database is away: 503, so clients and proxies retry.
                    context.response.status_code = 503
                    context.response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
            return result
        except TimeoutError:
            name = getattr(kwargs.get("request_data"), "operation_name", None) or "-"
            log.info("client error in operation %s: TIMEOUT after %g s", name, limit)
            error = GraphQLError(
                f"The operation ran past its time limit of {limit:g} s and was stopped: "
                "ask for smaller pages or fewer fields.",
                extensions={"code": "TIMEOUT"},
            )
            extensions = {"cost": context.cost} if context.cost else None
            return ExecutionResult(data=None, errors=[error], extensions=extensions)

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        """A page of another origin opens a websocket only from an allowed origin
        (the CORS allow-list; requests with no Origin are not browsers)."""
        return origin_allowed(self.settings, origin)

    async def on_ws_connect(self, context: Context) -> Any:
        """graphql-transport-ws `connection_init`: a browser (which cannot set
        headers on a websocket) signs in with its payload, `{"Authorization":
        "Bearer <token>"}` (or `authorization`, or `authToken`: the bare token).
        No valid token: the socket closes with 4403 Forbidden (1013, try again
        later, when the token cannot be checked now: the database is away)."""
        state = context.request.state
        if context.viewer is not None:
            return UNSET  # signed in with the upgrade's Authorization header
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        raw = next(
            (params[k] for k in ("Authorization", "authorization", "authToken") if k in params),
            None,
        )
        token = None
        if isinstance(raw, str):
            token = bearer_token(raw) if " " in raw.strip() else raw.strip() or None
        if token is None:
            unavailable = getattr(state, "sign_in_unavailable", None)
            if unavailable:  # the upgrade's token could not be checked (BearerAuth)
                raise _sign_in_unavailable(state, unavailable)
            raise ConnectionRejectionError(
                {"message": "Sign in: send the token in connection_init."}
            )
        try:
            signed = await sign_in(token, context.request.app.state.runtime.oidc_verifier)
        except SignInRefused as refused:
            if refused.status == 503:
                raise _sign_in_unavailable(state, str(refused)) from None
            raise ConnectionRejectionError({"message": str(refused)}) from None
        context.viewer = signed.viewer
        remember_sign_in(state, signed)
        return UNSET

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        # Only the GraphiQL page reaches here without a viewer (BearerAuth lets
        # it through), and rendering that page runs no resolver.
        return Context(
            request=request,  # type: ignore[arg-type]
            response=response if isinstance(response, Response) else None,
            viewer=getattr(request.state, "viewer", None),  # type: ignore[arg-type]
            settings=self.settings,
        )


def _sign_in_unavailable(state: Any, message: str) -> ConnectionRejectionError:
    """A sign-in that cannot be checked now: graphql-ws hears the message with
    `UNAVAILABLE`, and the socket closes with 1013 (try again later) on both
    subprotocols."""
    state.websocket_close = (TRY_AGAIN_LATER, TRY_AGAIN_LATER_REASON)
    return ConnectionRejectionError({"message": message, "extensions": {"code": "UNAVAILABLE"}})


def create_graphql_app(settings: Settings) -> PartnerHubGraphQL:
    return PartnerHubGraphQL(settings)
