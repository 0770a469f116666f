"""The root Query and the Strawberry schema with its limits."""

from __future__ import annotations

import functools

import strawberry
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from schema.admins import Admin, resolve_viewer
from schema.errors import should_mask_error
from schema.node import Node, resolve_node
from schema.organization import PartnerOrganization, resolve_organization

MAX_QUERY_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5000


@strawberry.type(name="Query")
class Query:
    node: Node | None = strawberry.field(
        resolver=resolve_node,
        description="Any object by its global id, within the viewer's scope; null otherwise.",
    )
    viewer: Admin = strawberry.field(resolver=resolve_viewer, description="The calling admin.")
    organization: PartnerOrganization = strawberry.field(
        resolver=resolve_organization, description="The viewer's partner organization."
    )


schema = strawberry.Schema(
    query=Query,
    extensions=[
        functools.partial(QueryDepthLimiter, max_depth=MAX_QUERY_DEPTH),
        functools.partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
        functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        functools.partial(MaskErrors, should_mask_error=should_mask_error),
    ],
)
