"""Customer, its connection, filter and ordering, and the customers/customer queries."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import external_admins, licenses, tags
from app.domain.customers import CustomerFilter as CustomerFilterValue
from app.domain.customers import CustomerOrder as CustomerOrderValue
from app.domain.customers import get_customer, list_customers
from app.domain.ids import decode_id_of, encode_global_id
from app.domain.organization import launch_url
from app.domain.pagination import Page, offset_page
from app.models.customers import Customer as CustomerModel
from schema.admins import Admin, AdminAssignment
from schema.context import Info
from schema.enums import (
    CustomerOrderField,
    CustomerStatus,
    ManagedBy,
    Product,
    Region,
    SortDirection,
    SubscriptionKind,
)
from schema.node import Node, node_loader
from schema.pagination import PageInfo, connection_parts
from schema.payloads import UserError, mutate
from schema.subscriptions import LicenseCounts, SubscriptionConnection
from schema.tags import SetCustomerTagsInput, Tag
from schema.trials import Trial


@strawberry.type(name="Location")
class Location:
    id: strawberry.ID
    name: str
    country: str


@strawberry.type(
    name="ExternalAdmin",
    description="An admin of another partner organization made an external admin of a "
    "customer (grantExternalAdmin): it sees that customer read-only until revoked.",
)
class ExternalAdmin:
    email: str = strawberry.field(description="The e-mail the grant was made to.")
    granted_at: datetime
    granted_by_id: strawberry.Private[int | None]

    @strawberry.field(description="The FULL_ADMIN of this organization who made the grant.")
    async def granted_by(self, info: Info) -> Admin | None:
        if self.granted_by_id is None:
            return None
        admin = await info.context.loaders.admins.load(self.granted_by_id)
        return Admin.from_model(admin) if admin else None

    @classmethod
    def of(cls, value: external_admins.ExternalAdmin) -> ExternalAdmin:
        return cls(
            email=value.email,
            granted_at=value.granted_at,  # type: ignore[arg-type]
            granted_by_id=value.granted_by_id,
        )


@strawberry.type(name="Customer")
class Customer(Node):
    model: strawberry.Private[CustomerModel]
    name: str
    org_id: str = strawberry.field(description="Control Hub organization UUID.")
    external_id: str | None = strawberry.field(
        description="Wholesale external id; null for non-wholesale customers."
    )
    region: Region
    location: str | None
    created_at: datetime
    last_admin_activity_at: datetime | None

    @classmethod
    def of(cls, customer: CustomerModel) -> Customer:
        return cls(
            id=strawberry.ID(encode_global_id("Customer", customer.id)),
            model=customer,
            name=customer.name,
            org_id=str(customer.org_id),
            external_id=customer.external_id,
            region=customer.region,
            location=customer.location,
            created_at=customer.created_at,
            last_admin_activity_at=customer.last_admin_activity_at,
        )

    @strawberry.field
    async def statuses(self, info: Info) -> list[CustomerStatus]:
        return await info.context.loaders.statuses.load(self.model.id)

    @strawberry.field
    async def products(self, info: Info) -> list[Product]:
        return await info.context.loaders.products.load(self.model.id)

    @strawberry.field(description="Relative to the viewer.")
    async def managed_by(self, info: Info) -> ManagedBy:
        return await info.context.loaders.managed_by.load(self.model.id)

    @strawberry.field
    async def tags(self, info: Info) -> list[Tag]:
        return [Tag.of(tag) for tag in await info.context.loaders.tags.load(self.model.id)]

    @strawberry.field(
        description="Link that opens the customer organization (Launch organization)."
    )
    def launch_url(self, info: Info) -> str:
        return launch_url(info.context.settings.control_hub_url, self.model.org_id)

    @strawberry.field(description="Licenses of the subscriptions and trials that hold them.")
    async def license_totals(self, info: Info) -> LicenseCounts:
        loaders = info.context.loaders
        subs = licenses.holding(await loaders.subscriptions.load(self.model.id))
        lines = await loaders.license_lines.load_many([s.id for s in subs])
        return LicenseCounts.of(licenses.sum_counts(line for group in lines for line in group))

    @strawberry.field
    async def subscriptions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> SubscriptionConnection:
        subs = await info.context.loaders.subscriptions.load(self.model.id)
        page = offset_page(subs, first, after, "subscriptions")
        return SubscriptionConnection.of(page, self.model)

    @strawberry.field
    async def trials(self, info: Info) -> list[Trial]:
        return [
            Trial.of(t, self.model) for t in await info.context.loaders.trials.load(self.model.id)
        ]

    @strawberry.field
    async def partner_admins(self, info: Info) -> list[AdminAssignment]:
        assignments = await info.context.loaders.partner_admins.load(self.model.id)
        return [
            AdminAssignment(
                admin=Admin.from_model(a.admin), role=a.admin.role, assigned_at=a.assigned_at
            )
            for a in assignments
        ]

    @strawberry.field(
        description="Admins of other partner organizations made external admins of this "
        "customer (grantExternalAdmin); empty on a customer seen through such a grant."
    )
    async def external_admins(self, info: Info) -> list[ExternalAdmin]:
        found = await info.context.loaders.external_admins.load(self.model.id)
        return [ExternalAdmin.of(value) for value in found]

    @strawberry.field
    async def locations(self, info: Info) -> list[Location]:
        rows = await info.context.loaders.locations.load(self.model.id)
        return [
            Location(id=strawberry.ID(str(r.uuid)), name=r.name, country=r.country) for r in rows
        ]


@strawberry.type(name="CustomerEdge")
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type(name="CustomerConnection")
class CustomerConnection:
    edges: list[CustomerEdge]
    nodes: list[Customer]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[CustomerModel]) -> CustomerConnection:
        return cls(**connection_parts(page, Customer.of, CustomerEdge))


@strawberry.input(name="CustomerFilter")
class CustomerFilter:
    search: str | None = strawberry.field(
        default=None,
        description="Case-insensitive match on name, org id or external id; an exact phone "
        "number or device MAC address also finds its customer.",
    )
    email: str | None = strawberry.field(
        default=None,
        description="Finds the organization that has a user with this exact email "
        "(case-insensitive).",
    )
    managed_by: ManagedBy | None = None
    products: list[Product] | None = strawberry.field(default=None, description="Any of.")
    statuses: list[CustomerStatus] | None = strawberry.field(default=None, description="Any of.")
    subscription_type: SubscriptionKind | None = strawberry.field(
        default=None,
        description="SUBSCRIPTION: has an active, suspended or pending subscription. "
        "TRIAL: has an ongoing trial.",
    )
    tag_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Customers carrying every one of these tags."
    )
    regions: list[Region] | None = None

    def value(self) -> CustomerFilterValue:
        return CustomerFilterValue(
            search=self.search,
            email=self.email,
            managed_by=self.managed_by,
            products=self.products,
            statuses=self.statuses,
            subscription_type=self.subscription_type,
            tag_ids=[decode_id_of(str(t), "Tag") for t in self.tag_ids]
            if self.tag_ids is not None
            else None,
            regions=self.regions,
        )


@strawberry.input(name="CustomerOrder")
class CustomerOrder:
    field: CustomerOrderField
    direction: SortDirection

    def value(self) -> CustomerOrderValue:
        return CustomerOrderValue(field=self.field, descending=self.direction == SortDirection.DESC)


async def resolve_customers(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: CustomerFilter | None = None,
    order_by: CustomerOrder | None = None,
) -> CustomerConnection:
    page = await list_customers(
        info.context.viewer,
        info.context.clock,
        first=first,
        after=after,
        flt=filter.value() if filter else None,
        order=order_by.value() if order_by else None,
    )
    return CustomerConnection.of(page)


async def resolve_customer(info: Info, id: strawberry.ID) -> Customer | None:
    return await load_customer(info, decode_id_of(str(id), "Customer") or 0)


@node_loader("Customer")
async def load_customer(info: Info, pk: int) -> Customer | None:
    customer = await get_customer(info.context.viewer, pk) if pk else None
    return Customer.of(customer) if customer else None


@strawberry.type(name="CustomerPayload")
class CustomerPayload:
    customer: Customer | None
    user_errors: list[UserError]


async def resolve_set_customer_tags(info: Info, input: SetCustomerTagsInput) -> CustomerPayload:
    return await mutate(
        CustomerPayload,
        lambda: tags.set_customer_tags(
            info.context.viewer,
            decode_id_of(str(input.customer_id), "Customer"),
            [decode_id_of(str(t), "Tag") for t in input.tag_ids],
            info.context.settings.max_tags_per_customer,
        ),
        lambda customer: {"customer": Customer.of(customer)},
    )


@strawberry.input(
    name="TagCustomersInput",
    description="One tag and the customers it goes to (or comes off): either customerIds "
    "(at most 10,000) or filter, exactly one.",
)
class TagCustomersInput:
    tag_id: strawberry.ID
    customer_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Customers in the viewer's scope; duplicates count once."
    )
    filter: CustomerFilter | None = strawberry.field(
        default=None,
        description="Every customer the `customers` query returns for this filter that you "
        "may change (customers seen through an external-admin grant are left out; at most "
        "10,000).",
    )


@strawberry.type(name="TagCustomersPayload")
class TagCustomersPayload:
    tag: Tag | None
    customer_count: int | None = strawberry.field(
        description="Distinct customers the call covered."
    )
    changed_count: int | None = strawberry.field(
        description="Of them, those that gained the tag (addTagToCustomers) or lost it "
        "(removeTagFromCustomers); the others already did or did not carry it."
    )
    user_errors: list[UserError]


def _bulk_shape(result: tags.BulkTagResult) -> dict:
    return {
        "tag": Tag.of(result.tag),
        "customer_count": result.customer_count,
        "changed_count": result.changed_count,
    }


def _bulk_ids(input: TagCustomersInput) -> list[int | None] | None:
    if input.customer_ids is None:
        return None
    return [decode_id_of(str(c), "Customer") for c in input.customer_ids]


async def resolve_add_tag_to_customers(info: Info, input: TagCustomersInput) -> TagCustomersPayload:
    return await mutate(
        TagCustomersPayload,
        lambda: tags.add_tag_to_customers(
            info.context.viewer,
            decode_id_of(str(input.tag_id), "Tag"),
            _bulk_ids(input),
            input.filter.value() if input.filter else None,
            info.context.clock,
            info.context.settings.max_tags_per_customer,
        ),
        _bulk_shape,
    )


async def resolve_remove_tag_from_customers(
    info: Info, input: TagCustomersInput
) -> TagCustomersPayload:
    return await mutate(
        TagCustomersPayload,
        lambda: tags.remove_tag_from_customers(
            info.context.viewer,
            decode_id_of(str(input.tag_id), "Tag"),
            _bulk_ids(input),
            input.filter.value() if input.filter else None,
            info.context.clock,
        ),
        _bulk_shape,
    )


@strawberry.input(
    name="ExternalAdminInput",
    description="A customer of the viewer's partner and the e-mail of an admin of another "
    "partner organization.",
)
class ExternalAdminInput:
    customer_id: strawberry.ID
    admin_email: str


@strawberry.type(name="ExternalAdminPayload")
class ExternalAdminPayload:
    customer: Customer | None
    external_admin: ExternalAdmin | None = strawberry.field(
        description="The grant made (grantExternalAdmin) or ended (revokeExternalAdmin)."
    )
    user_errors: list[UserError]


def _external_admin_shape(change: external_admins.ExternalAdminChange) -> dict:
    grant = change.grant
    return {
        "customer": Customer.of(change.customer),
        "external_admin": ExternalAdmin(
            email=change.email, granted_at=grant.granted_at, granted_by_id=grant.granted_by_id
        ),
    }


async def resolve_grant_external_admin(
    info: Info, input: ExternalAdminInput
) -> ExternalAdminPayload:
    return await mutate(
        ExternalAdminPayload,
        lambda: external_admins.grant_external_admin(
            info.context.viewer, decode_id_of(str(input.customer_id), "Customer"), input.admin_email
        ),
        _external_admin_shape,
    )


async def resolve_revoke_external_admin(
    info: Info, input: ExternalAdminInput
) -> ExternalAdminPayload:
    return await mutate(
        ExternalAdminPayload,
        lambda: external_admins.revoke_external_admin(
            info.context.viewer, decode_id_of(str(input.customer_id), "Customer"), input.admin_email
        ),
        _external_admin_shape,
    )
