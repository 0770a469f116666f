"""Customer, its connection, filter and ordering, and the customers/customer queries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from app.domain import external_admins, licenses, tags
from app.domain.customer_pages import (
    AssignmentRow,
    CustomerNeeds,
    CustomerRead,
    LocationRow,
    SubscriptionNeeds,
    TrialNeeds,
    read_customer_page,
)
from app.domain.customers import CustomerFilter as CustomerFilterValue
from app.domain.customers import CustomerOrder as CustomerOrderValue
from app.domain.customers import CustomerRow, get_customer, list_customers
from app.domain.ids import decode_id_of, encode_global_id
from app.domain.organization import launch_url
from app.domain.pagination import Page
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
from schema.pagination import Connection
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
        return Admin.of(admin) if admin else None

    @classmethod
    def of(cls, value: external_admins.ExternalAdmin) -> ExternalAdmin:
        return cls(
            email=value.email,
            granted_at=value.granted_at,
            granted_by_id=value.granted_by_id,
        )


@strawberry.type(name="Customer")
class Customer(Node):
    pk: strawberry.Private[int]
    org_uuid: strawberry.Private[UUID]
    # What the page reader loaded with it (None: reached another way, so every
    # relation is read through the request's DataLoaders).
    read: strawberry.Private[CustomerRead | None]
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
    def of(cls, customer: CustomerRow, read: CustomerRead | None = None) -> Customer:
        """`customer`: a customer in the viewer's scope; `read`: what the page
        reader loaded with it, when it did."""
        return cls(
            id=strawberry.ID(encode_global_id("Customer", customer.id)),
            pk=customer.id,
            org_uuid=customer.org_id,
            read=read,
            name=customer.name,
            org_id=str(customer.org_id),
            external_id=customer.external_id,
            region=customer.region,
            location=customer.location,
            created_at=customer.created_at,
            last_admin_activity_at=customer.last_admin_activity_at,
        )

    @classmethod
    def of_read(cls, read: CustomerRead) -> Customer:
        return cls.of(read.customer, read)

    # Each relation answers from what the page reader loaded when it did, in
    # the same pass (no task, no coroutine); otherwise it returns the
    # DataLoader's awaitable, which graphql-core awaits.

    @strawberry.field
    def statuses(self, info: Info) -> list[CustomerStatus]:
        read = self.read
        if read is not None and read.statuses is not None:
            return read.statuses  # type: ignore[return-value]
        return info.context.loaders.statuses.load(self.pk)

    @strawberry.field
    def products(self, info: Info) -> list[Product]:
        read = self.read
        if read is not None and read.products is not None:
            return read.products  # type: ignore[return-value]
        return info.context.loaders.products.load(self.pk)

    @strawberry.field(description="Relative to the viewer.")
    def managed_by(self, info: Info) -> ManagedBy:
        if self.read is not None:
            return self.read.managed_by  # type: ignore[return-value]
        return info.context.loaders.managed_by.load(self.pk)

    @strawberry.field
    def tags(self, info: Info) -> list[Tag]:
        read = self.read
        if read is not None and read.tags is not None:
            return [Tag.of(tag) for tag in read.tags]  # type: ignore[arg-type]
        return self._tags_later(info)  # type: ignore[return-value]

    async def _tags_later(self, info: Info) -> list[Tag]:
        return [Tag.of(tag) for tag in await info.context.loaders.tags.load(self.pk)]

    @strawberry.field(
        description="Link that opens the customer organization (Launch organization)."
    )
    def launch_url(self, info: Info) -> str:
        return launch_url(info.context.settings.control_hub_url, self.org_uuid)

    @strawberry.field(description="Licenses of the subscriptions and trials that hold them.")
    def license_totals(self, info: Info) -> LicenseCounts:
        read = self.read
        if read is not None and read.license_totals is not None:
            return LicenseCounts.of(read.license_totals)
        return self._license_totals_later(info)  # type: ignore[return-value]

    async def _license_totals_later(self, info: Info) -> LicenseCounts:
        loaders = info.context.loaders
        subs = licenses.holding(await loaders.subscriptions.load(self.pk))
        lines = await loaders.license_lines.load_many([s.id for s in subs])
        return LicenseCounts.of(licenses.sum_counts(line for group in lines for line in group))

    @strawberry.field
    def subscriptions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> SubscriptionConnection:
        read = self.read
        if read is not None and read.subscriptions is not None:
            return SubscriptionConnection.page(read.subscriptions, first, after, self)
        return self._subscriptions_later(info, first, after)  # type: ignore[return-value]

    async def _subscriptions_later(
        self, info: Info, first: int | None, after: str | None
    ) -> SubscriptionConnection:
        subs = await info.context.loaders.subscriptions.load(self.pk)
        return SubscriptionConnection.page(subs, first, after, self)

    @strawberry.field
    def trials(self, info: Info) -> list[Trial]:
        read = self.read
        if read is not None and read.trials is not None:
            return [Trial.of(t, self) for t in read.trials]
        return self._trials_later(info)  # type: ignore[return-value]

    async def _trials_later(self, info: Info) -> list[Trial]:
        return [Trial.of(t, self) for t in await info.context.loaders.trials.load(self.pk)]

    @strawberry.field
    def partner_admins(self, info: Info) -> list[AdminAssignment]:
        read = self.read
        if read is not None and read.partner_admins is not None:
            return _assignments(read.partner_admins)
        return self._partner_admins_later(info)  # type: ignore[return-value]

    async def _partner_admins_later(self, info: Info) -> list[AdminAssignment]:
        return _assignments(await info.context.loaders.partner_admins.load(self.pk))

    @strawberry.field(
        description="Admins of other partner organizations made external admins of this "
        "customer (grantExternalAdmin); empty on a customer seen through such a grant."
    )
    def external_admins(self, info: Info) -> list[ExternalAdmin]:
        read = self.read
        if read is not None and read.external_admins is not None:
            return [ExternalAdmin.of(value) for value in read.external_admins]
        return self._external_admins_later(info)  # type: ignore[return-value]

    async def _external_admins_later(self, info: Info) -> list[ExternalAdmin]:
        found = await info.context.loaders.external_admins.load(self.pk)
        return [ExternalAdmin.of(value) for value in found]

    @strawberry.field
    def locations(self, info: Info) -> list[Location]:
        read = self.read
        if read is not None and read.locations is not None:
            return _locations(read.locations)
        return self._locations_later(info)  # type: ignore[return-value]

    async def _locations_later(self, info: Info) -> list[Location]:
        return _locations(await info.context.loaders.locations.load(self.pk))


def _assignments(assignments: list[AssignmentRow]) -> list[AdminAssignment]:
    return [
        AdminAssignment(admin=Admin.of(a.admin), role=a.admin.role, assigned_at=a.assigned_at)  # type: ignore[arg-type]
        for a in assignments
    ]


def _locations(rows: list[LocationRow]) -> list[Location]:
    return [Location(id=strawberry.ID(str(r.uuid)), name=r.name, country=r.country) for r in rows]


@strawberry.type(name="CustomerConnection")
class CustomerConnection(Connection[Customer]):
    """A page of customers: `of` for a page whose relations load through the
    DataLoaders, `read` for one read with what its selection asks, in a few passes."""

    @classmethod
    def of(  # type: ignore[override]
        cls, page: Page[CustomerRow], node: Any = Customer.of
    ) -> CustomerConnection:
        """A page of customers; their relations load through the DataLoaders."""
        return super().of(page, node)

    @classmethod
    def needs(cls, info: Info) -> CustomerNeeds:
        """What the selection of a customers connection asks of each customer."""
        return customer_needs(connection_nodes(selection_set(info.selected_fields)))

    @classmethod
    async def read(
        cls, info: Info, page: Page[CustomerRow], needs: CustomerNeeds
    ) -> CustomerConnection:
        """A page of customers with the relations its selection asks for (`needs`),
        read in one pass per level before any field resolves."""
        reads = await read_customer_page(info.context.viewer, info.context.clock, page.items, needs)
        return super().of(replace(page, items=reads), Customer.of_read)


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
    needs = CustomerConnection.needs(info)
    page = await list_customers(
        info.context.viewer,
        info.context.clock,
        first=first,
        after=after,
        flt=filter.value() if filter else None,
        order=order_by.value() if order_by else None,
        with_statuses=needs.statuses,
    )
    return await CustomerConnection.read(info, page, needs)


async def resolve_customer(info: Info, id: strawberry.ID) -> Customer | None:
    return await load_customer(info, decode_id_of(str(id), "Customer") or 0)


@node_loader("Customer")
async def load_customer(info: Info, pk: int) -> Customer | None:
    """`customer(id:)` and `node(id:)` on a customer: the customer and what the
    selection asks of it, read in one pass per level."""
    customer = await get_customer(info.context.viewer, pk) if pk else None
    if customer is None:
        return None
    needs = customer_needs(selection_set(info.selected_fields))
    reads = await read_customer_page(info.context.viewer, info.context.clock, [customer], needs)
    return Customer.of_read(reads[0])


# What a selection asks of a customer. Fragments count when their type
# condition is one the object is (or none); a field the analysis misses (a
# directive, a path not foreseen) still answers through the DataLoaders.
CUSTOMER_TYPES = frozenset({"Customer", "Node"})
SUBSCRIPTION_TYPES = frozenset({"CustomerSubscription", "Node"})
TRIAL_TYPES = frozenset({"Trial", "Node"})
TAG_TYPES = frozenset({"Tag", "Node"})
SUBSCRIPTION_LINE_FIELDS = frozenset({"licenses", "products", "totals"})


def _fields(selections: Iterable[Selection], types: frozenset[str] | None) -> list[SelectedField]:
    """The fields a selection set asks of an object of one of `types` (None: of
    the one type it can be), through fragments and inline fragments."""
    found: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            found.append(selection)
        elif types is None or selection.type_condition in types or not selection.type_condition:
            found.extend(_fields(selection.selections, types))
    return found


def selection_set(fields: Iterable[SelectedField]) -> list[Selection]:
    """The selection sets of these fields, together."""
    return [s for f in fields for s in f.selections]


def connection_nodes(selections: Iterable[Selection]) -> list[Selection]:
    """What a connection's selection set asks of its nodes: under `nodes` and
    under `edges { node }`."""
    connection = _fields(selections, None)
    edges = _fields(selection_set(f for f in connection if f.name == "edges"), None)
    return selection_set(
        [*(f for f in connection if f.name == "nodes"), *(f for f in edges if f.name == "node")]
    )


def customer_needs(selections: Iterable[Selection]) -> CustomerNeeds:
    """What a customer's selection set asks the page reader to load."""
    fields = _fields(selections, CUSTOMER_TYPES)
    names = {f.name for f in fields}
    needs = CustomerNeeds(
        statuses="statuses" in names,
        products="products" in names,
        tags="tags" in names,
        license_totals="licenseTotals" in names,
        partner_admins="partnerAdmins" in names,
        external_admins="externalAdmins" in names,
        locations="locations" in names,
    )
    if "tags" in names:
        tag_names = {
            f.name for f in _fields(selection_set(f for f in fields if f.name == "tags"), TAG_TYPES)
        }
        needs = replace(
            needs,
            tag_counts="customerCount" in tag_names,
            tag_creators="createdBy" in tag_names,
        )
    nested: list[Selection] = []  # selections on the same customer, reached again
    if "subscriptions" in names:
        subscriptions = selection_set(f for f in fields if f.name == "subscriptions")
        sub_fields = _fields(connection_nodes(subscriptions), SUBSCRIPTION_TYPES)
        sub_names = {f.name for f in sub_fields}
        needs = replace(
            needs,
            subscriptions=SubscriptionNeeds(
                lines=bool(sub_names & SUBSCRIPTION_LINE_FIELDS),
                invoice="invoice" in sub_names,
                orders="orders" in sub_names,
            ),
        )
        nested += selection_set(f for f in sub_fields if f.name == "customer")
    if "trials" in names:
        trials = selection_set(f for f in fields if f.name == "trials")
        trial_fields = _fields(trials, TRIAL_TYPES)
        needs = replace(
            needs, trials=TrialNeeds(products=any(f.name == "products" for f in trial_fields))
        )
        nested += selection_set(f for f in trial_fields if f.name == "customer")
    if nested:
        needs = _union(needs, customer_needs(nested))
    return needs


def _union(a: CustomerNeeds, b: CustomerNeeds) -> CustomerNeeds:
    def either(x: Any, y: Any) -> Any:
        if x is None or y is None:
            return x if y is None else y
        if isinstance(x, bool):
            return x or y
        return replace(
            x, **{f.name: getattr(x, f.name) or getattr(y, f.name) for f in dataclass_fields(x)}
        )

    return CustomerNeeds(
        **{f.name: either(getattr(a, f.name), getattr(b, f.name)) for f in dataclass_fields(a)}
    )


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
