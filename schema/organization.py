"""PartnerOrganization: the Account page."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from app.domain.ids import encode_global_id
from app.domain.organization import (
    OrganizationValue,
    OwnSubscriptionValue,
    complete_setup,
    get_organization,
    launch_url,
    own_subscriptions,
)
from schema.context import Info
from schema.enums import Product, SubscriptionKind, SubscriptionStatus
from schema.node import Node, node_loader
from schema.payloads import UserError, mutate
from schema.subscriptions import LicenseCounts, LicenseLine


@strawberry.type(
    name="OrganizationSubscription",
    description="A subscription of the partner organization itself (its plan overview, "
    "shown by the first-time setup wizard). Never among customers, counts or analytics.",
)
class OrganizationSubscription:
    value: strawberry.Private[OwnSubscriptionValue]
    subscription_id: str
    kind: SubscriptionKind
    status: SubscriptionStatus
    start_date: date
    end_date: date | None = strawberry.field(
        description="Expiration date, or the renewal date when autoRenew is on."
    )
    auto_renew: bool
    added_at: datetime

    @classmethod
    def of(cls, sub: OwnSubscriptionValue) -> OrganizationSubscription:
        return cls(
            value=sub,
            subscription_id=sub.subscription_id,
            kind=sub.kind,
            status=sub.status,
            start_date=sub.start_date,
            end_date=sub.end_date,
            auto_renew=sub.auto_renew,
            added_at=sub.added_at,
        )

    @strawberry.field(description="Its license lines, by license type.")
    def licenses(self) -> list[LicenseLine]:
        return [LicenseLine.of(line) for line in self.value.lines]

    @strawberry.field
    def products(self) -> list[Product]:
        return list(self.value.products)

    @strawberry.field
    def totals(self) -> LicenseCounts:
        return LicenseCounts.of(self.value.totals)


@strawberry.type(
    name="PartnerOrganization",
    description="The partner organization of the viewer (Account page).",
)
class PartnerOrganization(Node):
    name: str
    org_id: str = strawberry.field(description="Unique organization id (UUID).")
    industry: str | None
    planned_users: int | None = strawberry.field(
        description="Number of Webex users the organization intends to onboard."
    )
    setup_completed: bool = strawberry.field(
        description="False until the first-time setup wizard is completed."
    )
    terms_accepted_at: datetime | None
    value: strawberry.Private[OrganizationValue]

    @strawberry.field(
        description="Link that opens the partner's own organization in Control Hub "
        "(Start my organization)."
    )
    def launch_url(self, info: Info) -> str:
        return launch_url(info.context.settings.control_hub_url, self.value.org_id)

    @strawberry.field(
        description="The partner's own subscriptions with their license lines (the plan "
        "overview of the first-time setup wizard), oldest first. Readable by every admin "
        "of the partner, also while the setup is pending."
    )
    async def subscriptions(self, info: Info) -> list[OrganizationSubscription]:
        subscriptions = await own_subscriptions(info.context.viewer)
        return [OrganizationSubscription.of(sub) for sub in subscriptions]

    @classmethod
    def of(cls, org: OrganizationValue) -> PartnerOrganization:
        return cls(
            id=strawberry.ID(encode_global_id("PartnerOrganization", org.id)),
            name=org.name,
            org_id=str(org.org_id),
            industry=org.industry,
            planned_users=org.planned_users,
            setup_completed=org.setup_completed,
            terms_accepted_at=org.terms_accepted_at,
            value=org,
        )


@node_loader("PartnerOrganization")
async def load_organization(info: Info, pk: int) -> PartnerOrganization | None:
    org = await get_organization(info.context.viewer, pk)
    return PartnerOrganization.of(org) if org else None


async def resolve_organization(info: Info) -> PartnerOrganization:
    org = await get_organization(info.context.viewer)
    assert org is not None  # the viewer's own organization always exists
    return PartnerOrganization.of(org)


@strawberry.input(name="CompleteSetupInput")
class CompleteSetupInput:
    accept_terms: bool
    industry: str | None = None
    planned_users: int | None = None


@strawberry.type(name="OrganizationPayload")
class OrganizationPayload:
    organization: PartnerOrganization | None
    user_errors: list[UserError]


async def resolve_complete_setup(info: Info, input: CompleteSetupInput) -> OrganizationPayload:
    return await mutate(
        OrganizationPayload,
        lambda: complete_setup(
            info.context.viewer, input.accept_terms, input.industry, input.planned_users
        ),
        lambda org: {"organization": PartnerOrganization.of(org)},
    )
