"""CustomerSubscription (subscriptions and trials), its license lines, invoice and orders."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import licenses
from app.domain.customer_pages import (
    InvoiceRow,
    LicenseLineRow,
    OrderRow,
    SubscriptionRow,
    subscription_page,
)
from app.domain.ids import encode_global_id
from app.domain.lookups import subscription_by_id
from app.models.enums import LICENSE_PRODUCT
from app.models.enums import LicenseType as LicenseTypeValue
from schema.context import Info
from schema.enums import LicenseType, Product, SubscriptionKind, SubscriptionStatus
from schema.loaders import reached_customer
from schema.node import Node, node_loader
from schema.pagination import Connection, Edge

if TYPE_CHECKING:
    from schema.customers import Customer


@strawberry.type(name="LicenseCounts")
class LicenseCounts:
    total: int
    assigned: int
    used: int
    available: int
    overage: int = strawberry.field(
        description="max(assigned - total, 0), summed over license lines"
    )

    @classmethod
    def of(cls, counts: licenses.LicenseCounts) -> LicenseCounts:
        return cls(
            total=counts.total,
            assigned=counts.assigned,
            used=counts.used,
            available=counts.available,
            overage=counts.overage,
        )


@strawberry.type(name="LicenseLine")
class LicenseLine:
    license_type: LicenseType
    product: Product
    quantity: int
    assigned: int
    used: int

    @strawberry.field
    def available(self) -> int:
        return licenses.available(self.quantity, self.assigned)

    @strawberry.field
    def overage(self) -> int:
        return licenses.overage(self.quantity, self.assigned)

    @classmethod
    def of(cls, line: LicenseLineRow) -> LicenseLine:
        license_type = line.license_type
        if type(license_type) is not LicenseTypeValue:
            license_type = LicenseTypeValue(license_type)
        return cls(
            license_type=license_type,
            product=LICENSE_PRODUCT[license_type],
            quantity=line.quantity,
            assigned=line.assigned,
            used=line.used,
        )


@strawberry.type(name="Invoice")
class Invoice:
    number: str
    issued_on: date
    amount: float
    currency: str
    paid: bool

    @classmethod
    def of(cls, invoice: InvoiceRow) -> Invoice:
        return cls(
            number=invoice.number,
            issued_on=invoice.issued_on,
            amount=float(Decimal(invoice.amount)),
            currency=invoice.currency,
            paid=invoice.paid,
        )


@strawberry.type(name="Order")
class Order:
    order_number: str
    placed_at: datetime
    action: str = strawberry.field(description="NEW, MODIFY, RENEW or CANCEL.")
    description: str | None

    @classmethod
    def of(cls, order: OrderRow) -> Order:
        return cls(
            order_number=order.order_number,
            placed_at=order.placed_at,
            action=str(order.action),
            description=order.description,
        )


@strawberry.type(name="CustomerSubscription")
class CustomerSubscription(Node):
    # The subscription, with what was loaded of it (the page reader's or the
    # DataLoader's: its lines, invoice, orders); what was not is read through
    # the request's DataLoaders.
    row: strawberry.Private[SubscriptionRow]
    # The customer it was reached from, when there is one.
    reached_from: strawberry.Private[Customer | None]
    subscription_id: str = strawberry.field(
        description="The subscription id, or the Enterprise Trial id for a trial."
    )
    kind: SubscriptionKind
    status: SubscriptionStatus
    start_date: date
    end_date: date | None = strawberry.field(
        description="Expiration date, or the renewal date when autoRenew is on."
    )
    auto_renew: bool
    added_at: datetime

    @classmethod
    def of(cls, sub: SubscriptionRow, customer: Customer | None = None) -> CustomerSubscription:
        """`sub`: a subscription in the viewer's scope; `customer`: the Customer it
        was reached from, when there is one."""
        return cls(
            id=strawberry.ID(encode_global_id("CustomerSubscription", sub.id)),
            row=sub,
            reached_from=customer,
            subscription_id=sub.subscription_id,
            kind=sub.kind,
            status=sub.status,
            start_date=sub.start_date,
            end_date=sub.end_date,
            auto_renew=sub.auto_renew,
            added_at=sub.added_at,
        )

    @strawberry.field
    def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        if self.reached_from is not None:
            return self.reached_from
        return self._customer_later(info)  # type: ignore[return-value]

    async def _customer_later(self, info: Info) -> Customer:
        from schema.customers import Customer

        return Customer.of(await reached_customer(info, self.row.customer_id))

    @strawberry.field
    def days_since_added(self, info: Info) -> int:
        return (info.context.clock.today - self.row.added_at.date()).days

    @strawberry.field
    def days_until_end(self, info: Info) -> int | None:
        end = self.row.end_date
        return (end - info.context.clock.today).days if end else None

    @strawberry.field
    def licenses(self, info: Info) -> list[LicenseLine]:
        lines = self.row.lines
        if lines is not None:
            return [LicenseLine.of(line) for line in lines]
        return self._licenses_later(info)  # type: ignore[return-value]

    async def _licenses_later(self, info: Info) -> list[LicenseLine]:
        return [LicenseLine.of(line) for line in await self._lines(info)]

    @strawberry.field
    def products(self, info: Info) -> list[Product]:
        lines = self.row.lines
        if lines is not None:
            return licenses.products_of_lines(lines)  # type: ignore[return-value]
        return self._products_later(info)  # type: ignore[return-value]

    async def _products_later(self, info: Info) -> list[Product]:
        return licenses.products_of_lines(await self._lines(info))  # type: ignore[return-value]

    @strawberry.field
    def totals(self, info: Info) -> LicenseCounts:
        lines = self.row.lines
        if lines is not None:
            return LicenseCounts.of(licenses.sum_counts(lines))
        return self._totals_later(info)  # type: ignore[return-value]

    async def _totals_later(self, info: Info) -> LicenseCounts:
        return LicenseCounts.of(licenses.sum_counts(await self._lines(info)))

    @strawberry.field
    def invoice(self, info: Info) -> Invoice | None:
        if self.row.invoice_loaded:
            invoice = self.row.invoice
            return Invoice.of(invoice) if invoice else None
        return self._invoice_later(info)  # type: ignore[return-value]

    async def _invoice_later(self, info: Info) -> Invoice | None:
        invoice = await info.context.loaders.latest_invoice.load(self.row.id)
        return Invoice.of(invoice) if invoice else None

    @strawberry.field
    def orders(self, info: Info) -> list[Order]:
        orders = self.row.orders
        if orders is not None:
            return [Order.of(o) for o in orders]
        return self._orders_later(info)  # type: ignore[return-value]

    async def _orders_later(self, info: Info) -> list[Order]:
        return [Order.of(o) for o in await info.context.loaders.orders.load(self.row.id)]

    async def _lines(self, info: Info) -> list[LicenseLineRow]:
        return await info.context.loaders.license_lines.load(self.row.id)


@strawberry.type(name="SubscriptionEdge")
class SubscriptionEdge(Edge[CustomerSubscription]):
    pass


@strawberry.type(name="SubscriptionConnection")
class SubscriptionConnection(Connection[CustomerSubscription]):
    """A page of a customer's subscriptions (the contract names it after the
    list, not after its node type)."""

    edges: list[SubscriptionEdge]

    @classmethod
    def _edge_type(cls) -> type:
        return SubscriptionEdge

    @classmethod
    def page(
        cls,
        subscriptions: list[SubscriptionRow],
        first: int | None,
        after: str | None,
        customer: Customer | None,
    ) -> SubscriptionConnection:
        """The page of `subscriptions` (all of a customer's, newest first) that
        `first` and `after` ask for, each reached from `customer`."""
        return cls.of(
            subscription_page(subscriptions, first, after),
            lambda sub: CustomerSubscription.of(sub, customer),
        )


@node_loader("CustomerSubscription")
async def load_subscription(info: Info, pk: int) -> CustomerSubscription | None:
    sub = await subscription_by_id(info.context.viewer, pk)
    return CustomerSubscription.of(sub) if sub else None
