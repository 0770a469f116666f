"""CustomerSubscription (subscriptions and trials), its license lines, invoice and orders."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import licenses
from app.domain.ids import encode_global_id
from app.domain.lookups import subscription_by_id
from app.domain.pagination import Page
from app.models.customers import Customer as CustomerModel
from app.models.enums import LICENSE_PRODUCT
from app.models.enums import LicenseType as LicenseTypeValue
from app.models.subscriptions import Invoice as InvoiceModel
from app.models.subscriptions import LicenseLine as LicenseLineModel
from app.models.subscriptions import Order as OrderModel
from app.models.subscriptions import Subscription as SubscriptionModel
from schema.context import Info
from schema.enums import LicenseType, Product, SubscriptionKind, SubscriptionStatus
from schema.loaders import reached_customer
from schema.node import Node, node_loader
from schema.pagination import PageInfo, connection_parts

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
    available: int
    overage: int

    @classmethod
    def of(cls, line: LicenseLineModel) -> LicenseLine:
        counts = licenses.line_counts(line)
        license_type = LicenseTypeValue(line.license_type)
        return cls(
            license_type=license_type,
            product=LICENSE_PRODUCT[license_type],
            quantity=line.quantity,
            assigned=line.assigned,
            used=line.used,
            available=counts.available,
            overage=counts.overage,
        )


@strawberry.type(name="Invoice")
class Invoice:
    number: str
    issued_on: date
    amount: float
    currency: str
    paid: bool

    @classmethod
    def of(cls, invoice: InvoiceModel) -> Invoice:
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
    def of(cls, order: OrderModel) -> Order:
        return cls(
            order_number=order.order_number,
            placed_at=order.placed_at,
            action=str(order.action),
            description=order.description,
        )


@strawberry.type(name="CustomerSubscription")
class CustomerSubscription(Node):
    model: strawberry.Private[SubscriptionModel]
    customer_model: strawberry.Private[CustomerModel | None]
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
    def of(
        cls, sub: SubscriptionModel, customer: CustomerModel | None = None
    ) -> CustomerSubscription:
        """`customer`: the customer it was reached from, when there is one."""
        return cls(
            id=strawberry.ID(encode_global_id("CustomerSubscription", sub.id)),
            model=sub,
            customer_model=customer,
            subscription_id=sub.subscription_id,
            kind=sub.kind,
            status=sub.status,
            start_date=sub.start_date,
            end_date=sub.end_date,
            auto_renew=sub.auto_renew,
            added_at=sub.added_at,
        )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.of(
            await reached_customer(info, self.customer_model, self.model.customer_id)
        )

    @strawberry.field
    def days_since_added(self, info: Info) -> int:
        return (info.context.clock.today - self.model.added_at.date()).days

    @strawberry.field
    def days_until_end(self, info: Info) -> int | None:
        end = self.model.end_date
        return (end - info.context.clock.today).days if end else None

    @strawberry.field
    async def licenses(self, info: Info) -> list[LicenseLine]:
        return [LicenseLine.of(line) for line in await self._lines(info)]

    @strawberry.field
    async def products(self, info: Info) -> list[Product]:
        return licenses.products_of_lines(await self._lines(info))

    @strawberry.field
    async def totals(self, info: Info) -> LicenseCounts:
        return LicenseCounts.of(licenses.sum_counts(await self._lines(info)))

    @strawberry.field
    async def invoice(self, info: Info) -> Invoice | None:
        invoice = await info.context.loaders.latest_invoice.load(self.model.id)
        return Invoice.of(invoice) if invoice else None

    @strawberry.field
    async def orders(self, info: Info) -> list[Order]:
        return [Order.of(o) for o in await info.context.loaders.orders.load(self.model.id)]

    async def _lines(self, info: Info) -> list[LicenseLineModel]:
        return await info.context.loaders.license_lines.load(self.model.id)


@strawberry.type(name="SubscriptionEdge")
class SubscriptionEdge:
    cursor: str
    node: CustomerSubscription


@strawberry.type(name="SubscriptionConnection")
class SubscriptionConnection:
    edges: list[SubscriptionEdge]
    nodes: list[CustomerSubscription]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[SubscriptionModel], customer: CustomerModel) -> SubscriptionConnection:
        return cls(
            **connection_parts(
                page, lambda sub: CustomerSubscription.of(sub, customer), SubscriptionEdge
            )
        )


@node_loader("CustomerSubscription")
async def load_subscription(info: Info, pk: int) -> CustomerSubscription | None:
    sub = await subscription_by_id(info.context.viewer, pk)
    return CustomerSubscription.of(sub) if sub else None
