"""Seeded rows for the report tests, and each report's expected rows computed
here in plain Python from those rows (not with the product's SQL).

Northwind has three customers: "Alpha" (US, wholesale, assigned to the ADMIN),
"Bravo" (EU) and "Charlie" (US, with awkward text: a formula-like firmware, a
comma, a quote, a line break). Contoso has one customer with data of every
kind that must never show up in Northwind's reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from app.models.calling import CallLeg
from app.models.customers import Customer, CustomerUser, Location
from app.models.enums import (
    LICENSE_PRODUCT,
    AdminRole,
    CallFeature,
    CallType,
    EndpointType,
    LicenseType,
    QueueOutcome,
    Region,
    SubscriptionKind,
    SubscriptionStatus,
)
from app.models.inventory import AppSession, DailyOrgUsage, Device, PhoneNumber
from app.models.organization import PartnerOrganization
from app.models.subscriptions import LicenseLine, Subscription
from tests import factories


@dataclass
class ReportWorld:
    today: date
    start: date
    end: date
    northwind: PartnerOrganization
    contoso: PartnerOrganization
    team: dict[AdminRole, factories.AdminWithToken]
    contoso_team: dict[AdminRole, factories.AdminWithToken]
    customers: dict[str, Customer] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    numbers: list[PhoneNumber] = field(default_factory=list)
    legs: list[CallLeg] = field(default_factory=list)
    sessions: list[AppSession] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    lines: dict[int, list[LicenseLine]] = field(default_factory=dict)
    users: list[CustomerUser] = field(default_factory=list)
    usage: list[DailyOrgUsage] = field(default_factory=list)

    def customer_of(self, customer_id: int) -> Customer:
        return next(c for c in self.customers.values() if c.id == customer_id)

    def location_of(self, location_id: int | None) -> Location | None:
        return next((loc for loc in self.locations.values() if loc.id == location_id), None)


async def build_report_world() -> ReportWorld:
    today = datetime.now(UTC).date()
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    w = ReportWorld(
        today=today,
        start=today - timedelta(days=10),
        end=today - timedelta(days=4),
        northwind=northwind,
        contoso=contoso,
        team=await factories.team(northwind),
        contoso_team=await factories.team(contoso),
    )
    alpha = await factories.customer(northwind, "Alpha Dental", Region.US)
    alpha.external_id = "WS-1001"
    await alpha.save()
    bravo = await factories.customer(northwind, "Bravo Logistics", Region.EU)
    charlie = await factories.customer(northwind, 'Charlie "Chips", Inc', Region.US)
    foreign = await factories.customer(contoso, "Contoso Customer", Region.US)
    w.customers = {"alpha": alpha, "bravo": bravo, "charlie": charlie, "foreign": foreign}
    await factories.assign(w.team[AdminRole.ADMIN].admin, alpha)

    for key, customer, name, country in (
        ("alpha-hq", alpha, "HQ", "US"),
        ("alpha-lab", alpha, "Lab", "US"),
        ("bravo-hq", bravo, "Rotterdam", "NL"),
        ("charlie-hq", charlie, "Main, Floor 2", "US"),
        ("foreign-hq", foreign, "Elsewhere", "US"),
    ):
        w.locations[key] = await Location.create(
            customer=customer, uuid=uuid.uuid4(), name=name, country=country
        )

    await _inventory(w)
    await _calls(w)
    await _app_sessions(w)
    await _subscriptions(w)
    return w


async def _inventory(w: ReportWorld) -> None:
    loc = w.locations
    rows = (
        (w.customers["alpha"], loc["alpha-hq"], "Cisco 8865", "00AABBCCDD01", "12.0.1",
         "+14155550101", "101", "ann@alpha.example"),
        (w.customers["alpha"], loc["alpha-lab"], "Cisco Room Kit", "00AABBCCDD02", None,
         None, None, None),
        (w.customers["bravo"], loc["bravo-hq"], "Cisco 8851", "00AABBCCDD03", "11.3",
         "+31105550103", "103", "bob@bravo.example"),
        (w.customers["charlie"], loc["charlie-hq"], "Poly VVX 450", "00AABBCCDD04",
         "=HYPERLINK(\"http://x\")", None, "-104", "line\nbreak@charlie.example"),
        (w.customers["charlie"], None, "Cisco 6841", "00AABBCCDD05", "@risk", None, None, None),
        (w.customers["foreign"], loc["foreign-hq"], "Cisco 8865", "00AABBCCDD99", "12.0.1",
         "+14155550199", "199", "eve@contoso-customer.example"),
    )  # fmt: skip
    for customer, location, product, mac, firmware, number, ext, user in rows:
        w.devices.append(
            await Device.create(
                customer=customer,
                location=location,
                device_uuid=uuid.uuid4(),
                product=product,
                mac=mac,
                firmware=firmware,
                phone_number=number,
                extension=ext,
                user_id=user,
                user_uuid=uuid.uuid4() if user else None,
            )
        )
    numbers = (
        (w.customers["alpha"], loc["alpha-hq"], "+14155550101", None, "AT&T", True, "People",
         "Primary", "ann@alpha.example"),
        (w.customers["alpha"], loc["alpha-hq"], None, "2001", None, True, "Auto attendant",
         None, None),
        (w.customers["bravo"], loc["bravo-hq"], "+31105550103", None, "KPN", False, None, None,
         None),
        (w.customers["charlie"], loc["charlie-hq"], "+14155550104", None, "+Tel, Inc", True,
         "People", "Secondary", "carl@charlie.example"),
        (w.customers["foreign"], loc["foreign-hq"], "+14155550199", None, "AT&T", True,
         "People", "Primary", "eve@contoso-customer.example"),
    )  # fmt: skip
    for customer, location, number, ext, pstn, active, user_type, number_type, user in numbers:
        key = number or f"ext:{location.uuid}:{ext}"
        w.numbers.append(
            await PhoneNumber.create(
                customer=customer,
                location=location,
                number_key=key,
                phone_number=number,
                extension=ext,
                pstn_connection=pstn,
                active=active,
                user_type=user_type,
                number_type=number_type,
                user_id=user,
                user_uuid=uuid.uuid4() if user_type else None,
            )
        )


async def _calls(w: ReportWorld) -> None:
    """Legs inside the range (first day 00:00:00, last day 23:59:59) and just
    outside it, across locations, features, queue outcomes and call types."""
    start = datetime.combine(w.start, time.min, UTC)
    last_second = datetime.combine(w.end, time(23, 59, 59), UTC)
    user = uuid.uuid4()
    n = 0

    async def leg(customer: str, location: str | None, at: datetime, call: str, **kw: object):
        nonlocal n
        n += 1
        values = {
            "duration_seconds": 125,
            "video_seconds": 0,
            "has_audio": True,
            "has_video": False,
            "endpoint_type": EndpointType.DESK_PHONE,
            "jitter_ms": 10.0,
            "latency_ms": 50.0,
            "packet_loss_pct": 0.1,
            "call_type": CallType.NATIONAL,
            "feature": CallFeature.NONE,
        } | kw
        w.legs.append(
            await CallLeg.create(
                customer=w.customers[customer],
                location=w.locations[location] if location else None,
                leg_id=f"leg-{n}",
                call_id=call,
                user_uuid=user,
                started_at=at,
                **values,
            )
        )

    await leg("alpha", "alpha-hq", start, "c1")
    await leg("alpha", "alpha-hq", start, "c1", endpoint_type=EndpointType.APP, jitter_ms=151.0)
    await leg("alpha", "alpha-hq", start + timedelta(hours=1), "c2", has_video=True,
              video_seconds=95, endpoint_type=EndpointType.ROOM_DEVICE, latency_ms=401.0,
              call_type=CallType.INTERNATIONAL)  # fmt: skip
    await leg("alpha", "alpha-lab", last_second, "c3", endpoint_type=EndpointType.THIRD_PARTY,
              jitter_ms=None, latency_ms=None, packet_loss_pct=None,
              call_type=CallType.INBOUND, feature=CallFeature.HUNT_GROUP)  # fmt: skip
    await leg("alpha", None, start + timedelta(days=2), "c4", endpoint_type=EndpointType.ANALOG,
              has_audio=True, call_type=CallType.EMERGENCY)  # fmt: skip
    for i, outcome in enumerate(
        (QueueOutcome.ANSWERED, QueueOutcome.ABANDONED, QueueOutcome.TIMED_OUT,
         QueueOutcome.OVERFLOWED, QueueOutcome.TRANSFERRED, QueueOutcome.ABANDONED)
    ):  # fmt: skip
        for part in range(2):  # two legs of one queued call count as one call
            await leg("bravo", "bravo-hq", start + timedelta(days=1, minutes=i), f"q{i}",
                      feature=CallFeature.CALL_QUEUE, queue_outcome=outcome,
                      queue_wait_seconds=20, call_type=CallType.INBOUND,
                      packet_loss_pct=5.1 if part else 5.0)  # fmt: skip
    await leg("bravo", "bravo-hq", start + timedelta(days=3), "aa1",
              feature=CallFeature.AUTO_ATTENDANT, call_type=CallType.TOLL_FREE,
              endpoint_type=EndpointType.OTHER_DEVICE)  # fmt: skip
    await leg("charlie", "charlie-hq", start + timedelta(days=4), "ch1",
              call_type=CallType.MOBILE, duration_seconds=29)  # fmt: skip
    # Outside the range: the second before it and the first second after it.
    await leg("alpha", "alpha-hq", start - timedelta(seconds=1), "out1")
    await leg("charlie", "charlie-hq", last_second + timedelta(seconds=1), "out2")
    await leg("foreign", "foreign-hq", start + timedelta(hours=2), "f1")


async def _app_sessions(w: ReportWorld) -> None:
    """A user seen on two versions counts once, at the newest; the day 90 days back
    is in the default window, 91 days back is not."""
    ann, bob, cy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rows = (
        ("alpha", ann, "Desktop", "Windows", "44.10", "Windows 11", 3),
        ("alpha", ann, "Desktop", "Windows", "44.11", "Windows 11", 1),
        ("alpha", bob, "Desktop", "Windows", "44.11", "Windows 11", 2),
        ("alpha", bob, "Mobile", "iOS", "44.9", "iOS 18", 90),
        ("alpha", cy, "Desktop", "macOS", "44.8", "macOS 15", 91),
        ("bravo", ann, "Desktop", "Windows", "44.11", "Windows 10", 5),
        ("foreign", uuid.uuid4(), "Desktop", "Windows", "44.11", "Windows 11", 1),
    )
    for customer, user, client, platform, version, os_version, days_ago in rows:
        w.sessions.append(
            await AppSession.create(
                customer=w.customers[customer],
                user_uuid=user,
                client_type=client,
                platform=platform,
                version=version,
                os_version=os_version,
                seen_on=w.today - timedelta(days=days_ago),
            )
        )


async def _subscriptions(w: ReportWorld) -> None:
    today = w.today

    async def subscription(
        customer: str,
        sub_id: str,
        status: SubscriptionStatus,
        lines: list[tuple[LicenseType, int, int, int]],
        *,
        kind: SubscriptionKind = SubscriptionKind.SUBSCRIPTION,
        auto_renew: bool = False,
    ) -> None:
        sub = await Subscription.create(
            customer=w.customers[customer],
            subscription_id=sub_id,
            kind=kind,
            status=status,
            start_date=today - timedelta(days=200),
            end_date=today + timedelta(days=165),
            auto_renew=auto_renew,
            added_at=datetime.now(UTC) - timedelta(days=200),
        )
        w.subscriptions.append(sub)
        w.lines[sub.id] = []
        for license_type, quantity, assigned, used in lines:
            w.lines[sub.id].append(
                await LicenseLine.create(
                    subscription=sub,
                    license_type=license_type,
                    product=LICENSE_PRODUCT[license_type],
                    quantity=quantity,
                    assigned=assigned,
                    used=used,
                )
            )

    L = LicenseType
    await subscription("alpha", "Sub-A1", SubscriptionStatus.ACTIVE,
                       [(L.MEETINGS, 50, 40, 30), (L.WEBEX_CALLING, 20, 25, 10),
                        (L.CALLING_STANDARD, 10, 2, 1), (L.WORKSPACE, 4, 4, 0)],
                       auto_renew=True)  # fmt: skip
    await subscription("bravo", "Sub-B1", SubscriptionStatus.SUSPENDED,
                       [(L.CALLING_PROFESSIONAL, 100, 60, 45), (L.MEETINGS, 10, 10, 9),
                        (L.CUSTOMER_ASSIST, 5, 1, 0)])  # fmt: skip
    await subscription("bravo", "ET-000000000001", SubscriptionStatus.ACTIVE,
                       [(L.MESSAGING, 30, 0, 0)], kind=SubscriptionKind.TRIAL)  # fmt: skip
    await subscription("bravo", "Sub-B0", SubscriptionStatus.EXPIRED, [(L.MEETINGS, 1, 1, 1)])
    await subscription("charlie", "Sub-C1", SubscriptionStatus.PENDING_SETUP, [])
    await subscription("foreign", "Sub-F1", SubscriptionStatus.ACTIVE, [(L.MEETINGS, 9, 9, 9)])

    for customer, verified in (("alpha", True), ("alpha", False), ("bravo", True),
                               ("foreign", True)):  # fmt: skip
        w.users.append(
            await CustomerUser.create(
                customer=w.customers[customer],
                uuid=uuid.uuid4(),
                email=f"{uuid.uuid4().hex[:8]}@{customer}.example",
                display_name="User",
                verified=verified,
                created_at=datetime.now(UTC) - timedelta(days=50),
            )
        )
    for customer, days_ago, participants, minutes, messages in (
        ("alpha", 1, 5, 100, 7), ("alpha", 30, 2, 10, 1), ("alpha", 31, 99, 999, 99),
        ("alpha", 0, 88, 888, 88), ("bravo", 12, 1, 2, 3), ("foreign", 3, 4, 4, 4),
    ):  # fmt: skip
        w.usage.append(
            await DailyOrgUsage.create(
                customer=w.customers[customer],
                day=today - timedelta(days=days_ago),
                meeting_participants=participants,
                calling_minutes=minutes,
                messages_sent=messages,
            )
        )
