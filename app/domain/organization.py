"""The viewer's own partner organization (Account page) and its own
subscriptions, read as typed values (`OrganizationValue`, `OwnSubscriptionValue`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from app.clock import utcnow
from app.domain.access import (
    COMPLETE_SETUP,
    Viewer,
    visible_organization,
    visible_own_subscriptions,
)
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.licenses import LicenseCounts, products_of_lines, sum_counts
from app.domain.mutations import Audited, audit_target, run_mutation
from app.models.enums import LicenseType, Product, SubscriptionKind, SubscriptionStatus
from app.models.organization import PartnerLicenseLine, PartnerOrganization, PartnerSubscription

MAX_INDUSTRY_LENGTH = 100
MAX_PLANNED_USERS = 10_000_000


@dataclass(frozen=True, slots=True)
class OrganizationValue:
    """The partner organization as the Account page reads it."""

    id: int
    name: str
    org_id: UUID
    industry: str | None
    planned_users: int | None
    setup_completed: bool
    terms_accepted_at: datetime | None

    @classmethod
    def of(cls, org: PartnerOrganization) -> OrganizationValue:
        return cls(
            id=org.id,
            name=org.name,
            org_id=org.org_id,
            industry=org.industry,
            planned_users=org.planned_users,
            setup_completed=org.setup_completed,
            terms_accepted_at=org.terms_accepted_at,
        )


@dataclass(frozen=True, slots=True)
class OwnLicenseLine:
    """Licenses of one type on one of the partner's own subscriptions."""

    id: int
    license_type: LicenseType
    quantity: int
    assigned: int
    used: int

    @classmethod
    def of(cls, line: PartnerLicenseLine) -> OwnLicenseLine:
        return cls(
            id=line.id,
            license_type=LicenseType(line.license_type),
            quantity=line.quantity,
            assigned=line.assigned,
            used=line.used,
        )


@dataclass(frozen=True, slots=True)
class OwnSubscriptionValue:
    """A subscription of the partner itself, its lines by license type, and the
    figures of those lines (products, totals) computed."""

    id: int
    subscription_id: str
    kind: SubscriptionKind
    status: SubscriptionStatus
    start_date: date
    end_date: date | None
    auto_renew: bool
    added_at: datetime
    lines: tuple[OwnLicenseLine, ...]
    products: tuple[Product, ...]
    totals: LicenseCounts

    @classmethod
    def of(cls, sub: PartnerSubscription) -> OwnSubscriptionValue:
        lines = tuple(
            sorted(
                (OwnLicenseLine.of(line) for line in sub.licenses),
                key=lambda line: (line.license_type, line.id),
            )
        )
        return cls(
            id=sub.id,
            subscription_id=sub.subscription_id,
            kind=SubscriptionKind(sub.kind),
            status=SubscriptionStatus(sub.status),
            start_date=sub.start_date,
            end_date=sub.end_date,
            auto_renew=sub.auto_renew,
            added_at=sub.added_at,
            lines=lines,
            products=tuple(products_of_lines(lines)),
            totals=sum_counts(lines),
        )


async def get_organization(
    viewer: Viewer, organization_id: int | None = None
) -> OrganizationValue | None:
    """The viewer's organization; any other id reads as not found."""
    if organization_id is not None and not visible_organization(viewer, organization_id):
        return None
    org = await PartnerOrganization.get_or_none(id=viewer.partner_id)
    return OrganizationValue.of(org) if org else None


def launch_url(control_hub_url: str, org_id: object) -> str:
    """The Control Hub link that opens an organization: a customer's (Launch
    organization) or the partner's own ("Start my organization"), from one setting."""
    return f"{control_hub_url.rstrip('/')}/partner/launch?orgId={org_id}"


async def own_subscriptions(viewer: Viewer) -> list[OwnSubscriptionValue]:
    """The partner's own subscriptions with their license lines (the plan overview of
    the first-time setup wizard), oldest first: two statements whatever their number."""
    subscriptions = (
        await visible_own_subscriptions(viewer)
        .order_by("start_date", "id")
        .prefetch_related("licenses")
    )
    return [OwnSubscriptionValue.of(sub) for sub in subscriptions]


async def complete_setup(
    viewer: Viewer, accept_terms: bool, industry: str | None, planned_users: int | None
) -> OrganizationValue:
    """The first-time setup wizard: accept the terms, record the profile. Once only."""

    async def work() -> Audited[OrganizationValue]:
        errors: list[UserError] = []
        if accept_terms is not True:
            errors.append(
                UserError(
                    ("input", "accept_terms"), "The terms must be accepted.", UserErrorCode.INVALID
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
                    ("input", "planned_users"),
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
            OrganizationValue.of(org),
            audit_target("PartnerOrganization", org.id),
            f"Completed the organization setup of {org.name} (terms accepted)",
        )

    return await run_mutation(viewer, COMPLETE_SETUP, "organization.setup", work)
