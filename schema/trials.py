"""Trial (read side): ongoing and past trials of a customer."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry
from tortoise.expressions import Subquery

from app.domain.access import visible_customers
from app.domain.ids import encode_global_id
from app.models.customers import Customer as CustomerModel
from app.models.enums import TrialStatus as TrialStatusValue
from app.models.trials import Trial as TrialModel
from schema.admins import Admin
from schema.context import Info
from schema.enums import Product, TrialStatus
from schema.loaders import reached_customer
from schema.node import Node, node_loader

if TYPE_CHECKING:
    from schema.customers import Customer


@strawberry.type(name="TrialLicense")
class TrialLicense:
    product: Product
    licenses: int


@strawberry.type(name="Trial")
class Trial(Node):
    model: strawberry.Private[TrialModel]
    customer_model: strawberry.Private[CustomerModel | None]
    trial_id: str = strawberry.field(description="Enterprise Trial id.")
    status: TrialStatus
    start_date: date
    end_date: date

    @classmethod
    def of(cls, trial: TrialModel, customer: CustomerModel | None = None) -> Trial:
        """`customer`: the customer it was reached from, when there is one."""
        return cls(
            id=strawberry.ID(encode_global_id("Trial", trial.id)),
            model=trial,
            customer_model=customer,
            trial_id=trial.trial_id,
            status=trial.status,
            start_date=trial.start_date,
            end_date=trial.end_date,
        )

    @strawberry.field
    def duration_days(self) -> int:
        return (self.model.end_date - self.model.start_date).days

    @strawberry.field
    def days_remaining(self, info: Info) -> int:
        if self.model.status != TrialStatusValue.ACTIVE:
            return 0
        return max((self.model.end_date - info.context.clock.today).days, 0)

    @strawberry.field
    async def products(self, info: Info) -> list[TrialLicense]:
        rows = await info.context.loaders.trial_products.load(self.model.id)
        return [TrialLicense(product=row.product, licenses=row.licenses) for row in rows]

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        from schema.customers import Customer

        return Customer.of(
            await reached_customer(info, self.customer_model, self.model.customer_id)
        )

    @strawberry.field
    async def started_by(self, info: Info) -> Admin | None:
        if self.model.started_by_id is None:
            return None
        admin = await info.context.loaders.admins.load(self.model.started_by_id)
        return Admin.from_model(admin) if admin else None


@node_loader("Trial")
async def load_trial(info: Info, pk: int) -> Trial | None:
    trial = await TrialModel.get_or_none(
        id=pk, customer_id__in=Subquery(visible_customers(info.context.viewer).values("id"))
    )
    return Trial.of(trial) if trial else None
