"""The Strawberry ASGI app for /graphql, with the viewer in its context."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app.config import Settings
from schema.context import Context
from schema.root import schema


class PartnerHubGraphQL(GraphQL):
    def __init__(self, settings: Settings) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.settings = settings

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


def create_graphql_app(settings: Settings) -> PartnerHubGraphQL:
    return PartnerHubGraphQL(settings)
