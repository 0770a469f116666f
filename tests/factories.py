"""Hand-made rows for tests, written with the ORM models directly (keeping the
customers' kept list columns as the app's writers do)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.auth import hash_token
from app.clock import utctoday
from app.domain.customer_columns import refresh_customer_columns
from app.domain.trials import trial_subscription_status
from app.models.admins import Admin, ApiToken, CustomerAssignment
from app.models.customers import Customer
from app.models.enums import AdminRole, Region, SubscriptionKind, TrialStatus
from app.models.organization import PartnerOrganization
from app.models.subscriptions import Subscription
from app.models.trials import Trial

_counter = itertools.count(1)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


async def partner(name: str, domain: str, setup_completed: bool = True) -> PartnerOrganization:
    return await PartnerOrganization.create(
        name=name,
        org_id=uuid.uuid4(),
        domain=domain,
        terms_accepted_at=NOW if setup_completed else None,
    )


@dataclass
class AdminWithToken:
    admin: Admin
    token: str


async def admin(
    org: PartnerOrganization, role: AdminRole, email: str | None = None
) -> AdminWithToken:
    n = next(_counter)
    email = email or f"{role.value.lower()}{n}@{org.domain}"
    record = await Admin.create(partner=org, email=email, display_name=f"Admin {n}", role=role)
    token = f"test-token-{n}-{uuid.uuid4().hex}"
    await ApiToken.create(admin=record, token_hash=hash_token(token))
    return AdminWithToken(record, token)


async def team(org: PartnerOrganization) -> dict[AdminRole, AdminWithToken]:
    """One admin of each role."""
    return {role: await admin(org, role) for role in AdminRole}


async def customer(
    org: PartnerOrganization,
    name: str | None = None,
    region: Region = Region.US,
    created_by: Admin | None = None,
) -> Customer:
    n = next(_counter)
    return await Customer.create(
        partner=org,
        name=name or f"Customer {n}",
        org_id=uuid.uuid4(),
        region=region,
        created_at=NOW - timedelta(days=100),
        created_by=created_by,
    )


async def assign(a: Admin, c: Customer) -> None:
    await CustomerAssignment.create(admin=a, customer=c)


async def trial(
    c: Customer, start: date, end: date, status: TrialStatus = TrialStatus.ACTIVE
) -> Trial:
    n = next(_counter)
    t = await Trial.create(
        customer=c, trial_id=f"ET-{n:010d}", status=status, start_date=start, end_date=end
    )
    await Subscription.create(
        customer=c,
        subscription_id=t.trial_id,
        kind=SubscriptionKind.TRIAL,
        status=trial_subscription_status(status),
        start_date=start,
        end_date=end,
        added_at=datetime.combine(start, datetime.min.time(), UTC),
        trial=t,
    )
    # As every writer of trials does: the customer's kept list columns with them.
    await refresh_customer_columns([c.id], utctoday())
    return t


# Short names of the five roles, for tables of who may do what.
FULL, ADMIN, READ_ONLY, SALES_FULL, SALES = (
    AdminRole.FULL_ADMIN,
    AdminRole.ADMIN,
    AdminRole.READ_ONLY_ADMIN,
    AdminRole.SALES_FULL_ADMIN,
    AdminRole.SALES_ADMIN,
)
