"""PartnerOrganization: the Account page."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.ids import encode_global_id
from app.domain.organization import complete_setup, get_organization
from app.models.organization import PartnerOrganization as OrganizationModel
from schema.context import Info
from schema.node import Node, node_loader
from schema.payloads import UserError, mutate


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

    @classmethod
    def from_model(cls, org: OrganizationModel) -> PartnerOrganization:
        return cls(
            id=strawberry.ID(encode_global_id("PartnerOrganization", org.id)),
            name=org.name,
            org_id=str(org.org_id),
            industry=org.industry,
            planned_users=org.planned_users,
            setup_completed=org.setup_completed,
            terms_accepted_at=org.terms_accepted_at,
        )


@node_loader("PartnerOrganization")
async def load_organization(info: Info, pk: int) -> PartnerOrganization | None:
    org = await get_organization(info.context.viewer, pk)
    return PartnerOrganization.from_model(org) if org else None


async def resolve_organization(info: Info) -> PartnerOrganization:
    org = await get_organization(info.context.viewer)
    assert org is not None  # the viewer's own organization always exists
    return PartnerOrganization.from_model(org)


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
        lambda org: {"organization": PartnerOrganization.from_model(org)},
    )
