"""The root Query and the Strawberry schema with its limits."""

from __future__ import annotations

import functools

import strawberry
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from schema.admins import Admin, resolve_viewer
from schema.customers import Customer, CustomerConnection, resolve_customer, resolve_customers
from schema.errors import should_mask_error
from schema.node import Node, resolve_node
from schema.organization import (
    OrganizationPayload,
    PartnerOrganization,
    resolve_complete_setup,
    resolve_organization,
)
from schema.resources import Resource, resolve_resources
from schema.subscriptions import CustomerSubscription
from schema.tags import Tag
from schema.trials import Trial

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
    customers: CustomerConnection = strawberry.field(
        resolver=resolve_customers,
        description="Customers the viewer's role reaches, filtered, ordered and paginated.",
    )
    customer: Customer | None = strawberry.field(
        resolver=resolve_customer, description="A customer in the viewer's scope; null otherwise."
    )
    resources: list[Resource] = strawberry.field(
        resolver=resolve_resources, description="Resources and help."
    )


@strawberry.type(name="Mutation")
class Mutation:
    complete_organization_setup: OrganizationPayload = strawberry.field(
        resolver=resolve_complete_setup,
        description="The first-time setup wizard (FULL_ADMIN): accept the terms.",
    )


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    # Types reached only through interfaces, so node(id:) can answer them.
    types=[CustomerSubscription, Trial, Tag],
    extensions=[
        functools.partial(QueryDepthLimiter, max_depth=MAX_QUERY_DEPTH),
        functools.partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
        functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        functools.partial(MaskErrors, should_mask_error=should_mask_error),
    ],
)
