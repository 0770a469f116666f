"""The viewer's own partner organization (Account page)."""

from __future__ import annotations

from app.clock import utcnow
from app.domain.access import (
    COMPLETE_SETUP,
    Viewer,
    visible_organization,
    visible_own_subscriptions,
)
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.mutations import Audited, audit_target, run_mutation
from app.models.organization import PartnerOrganization, PartnerSubscription

MAX_INDUSTRY_LENGTH = 100
MAX_PLANNED_USERS = 10_000_000


async def get_organization(
    viewer: Viewer, organization_id: int | None = None
) -> PartnerOrganization | None:
    """The viewer's organization; any other id reads as not found."""
    if organization_id is not None and not visible_organization(viewer, organization_id):
        return None
    return await PartnerOrganization.get_or_none(id=viewer.partner_id)


def launch_url(control_hub_url: str, org_id: object) -> str:
    """The Control Hub link that opens an organization: a customer's (Launch
    organization) or the partner's own ("Start my organization"), from one setting."""
    return f"{control_hub_url.rstrip('/')}/partner/launch?orgId={org_id}"


async def own_subscriptions(viewer: Viewer) -> list[PartnerSubscription]:
    """The partner's own subscriptions with their license lines (the plan overview of
    the first-time setup wizard), oldest first: two statements whatever their number."""
    return (
        await visible_own_subscriptions(viewer)
        .order_by("start_date", "id")
        .prefetch_related("licenses")
    )


async def complete_setup(
    viewer: Viewer, accept_terms: bool, industry: str | None, planned_users: int | None
) -> PartnerOrganization:
    """The first-time setup wizard: accept the terms, record the profile. Once only."""

    async def work() -> Audited[PartnerOrganization]:
        errors: list[UserError] = []
        if accept_terms is not True:
            errors.append(
                UserError(
                    ("input", "acceptTerms"), "The terms must be accepted.", UserErrorCode.INVALID
                )
            )
        clean_industry = industry.strip() if industry is not None else None
        if clean_industry is not None and not 1 <= len(clean_industry) <= MAX_INDUSTRY_LENGTH:
            errors.append(
                UserError(
                    ("input", "industry"),
                    f"Industry is 1 to {MAX_INDUSTRY_LENGTH} characters.",
                    UserErrorCode.INVALID,
                )
            )
        if planned_users is not None and not 1 <= planned_users <= MAX_PLANNED_USERS:
            errors.append(
                UserError(
                    ("input", "plannedUsers"),
                    f"Planned users is a number from 1 to {MAX_PLANNED_USERS:,}.",
                    UserErrorCode.INVALID,
                )
            )
        if errors:
            raise MutationRejected(errors)
        org = await PartnerOrganization.select_for_update().get(id=viewer.partner_id)
        if org.setup_completed:
            raise reject(
                None, "The organization setup is already completed.", UserErrorCode.CONFLICT
            )
        org.terms_accepted_at = utcnow()
        org.industry = clean_industry
        org.planned_users = planned_users
        await org.save(update_fields=["terms_accepted_at", "industry", "planned_users"])
        return Audited(
            org,
            audit_target("PartnerOrganization", org.id),
            f"Completed the organization setup of {org.name} (terms accepted)",
        )

    return await run_mutation(viewer, COMPLETE_SETUP, "organization.setup", work)
