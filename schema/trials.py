"""Trial (read side): ongoing and past trials of a customer."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import trials
from app.domain.customer_pages import TrialRow
from app.domain.ids import decode_id_of, encode_global_id
from app.domain.lookups import trial_by_id
from app.models.enums import TrialStatus as TrialStatusValue
from schema.admins import Admin
from schema.context import Info
from schema.enums import Product, Region, TrialStatus
from schema.loaders import reached_customer
from schema.node import Node, node_loader
from schema.pagination import Connection
from schema.payloads import UserError, mutate

if TYPE_CHECKING:
    from schema.customers import Customer


@strawberry.type(name="TrialLicense")
class TrialLicense:
    product: Product
    licenses: int


@strawberry.type(name="Trial")
class Trial(Node):
    # The trial, with what the page reader loaded of it (its products; None:
    # not loaded, so read through the request's DataLoaders).
    row: strawberry.Private[TrialRow]
    # The customer it was reached from, when there is one.
    reached_from: strawberry.Private[Customer | None]
    trial_id: str = strawberry.field(description="Enterprise Trial id.")
    status: TrialStatus
    start_date: date
    end_date: date

    @classmethod
    def of(cls, trial: TrialRow, customer: Customer | None = None) -> Trial:
        """`trial`: a trial in the viewer's scope; `customer`: the Customer it was
        reached from, when there is one."""
        return cls(
            id=strawberry.ID(encode_global_id("Trial", trial.id)),
            row=trial,
            reached_from=customer,
            trial_id=trial.trial_id,
            status=trial.status,
            start_date=trial.start_date,
            end_date=trial.end_date,
        )

    @strawberry.field
    def duration_days(self) -> int:
        return (self.row.end_date - self.row.start_date).days

    @strawberry.field
    def days_remaining(self, info: Info) -> int:
        if self.row.status != TrialStatusValue.ACTIVE:
            return 0
        return max((self.row.end_date - info.context.clock.today).days, 0)

    @strawberry.field
    def products(self, info: Info) -> list[TrialLicense]:
        products = self.row.products
        if products is not None:
            return [TrialLicense(product=p.product, licenses=p.licenses) for p in products]
        return self._products_later(info)  # type: ignore[return-value]

    async def _products_later(self, info: Info) -> list[TrialLicense]:
        rows = await info.context.loaders.trial_products.load(self.row.id)
        return [TrialLicense(product=row.product, licenses=row.licenses) for row in rows]

    @strawberry.field
    def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")]:
        if self.reached_from is not None:
            return self.reached_from
        return self._customer_later(info)  # type: ignore[return-value]

    async def _customer_later(self, info: Info) -> Customer:
        from schema.customers import Customer

        return Customer.of(await reached_customer(info, self.row.customer_id))

    @strawberry.field
    async def started_by(self, info: Info) -> Admin | None:
        if self.row.started_by_id is None:
            return None
        admin = await info.context.loaders.admins.load(self.row.started_by_id)
        return Admin.of(admin) if admin else None


@node_loader("Trial")
async def load_trial(info: Info, pk: int) -> Trial | None:
    trial = await trial_by_id(info.context.viewer, pk)
    return Trial.of(trial) if trial else None


TrialConnection = Connection[Trial]


@strawberry.input(name="TrialFilter")
class TrialFilter:
    statuses: list[TrialStatus] | None = None
    customer_id: strawberry.ID | None = None
    ending_within_days: int | None = strawberry.field(
        default=None, description="Trials ending within this many days."
    )


@strawberry.input(name="NewCustomerInput")
class NewCustomerInput:
    name: str
    admin_email: str
    region: Region


@strawberry.input(name="TrialLicenseInput")
class TrialLicenseInput:
    product: Product
    licenses: int


@strawberry.input(name="StartTrialInput")
class StartTrialInput:
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="An existing customer without an ongoing trial; or give newCustomer.",
    )
    new_customer: NewCustomerInput | None = None
    products: list[TrialLicenseInput]
    duration_days: int


@strawberry.input(name="ExtendTrialInput")
class ExtendTrialInput:
    trial_id: strawberry.ID
    days: int = strawberry.field(description="Days added to the end date, 1 to 30.")


@strawberry.input(name="CancelTrialInput")
class CancelTrialInput:
    trial_id: strawberry.ID


@strawberry.type(name="TrialPayload")
class TrialPayload:
    trial: Trial | None
    user_errors: list[UserError]


def _trial_payload(trial: TrialRow) -> dict:
    return {"trial": Trial.of(trial)}


async def resolve_trials(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: TrialFilter | None = None,
) -> TrialConnection:
    flt = filter or TrialFilter()
    page = await trials.list_trials(
        info.context.viewer,
        first=first,
        after=after,
        statuses=flt.statuses,
        customer_id=decode_id_of(str(flt.customer_id), "Customer") or 0
        if flt.customer_id is not None
        else None,
        ending_within_days=flt.ending_within_days,
        today=info.context.clock.today,
    )
    return TrialConnection.of(page, Trial.of)


async def resolve_start_trial(info: Info, input: StartTrialInput) -> TrialPayload:
    new = input.new_customer
    return await mutate(
        TrialPayload,
        lambda: trials.start_trial(
            info.context.viewer,
            customer_id=(decode_id_of(str(input.customer_id), "Customer") or 0)
            if input.customer_id is not None
            else None,
            new_customer=trials.NewCustomer(new.name, new.admin_email, new.region) if new else None,
            products=[trials.TrialLicenseRequest(p.product, p.licenses) for p in input.products],
            duration_days=input.duration_days,
        ),
        _trial_payload,
    )


async def resolve_extend_trial(info: Info, input: ExtendTrialInput) -> TrialPayload:
    return await mutate(
        TrialPayload,
        lambda: trials.extend_trial(
            info.context.viewer, decode_id_of(str(input.trial_id), "Trial"), input.days
        ),
        _trial_payload,
    )


async def resolve_cancel_trial(info: Info, input: CancelTrialInput) -> TrialPayload:
    return await mutate(
        TrialPayload,
        lambda: trials.cancel_trial(
            info.context.viewer, decode_id_of(str(input.trial_id), "Trial")
        ),
        _trial_payload,
    )
