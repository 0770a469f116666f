"""A small, hand-made world for the customer list tests.

Every customer sits at a boundary of a SPEC.md status; `expected` holds the
statuses each one must carry, written from the SPEC's definitions by hand.
Dates are relative to the real UTC today, because the API computes statuses
for "now".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from app.domain.customer_columns import refresh_customer_columns
from app.domain.trials import trial_subscription_status
from app.models.admins import Admin
from app.models.customers import Customer, CustomerUser, Location
from app.models.enums import (
    LICENSE_PRODUCT,
    AdminRole,
    LicenseType,
    Region,
    SubscriptionKind,
    SubscriptionStatus,
    TrialStatus,
)
from app.models.inventory import Device, PhoneNumber
from app.models.organization import PartnerOrganization
from app.models.subscriptions import Invoice, LicenseLine, Order, Subscription
from app.models.tags import CustomerTag, Tag
from app.models.trials import Trial, TrialProduct
from tests import factories

Line = tuple[LicenseType, int, int, int]  # type, quantity, assigned, used


@dataclass
class World:
    today: date
    now: datetime
    northwind: PartnerOrganization
    contoso: PartnerOrganization
    team: dict[AdminRole, factories.AdminWithToken]
    contoso_team: dict[AdminRole, factories.AdminWithToken]
    customers: dict[str, Customer] = field(default_factory=dict)
    expected: dict[str, set[str]] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    subscriptions: dict[str, list[Subscription]] = field(default_factory=dict)
    foreign: Customer | None = None

    def name_of(self, customer_id: int) -> str:
        return next(k for k, c in self.customers.items() if c.id == customer_id)


async def subscription(
    customer: Customer,
    status: SubscriptionStatus,
    end: date | None,
    *,
    auto_renew: bool = False,
    lines: list[Line] | None = None,
    added_days_ago: int = 100,
    today: date,
) -> Subscription:
    sub = await Subscription.create(
        customer=customer,
        subscription_id=f"Sub-{uuid.uuid4().hex[:10]}",
        kind=SubscriptionKind.SUBSCRIPTION,
        status=status,
        start_date=today - timedelta(days=added_days_ago),
        end_date=end,
        auto_renew=auto_renew,
        added_at=datetime.combine(today, datetime.min.time(), UTC) - timedelta(days=added_days_ago),
    )
    for license_type, quantity, assigned, used in lines or [(LicenseType.MEETINGS, 10, 5, 2)]:
        await LicenseLine.create(
            subscription=sub,
            license_type=license_type,
            product=LICENSE_PRODUCT[license_type],
            quantity=quantity,
            assigned=assigned,
            used=used,
        )
    await refresh_customer_columns([customer.id], today)  # as the app's writers do
    return sub


async def trial(
    customer: Customer,
    end: date,
    *,
    status: TrialStatus = TrialStatus.ACTIVE,
    lines: list[Line] | None = None,
    started_by: Admin | None = None,
    today: date,
) -> Trial:
    t = await Trial.create(
        customer=customer,
        trial_id=f"ET-{uuid.uuid4().int % 10**10:010d}",
        status=status,
        start_date=today - timedelta(days=10),
        end_date=end,
        started_by=started_by,
    )
    sub = await Subscription.create(
        customer=customer,
        subscription_id=t.trial_id,
        kind=SubscriptionKind.TRIAL,
        status=trial_subscription_status(status),
        start_date=t.start_date,
        end_date=end,
        added_at=datetime.combine(t.start_date, datetime.min.time(), UTC),
        trial=t,
    )
    for license_type, quantity, assigned, used in lines or [
        (LicenseType.CALLING_PROFESSIONAL, 25, 5, 1)
    ]:
        await LicenseLine.create(
            subscription=sub,
            license_type=license_type,
            product=LICENSE_PRODUCT[license_type],
            quantity=quantity,
            assigned=assigned,
            used=used,
        )
        await TrialProduct.create(trial=t, product=LICENSE_PRODUCT[license_type], licenses=quantity)
    await refresh_customer_columns([customer.id], today)  # as the app's writers do
    return t


async def build_world() -> World:
    now = datetime.now(UTC)
    today = now.date()
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    w = World(
        today=today,
        now=now,
        northwind=northwind,
        contoso=contoso,
        team=await factories.team(northwind),
        contoso_team=await factories.team(contoso),
    )
    A, S = SubscriptionStatus.ACTIVE, SubscriptionStatus
    day = timedelta(days=1)
    recent = now - timedelta(days=1)
    regions = [Region.US, Region.EU, Region.CA, Region.UAE]

    async def customer(
        name: str, expected: set[str], activity: datetime | None = recent
    ) -> Customer:
        n = len(w.customers)
        c = await Customer.create(
            partner=northwind,
            name=name,
            org_id=uuid.uuid4(),
            region=regions[n % 4],
            created_at=now - timedelta(days=400 - 7 * n),
            last_admin_activity_at=activity,
        )
        w.customers[name], w.expected[name] = c, expected
        return c

    async def sub(name: str, *args: object, **kwargs: object) -> None:
        w.subscriptions.setdefault(name, []).append(
            await subscription(w.customers[name], *args, today=today, **kwargs)  # type: ignore[arg-type]
        )

    # Trials: TRIAL while ACTIVE with end date today or later.
    await customer("trial ends today", {"TRIAL", "EXPIRING_SOON"})
    await trial(w.customers["trial ends today"], today, today=today)
    await customer("trial ended yesterday", {"EXPIRED"})
    await trial(w.customers["trial ended yesterday"], today - day, today=today)
    await customer("Trial ends in 30 days", {"TRIAL", "EXPIRING_SOON"})
    await trial(w.customers["Trial ends in 30 days"], today + 30 * day, today=today)
    await customer("trial ends in 31 days", {"TRIAL"})
    await trial(w.customers["trial ends in 31 days"], today + 31 * day, today=today)
    await customer("trial with overage", {"TRIAL", "LICENSE_OVERAGE"})
    await trial(
        w.customers["trial with overage"],
        today + 60 * day,
        today=today,
        lines=[(LicenseType.MEETINGS, 10, 11, 3)],
    )
    # Subscriptions ending: EXPIRING_SOON when auto-renew is off, within [today, today + 30].
    await customer("sub ends in 30 days", {"ACTIVE", "EXPIRING_SOON"})
    await sub(
        "sub ends in 30 days",
        A,
        today + 30 * day,
        lines=[(LicenseType.CALLING_PROFESSIONAL, 300, 200, 100)],
    )
    await customer("sub ends in 31 days", {"ACTIVE"})
    await sub("sub ends in 31 days", A, today + 31 * day)
    await customer("sub ends today", {"ACTIVE", "EXPIRING_SOON"})
    await sub("sub ends today", A, today)
    await customer("sub ended yesterday", {"ACTIVE"})
    await sub("sub ended yesterday", A, today - day)
    await customer("auto-renew in 5 days", {"ACTIVE"})
    await sub(
        "auto-renew in 5 days",
        A,
        today + 5 * day,
        auto_renew=True,
        lines=[(LicenseType.WEBEX_CALLING, 50, 20, 10), (LicenseType.MEETINGS, 40, 30, 20)],
    )
    # Overage: assigned > quantity on a holding subscription or trial.
    await customer("overage of one", {"ACTIVE", "LICENSE_OVERAGE"})
    await sub(
        "overage of one",
        A,
        today + 200 * day,
        lines=[(LicenseType.MEETINGS, 10, 11, 5), (LicenseType.MESSAGING, 10, 2, 1)],
    )
    await customer("assigned equals quantity", {"ACTIVE"})
    await sub(
        "assigned equals quantity", A, today + 200 * day, lines=[(LicenseType.MEETINGS, 10, 10, 9)]
    )
    await customer("overage on expired", {"EXPIRED"})
    await sub(
        "overage on expired", S.EXPIRED, today - 10 * day, lines=[(LicenseType.MEETINGS, 10, 15, 5)]
    )
    await customer("pending setup", {"READY_FOR_ORDER_SETUP", "LICENSE_OVERAGE"})
    await sub(
        "pending setup",
        S.PENDING_SETUP,
        today + 365 * day,
        lines=[(LicenseType.CONTACT_CENTER, 5, 6, 0)],
    )
    await customer("suspended", {"SUSPENDED"})
    await sub(
        "suspended",
        S.SUSPENDED,
        today + 90 * day,
        lines=[(LicenseType.REAL_TIME_TRANSLATION, 1000, 900, 800)],
    )
    await customer("no subscription at all", {"EXPIRED"})
    await customer("cancelled only", {"EXPIRED"})
    await sub("cancelled only", S.CANCELLED, today - 100 * day)
    # Admin activity: NO_RECENT_ACTIVITY after 30 days without a sign-in, or never.
    month = timedelta(days=30)
    await customer(
        "signed in 30 days ago less an hour", {"ACTIVE"}, now - month + timedelta(hours=1)
    )
    await sub("signed in 30 days ago less an hour", A, today + 400 * day, auto_renew=True)
    await customer(
        "signed in 30 days and an hour ago",
        {"ACTIVE", "NO_RECENT_ACTIVITY"},
        now - month - timedelta(hours=1),
    )
    await sub("signed in 30 days and an hour ago", A, today + 400 * day, auto_renew=True)
    await customer("never signed in", {"ACTIVE", "NO_RECENT_ACTIVITY"}, None)
    await sub("never signed in", A, today + 400 * day, auto_renew=True)
    # Overage counts on SUSPENDED (SPEC.md: ACTIVE, SUSPENDED or PENDING_SETUP), not on CANCELLED.
    await customer("suspended with overage", {"SUSPENDED", "LICENSE_OVERAGE"})
    await sub(
        "suspended with overage",
        S.SUSPENDED,
        today + 120 * day,
        lines=[(LicenseType.MEETINGS, 10, 12, 4)],
    )
    await customer("cancelled with overage", {"EXPIRED"})
    await sub(
        "cancelled with overage",
        S.CANCELLED,
        today + 120 * day,
        lines=[(LicenseType.MEETINGS, 10, 12, 4)],
    )

    # Details used by filters and the detail tabs.
    c = w.customers
    await Customer.filter(id=c["sub ends in 31 days"].id).update(external_id="WS-778899")
    await CustomerUser.create(
        customer=c["assigned equals quantity"],
        uuid=uuid.uuid4(),
        email="ana.smith@example.com",
        display_name="Ana Smith",
        created_at=now,
    )
    location = await Location.create(
        customer=c["suspended"], uuid=uuid.uuid4(), name="Denver HQ", country="US"
    )
    await PhoneNumber.create(
        customer=c["suspended"],
        location=location,
        number_key="+13035550100",
        phone_number="+13035550100",
    )
    await Device.create(
        customer=c["pending setup"],
        device_uuid=uuid.uuid4(),
        product="Cisco 8865",
        mac="001A2B3C4D5E",
    )
    for name in ("Gold", "Risk", "Unused"):
        w.tags[name] = await Tag.create(partner=northwind, name=name, name_key=name.lower())
    for customer_name, tag in (
        ("sub ends in 30 days", "Gold"),
        ("overage of one", "Gold"),
        ("overage of one", "Risk"),
        ("suspended", "Risk"),
    ):
        await CustomerTag.create(customer=c[customer_name], tag=w.tags[tag])
    sub30 = w.subscriptions["sub ends in 30 days"][0]
    await Invoice.create(
        subscription=sub30,
        number="INV-1",
        issued_on=today - 60 * day,
        amount="100.00",
        currency="USD",
        paid=True,
    )
    await Invoice.create(
        subscription=sub30,
        number="INV-2",
        issued_on=today - 30 * day,
        amount="120.50",
        currency="USD",
        paid=False,
    )
    await Order.create(
        subscription=sub30, order_number="ORD-1", placed_at=now - 100 * day, action="NEW"
    )
    await Order.create(
        subscription=sub30,
        order_number="ORD-2",
        placed_at=now - 20 * day,
        action="MODIFY",
        description="More seats",
    )

    admin = w.team[AdminRole.ADMIN].admin
    sales = w.team[AdminRole.SALES_ADMIN].admin
    await factories.assign(admin, c["overage of one"])
    await factories.assign(admin, c["assigned equals quantity"])
    await factories.assign(w.team[AdminRole.FULL_ADMIN].admin, c["pending setup"])
    await factories.assign(sales, c["suspended"])
    await Customer.filter(id=c["trial ends in 31 days"].id).update(created_by=sales)
    # Created by another admin's trial: the SALES_ADMIN does not see it.
    await Customer.filter(id=c["cancelled with overage"].id).update(
        created_by=w.team[AdminRole.FULL_ADMIN].admin
    )

    # Another partner's customer, with the same phone number and tag name.
    w.foreign = await factories.customer(contoso, "sub ends in 30 days (Contoso)")
    await subscription(w.foreign, A, today + 30 * day, today=today)
    await PhoneNumber.create(
        customer=w.foreign, number_key="+13035550100", phone_number="+13035550100"
    )
    foreign_tag = await Tag.create(partner=contoso, name="Gold", name_key="gold")
    await CustomerTag.create(customer=w.foreign, tag=foreign_tag)
    w.customers = {k: await Customer.get(id=v.id) for k, v in w.customers.items()}
    return w


@dataclass
class StatusGrid:
    """One customer per (rule, subscription state) pair, with the statuses SPEC.md
    gives it, written by hand; every customer signed in yesterday."""

    now: datetime
    partner: PartnerOrganization
    full_admin: factories.AdminWithToken
    customers: dict[str, Customer] = field(default_factory=dict)
    expected: dict[str, set[str]] = field(default_factory=dict)


OVERAGE_LINE: list[Line] = [(LicenseType.MEETINGS, 10, 11, 3)]  # assigned > quantity
EXACT_LINE: list[Line] = [(LicenseType.MEETINGS, 10, 10, 3)]  # assigned = quantity: no overage


async def build_status_grid() -> StatusGrid:
    """Every subscription status (ACTIVE, SUSPENDED, PENDING_SETUP, EXPIRED,
    CANCELLED) and trial state against LICENSE_OVERAGE, EXPIRING_SOON and EXPIRED,
    in a partner of its own."""
    now = datetime.now(UTC)
    today = now.date()
    day = timedelta(days=1)
    partner = await factories.partner("Fabrikam Partners", "fabrikam.example")
    g = StatusGrid(now, partner, await factories.admin(partner, AdminRole.FULL_ADMIN))
    S, T = SubscriptionStatus, TrialStatus

    async def customer(name: str, expected: set[str]) -> Customer:
        c = await Customer.create(
            partner=partner,
            name=name,
            org_id=uuid.uuid4(),
            region=Region.US,
            created_at=now - 200 * day,
            last_admin_activity_at=now - day,
        )
        g.customers[name], g.expected[name] = c, expected
        return c

    async def sub(
        name: str,
        status: SubscriptionStatus,
        ends_in: int,
        lines: list[Line],
        auto_renew: bool = True,
    ) -> None:
        await subscription(
            g.customers[name],
            status,
            today + ends_in * day,
            auto_renew=auto_renew,
            lines=lines,
            today=today,
        )

    async def trial_of(
        name: str, status: TrialStatus, mirror: SubscriptionStatus, ends_in: int, lines: list[Line]
    ) -> None:
        t = await trial(g.customers[name], today + ends_in * day, lines=lines, today=today)
        await Trial.filter(id=t.id).update(status=status)
        await Subscription.filter(trial_id=t.id).update(status=mirror)
        await refresh_customer_columns([g.customers[name].id], today)

    # LICENSE_OVERAGE: assigned > quantity on a subscription or trial in status
    # ACTIVE, SUSPENDED or PENDING_SETUP; never on EXPIRED or CANCELLED ones.
    overage_on = {
        S.ACTIVE: {"ACTIVE", "LICENSE_OVERAGE"},
        S.SUSPENDED: {"SUSPENDED", "LICENSE_OVERAGE"},
        S.PENDING_SETUP: {"READY_FOR_ORDER_SETUP", "LICENSE_OVERAGE"},
        S.EXPIRED: {"EXPIRED"},
        S.CANCELLED: {"EXPIRED"},
    }
    for status, expected in overage_on.items():
        await customer(f"overage on a {status.value} subscription", expected)
        await sub(f"overage on a {status.value} subscription", status, 200, OVERAGE_LINE)
    no_overage = {
        S.ACTIVE: {"ACTIVE"},
        S.SUSPENDED: {"SUSPENDED"},
        S.PENDING_SETUP: {"READY_FOR_ORDER_SETUP"},
        S.EXPIRED: {"EXPIRED"},
        S.CANCELLED: {"EXPIRED"},
    }
    for status, expected in no_overage.items():
        await customer(f"no overage on a {status.value} subscription", expected)
        await sub(f"no overage on a {status.value} subscription", status, 200, EXACT_LINE)
    # Trials: the TRIAL subscription mirrors the trial (cancelTrial: CANCELLED, the
    # expiry job: EXPIRED, a conversion: CONVERTED; app/domain/trials.py).
    await customer("overage on an ACTIVE trial", {"TRIAL", "LICENSE_OVERAGE"})
    await trial_of("overage on an ACTIVE trial", T.ACTIVE, S.ACTIVE, 60, OVERAGE_LINE)
    await customer("overage on an EXPIRED trial", {"EXPIRED"})
    await trial_of("overage on an EXPIRED trial", T.EXPIRED, S.EXPIRED, -1, OVERAGE_LINE)
    await customer("overage on a CANCELLED trial", {"EXPIRED"})
    await trial_of("overage on a CANCELLED trial", T.CANCELLED, S.CANCELLED, 60, OVERAGE_LINE)
    await customer("overage on a CONVERTED trial", {"EXPIRED"})
    await trial_of("overage on a CONVERTED trial", T.CONVERTED, S.CONVERTED, 60, OVERAGE_LINE)
    # The overage must be on a holding subscription itself, not on another one.
    await customer("overage on an EXPIRED beside a full ACTIVE", {"ACTIVE"})
    await sub("overage on an EXPIRED beside a full ACTIVE", S.EXPIRED, 200, OVERAGE_LINE)
    await sub("overage on an EXPIRED beside a full ACTIVE", S.ACTIVE, 200, EXACT_LINE)
    await customer("overage on a CANCELLED trial beside a SUSPENDED", {"SUSPENDED"})
    await trial_of(
        "overage on a CANCELLED trial beside a SUSPENDED",
        T.CANCELLED,
        S.CANCELLED,
        60,
        OVERAGE_LINE,
    )
    await sub("overage on a CANCELLED trial beside a SUSPENDED", S.SUSPENDED, 200, EXACT_LINE)
    # EXPIRING_SOON: only an ACTIVE subscription without auto-renew, or an ACTIVE trial.
    await customer("ACTIVE, no auto-renew, ends in 10 days", {"ACTIVE", "EXPIRING_SOON"})
    await sub("ACTIVE, no auto-renew, ends in 10 days", S.ACTIVE, 10, EXACT_LINE, auto_renew=False)
    await customer("ACTIVE, auto-renew, ends in 10 days", {"ACTIVE"})
    await sub("ACTIVE, auto-renew, ends in 10 days", S.ACTIVE, 10, EXACT_LINE, auto_renew=True)
    for status, expected in {
        S.SUSPENDED: {"SUSPENDED"},
        S.PENDING_SETUP: {"READY_FOR_ORDER_SETUP"},
        S.EXPIRED: {"EXPIRED"},
        S.CANCELLED: {"EXPIRED"},
    }.items():
        name = f"{status.value}, no auto-renew, ends in 10 days"
        await customer(name, expected)
        await sub(name, status, 10, EXACT_LINE, auto_renew=False)
    await customer("CANCELLED trial that would end in 10 days", {"EXPIRED"})
    await trial_of(
        "CANCELLED trial that would end in 10 days", T.CANCELLED, S.CANCELLED, 10, EXACT_LINE
    )
    # EXPIRED: no holding subscription and no ongoing trial.
    await customer("ACTIVE trial beside a SUSPENDED", {"TRIAL", "SUSPENDED"})
    await trial_of("ACTIVE trial beside a SUSPENDED", T.ACTIVE, S.ACTIVE, 60, EXACT_LINE)
    await sub("ACTIVE trial beside a SUSPENDED", S.SUSPENDED, 200, EXACT_LINE)
    await customer("PENDING_SETUP beside a CANCELLED", {"READY_FOR_ORDER_SETUP"})
    await sub("PENDING_SETUP beside a CANCELLED", S.PENDING_SETUP, 200, EXACT_LINE)
    await sub("PENDING_SETUP beside a CANCELLED", S.CANCELLED, -5, EXACT_LINE)
    return g
