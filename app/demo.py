"""Demo data: two partner organizations with one admin per role and a
deterministic, realistic set of customers covering every status, product and
license type, with trials, invoices, orders, 12 weeks of license snapshots, 10
weeks of call legs, devices, phone numbers, app sessions and daily usage.

Rows are generated in Python from one seeded random generator and written with
`COPY` (PostgreSQL) or `executemany` (SQLite) in one transaction: a failed load
leaves the database as empty as it was.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tortoise.transactions import in_transaction

from app.auth import hash_token
from app.bulk import BulkWriter
from app.db import execute, is_postgres
from app.domain.call_leg_partitions import ensure_partitions_between
from app.domain.calling_rollup import rollup_week
from app.domain.customer_columns import refresh_all_customer_columns
from app.domain.resources import ensure_reference_resources
from app.domain.trials import TRIAL_LICENSE_TYPE, trial_subscription_status
from app.models.enums import (
    LICENSE_PRODUCT,
    AdminRole,
    CallFeature,
    CallType,
    EndpointType,
    LicenseType,
    OrderAction,
    Product,
    QueueOutcome,
    Region,
    SubscriptionKind,
    SubscriptionStatus,
    TrialStatus,
)
from app.models.organization import PartnerOrganization
from app.models.system import DemoDataset


class DemoError(RuntimeError):
    """The demo data cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class DemoPartner:
    name: str
    domain: str
    setup_completed: bool
    industry: str | None
    planned_users: int | None


PARTNERS: tuple[DemoPartner, ...] = (
    DemoPartner("Northwind Partners", "northwind.example", True, "Telecommunications", 25000),
    DemoPartner("Contoso Partners", "contoso.example", False, None, None),
)

# External-admin grants in both directions ("managed by" EXTERNAL_ADMIN): (granting
# partner index, its customer number, grantee partner index, grantee role, days ago).
# Fixed values, written after every customer: the random stream stays the same.
EXTERNAL_ADMIN_GRANTS: tuple[tuple[int, int, int, AdminRole, int], ...] = (
    (0, 0, 1, AdminRole.ADMIN, 20),
    (0, 1, 1, AdminRole.ADMIN, 12),
    (0, 0, 1, AdminRole.READ_ONLY_ADMIN, 5),
    (1, 0, 0, AdminRole.ADMIN, 30),
    (1, 1, 0, AdminRole.ADMIN, 8),
    (1, 2, 0, AdminRole.FULL_ADMIN, 3),
)

ROLE_MAILBOXES: tuple[tuple[AdminRole, str, str], ...] = (
    (AdminRole.FULL_ADMIN, "full", "Full Admin"),
    (AdminRole.ADMIN, "admin", "Partner Admin"),
    (AdminRole.READ_ONLY_ADMIN, "readonly", "Read-only Admin"),
    (AdminRole.SALES_FULL_ADMIN, "salesfull", "Sales Full Admin"),
    (AdminRole.SALES_ADMIN, "sales", "Sales Admin"),
)

# Each partner's own subscription (its plan overview): license type -> (quantity,
# assigned, used). Fixed values: the shared random stream, and so every customer, is
# the same as without them.
OWN_PLAN: tuple[tuple[LicenseType, int, int, int], ...] = (
    (LicenseType.MEETINGS, 50, 38, 30),
    (LicenseType.CALLING_PROFESSIONAL, 40, 31, 27),
    (LicenseType.MESSAGING, 50, 41, 35),
)

# Every scenario appears among the first customers of each partner, so even a
# small demo shows every status; after that they follow these weights.
SCENARIOS: tuple[tuple[str, int], ...] = (
    ("healthy", 30),
    ("expiring", 8),
    ("renewing", 8),
    ("overage", 8),
    ("low_assignment", 8),
    ("pending_setup", 5),
    ("suspended", 5),
    ("expired", 6),
    ("trial", 10),
    ("trial_ending", 4),
    ("recent", 6),
    ("messaging_only", 2),
)

# License bundles a subscription is made of; between them they hold every type.
BUNDLES: tuple[tuple[LicenseType, ...], ...] = (
    (LicenseType.CALLING_PROFESSIONAL, LicenseType.CALLING_STANDARD, LicenseType.WORKSPACE),
    (LicenseType.MEETINGS, LicenseType.REAL_TIME_TRANSLATION),
    (LicenseType.MEETINGS, LicenseType.CALLING_PROFESSIONAL, LicenseType.MESSAGING),
    (LicenseType.WEBEX_CALLING, LicenseType.WEBEX_VOICE, LicenseType.COMMON_AREA_CALLING),
    (LicenseType.WEBEX_SUITE, LicenseType.CUSTOMER_ASSIST, LicenseType.ATTENDANT_CONSOLE),
    (LicenseType.CALLING_PROFESSIONAL, LicenseType.CONTACT_CENTER),
    (LicenseType.MEETINGS,),
    (LicenseType.CALLING_STANDARD, LicenseType.COMMON_AREA_CALLING),
)
MESSAGING_ONLY: tuple[LicenseType, ...] = (LicenseType.MESSAGING,)


REGION_WEIGHTS: tuple[tuple[Region, int], ...] = (
    (Region.US, 40),
    (Region.EU, 30),
    (Region.CA, 15),
    (Region.UAE, 15),
)
CITIES: dict[Region, tuple[tuple[str, str, str], ...]] = {
    Region.US: (("New York", "US", "+1212"), ("Austin", "US", "+1512"), ("Denver", "US", "+1303")),
    Region.CA: (("Toronto", "CA", "+1416"), ("Vancouver", "CA", "+1604")),
    Region.EU: (("Amsterdam", "NL", "+3120"), ("Berlin", "DE", "+4930"), ("Lyon", "FR", "+334")),
    Region.UAE: (("Dubai", "AE", "+9714"), ("Abu Dhabi", "AE", "+9712")),
}
CURRENCY: dict[Region, str] = {
    Region.US: "USD",
    Region.CA: "CAD",
    Region.EU: "EUR",
    Region.UAE: "AED",
}
UNIT_PRICE: dict[LicenseType, Decimal] = {
    t: Decimal(p) for t, p in zip(LicenseType, range(4, 30, 2), strict=True)
}

NAME_FIRST = (
    "Acme", "Blue", "Cedar", "Delta", "Evergreen", "Fjord", "Granite", "Harbor", "Iris", "Juniper",
    "Keystone", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quartz", "Redwood", "Summit",
    "Tidal", "Umber", "Vertex", "Willow", "Zenith",
)  # fmt: skip
NAME_SECOND = (
    "Logistics", "Health", "Dental", "Foods", "Legal", "Capital", "Robotics", "Studios", "Energy",
    "Schools", "Hotels", "Motors", "Pharma", "Retail", "Insurance", "Media", "Labs", "Freight",
)  # fmt: skip
PEOPLE_FIRST = (
    "ana", "ben", "chloe", "dev", "emma", "farid", "grace", "hugo", "ines", "jon",
    "kim", "liam", "mia", "noor", "omar", "pia", "raj", "sara", "tom", "yara",
)  # fmt: skip
PEOPLE_LAST = ("smith", "jansen", "nowak", "rossi", "martin", "haddad", "chen", "garcia", "kumar",
               "dubois", "silva", "müller", "o'brien", "lee")  # fmt: skip

DEVICE_MODELS = ("Cisco 8845", "Cisco 8865", "Cisco 6871", "Cisco Room Kit", "Cisco Desk Pro",
                 "Cisco Room Bar", "Poly VVX 450", "Yealink T54W")  # fmt: skip
NUMBER_TYPES = ("Primary", "Primary", "Secondary")
PSTN = ("Cisco Calling Plan", "Local Gateway", "IntelePeer", "Telia Carrier")
APP_PLATFORMS = (("Windows", "Windows 11 23H2"), ("Windows", "Windows 10 22H2"),
                 ("macOS", "macOS 15.1"), ("iOS", "iOS 18.1"), ("Android", "Android 15"),
                 ("Linux", "Ubuntu 24.04"))  # fmt: skip
APP_VERSIONS = ("45.10.0.31054", "45.10.1.31203", "45.11.0.31420", "45.9.2.30871")
ENDPOINTS: tuple[tuple[EndpointType, int], ...] = (
    (EndpointType.APP, 40),
    (EndpointType.DESK_PHONE, 30),
    (EndpointType.ROOM_DEVICE, 10),
    (EndpointType.OTHER_DEVICE, 8),
    (EndpointType.ANALOG, 6),
    (EndpointType.THIRD_PARTY, 6),
)
CALL_TYPES: tuple[tuple[CallType, int], ...] = tuple(
    zip(CallType, (30, 3, 1, 4, 20, 18, 1, 6, 2, 5, 7, 1, 2), strict=True)
)
FEATURES: tuple[tuple[CallFeature, int], ...] = (
    (CallFeature.NONE, 70),
    (CallFeature.HUNT_GROUP, 7),
    (CallFeature.AUTO_ATTENDANT, 7),
    (CallFeature.CALL_QUEUE, 10),
    (CallFeature.CALL_PARK, 2),
    (CallFeature.CALL_PICKUP, 2),
    (CallFeature.VOICEMAIL, 2),
)
QUEUE_OUTCOMES: tuple[tuple[QueueOutcome, int], ...] = (
    (QueueOutcome.ANSWERED, 70),
    (QueueOutcome.ABANDONED, 12),
    (QueueOutcome.TIMED_OUT, 6),
    (QueueOutcome.OVERFLOWED, 6),
    (QueueOutcome.TRANSFERRED, 6),
)
TAGS: tuple[tuple[str, str], ...] = (
    ("Enterprise", "Over 1,000 seats"),
    ("SMB", "Small and medium business"),
    ("Renewal Q1", "Renewal conversation due next quarter"),
    ("At risk", "Low usage or open escalations"),
    ("Wholesale", "Wholesale route to market"),
    ("Upsell", "Candidate for Calling or Contact Center"),
)


def demo_token(seed: int, email: str) -> str:
    """The demo admins' tokens follow from the seed, so `make run` can print them
    on every start. They are for local demos only: production tokens are random."""
    digest = hashlib.sha256(f"partnerhub-demo:{seed}:{email}".encode()).hexdigest()
    return f"phd_{digest[:40]}"


@dataclass(frozen=True)
class DemoAdmin:
    partner: str
    email: str
    role: AdminRole
    token: str


def demo_admins(seed: int) -> list[DemoAdmin]:
    return [
        DemoAdmin(p.name, f"{box}@{p.domain}", role, demo_token(seed, f"{box}@{p.domain}"))
        for p in PARTNERS
        for role, box, _ in ROLE_MAILBOXES
    ]


@dataclass
class _Ids:
    counters: dict[str, int] = field(default_factory=dict)

    def peek(self, table: str) -> int:
        """The id the next row of `table` will get."""
        return self.counters.get(table, 0) + 1

    def next(self, table: str) -> int:
        value = self.counters.get(table, 0) + 1
        self.counters[table] = value
        return value


def _weighted(rng: random.Random, choices: tuple[tuple[object, int], ...]) -> object:
    values = [c for c, _ in choices]
    weights = [w for _, w in choices]
    return rng.choices(values, weights)[0]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


COLUMNS: dict[str, tuple[str, ...]] = {
    "partner_organization": ("id", "name", "org_id", "domain", "industry", "planned_users",
                             "terms_accepted_at", "created_at"),
    "admin": ("id", "partner_id", "email", "display_name", "role", "last_login_at", "created_at"),
    "api_token": ("id", "admin_id", "token_hash", "label", "created_at"),
    "partner_subscription": ("id", "partner_id", "subscription_id", "kind", "status",
                             "start_date", "end_date", "auto_renew", "added_at"),
    "partner_license_line": ("id", "subscription_id", "license_type", "product", "quantity",
                             "assigned", "used"),
    "tag": ("id", "partner_id", "name", "name_key", "description", "created_at", "created_by_id"),
    "customer": ("id", "partner_id", "name", "org_id", "external_id", "region", "location",
                 "created_at", "created_by_id", "last_admin_activity_at"),
    "customer_user": ("id", "customer_id", "uuid", "email", "display_name", "verified",
                      "is_admin", "created_at"),
    "customer_admin_sign_in": ("id", "customer_id", "user_email", "signed_in_at"),
    "location": ("id", "customer_id", "uuid", "name", "country"),
    "customer_tag": ("id", "customer_id", "tag_id", "tagged_at"),
    "customer_assignment": ("id", "admin_id", "customer_id", "assigned_at", "assigned_by_id"),
    "external_admin_grant": ("id", "customer_id", "admin_id", "granted_by_id", "granted_at"),
    "trial": ("id", "customer_id", "trial_id", "status", "start_date", "end_date",
              "started_by_id", "created_at", "ended_at"),
    "trial_product": ("id", "trial_id", "product", "licenses"),
    "subscription": ("id", "customer_id", "subscription_id", "kind", "status", "start_date",
                     "end_date", "auto_renew", "added_at", "trial_id"),
    "license_line": ("id", "subscription_id", "license_type", "product", "quantity", "assigned",
                     "used"),
    "license_snapshot": ("id", "subscription_id", "license_type", "week_start", "quantity",
                         "assigned", "used_7d", "used_90d"),
    "invoice": ("id", "subscription_id", "number", "issued_on", "amount", "currency", "paid"),
    "purchase_order": ("id", "subscription_id", "order_number", "placed_at", "action",
                       "description"),
    "call_leg": ("id", "customer_id", "location_id", "leg_id", "call_id", "user_uuid",
                 "started_at", "duration_seconds", "video_seconds", "has_audio", "has_video",
                 "endpoint_type", "ip_version", "jitter_ms", "latency_ms", "packet_loss_pct",
                 "call_type", "feature", "queue_outcome", "queue_wait_seconds"),
    "device": ("id", "customer_id", "location_id", "device_uuid", "product", "mac", "firmware",
               "phone_number", "extension", "user_id", "user_uuid"),
    "phone_number": ("id", "customer_id", "location_id", "number_key", "phone_number",
                     "extension", "pstn_connection", "active", "user_type", "number_type",
                     "user_id", "user_uuid"),
    "app_session": ("id", "customer_id", "user_uuid", "client_type", "platform", "version",
                    "os_version", "seen_on"),
    "daily_org_usage": ("id", "customer_id", "day", "meeting_participants", "calling_minutes",
                        "messages_sent"),
    "demo_dataset": ("id", "seed", "customers_per_partner", "loaded_at"),
}  # fmt: skip


@dataclass
class _User:
    uuid: uuid.UUID
    email: str


class DemoBuilder:
    """Generates the demo rows into a BulkWriter."""

    def __init__(self, writer: BulkWriter, seed: int, now: datetime) -> None:
        self.w = writer
        self.rng = random.Random(seed)
        self.seed = seed
        self.now = now.replace(microsecond=0)
        self.today = self.now.date()
        self.week_start = self.today - timedelta(days=self.today.weekday())
        self.ids = _Ids()
        for table, columns in COLUMNS.items():
            writer.table(table, columns)

    async def row(self, table: str, *values: object) -> int:
        row_id = self.ids.next(table)
        await self.w.add(table, (row_id, *values))
        return row_id

    def at(self, days_ago: float) -> datetime:
        return self.now - timedelta(days=days_ago)

    # ------------------------------------------------------------ partners ----

    async def partner(
        self, index: int, spec: DemoPartner
    ) -> tuple[int, dict[AdminRole, int], list[int]]:
        rng = self.rng
        created = self.at(900 + index)
        partner_id = await self.row(
            "partner_organization", spec.name, _uuid(rng), spec.domain, spec.industry,
            spec.planned_users, self.at(800) if spec.setup_completed else None, created,
        )  # fmt: skip
        admins: dict[AdminRole, int] = {}
        for role, box, title in ROLE_MAILBOXES:
            email = f"{box}@{spec.domain}"
            admin_id = await self.row(
                "admin", partner_id, email, f"{title} ({spec.name.split()[0]})", role.value,
                self.at(rng.uniform(0, 5)), created,
            )  # fmt: skip
            admins[role] = admin_id
            token = demo_token(self.seed, email)
            await self.row("api_token", admin_id, hash_token(token), "demo", created)
        await self.own_subscription(index, partner_id, created)
        tag_ids = [
            await self.row(
                "tag",
                partner_id,
                name,
                name.lower(),
                description,
                created,
                admins[AdminRole.FULL_ADMIN],
            )
            for name, description in TAGS
        ]
        return partner_id, admins, tag_ids

    async def own_subscription(self, index: int, partner_id: int, created: datetime) -> None:
        """The partner's own subscription with its license lines (no random draws)."""
        started = created + timedelta(days=1)
        sub_id = await self.row(
            "partner_subscription", partner_id, f"Sub-OWN-{index + 1:03d}",
            SubscriptionKind.SUBSCRIPTION.value, SubscriptionStatus.ACTIVE.value, started.date(),
            self.today + timedelta(days=200 + 60 * index), True, started,
        )  # fmt: skip
        for license_type, quantity, assigned, used in OWN_PLAN:
            await self.row(
                "partner_license_line", sub_id, license_type.value,
                LICENSE_PRODUCT[license_type].value, quantity, assigned, used,
            )  # fmt: skip

    # ----------------------------------------------------------- customers ----

    async def customer(
        self, partner_id: int, number: int, admins: dict[AdminRole, int], tag_ids: list[int]
    ) -> None:
        rng = self.rng
        scenario = SCENARIOS[number][0] if number < len(SCENARIOS) else _weighted(rng, SCENARIOS)
        region: Region = list(Region)[number % 4] if number < 8 else _weighted(rng, REGION_WEIGHTS)  # type: ignore[assignment]
        city, country, prefix = rng.choice(CITIES[region])
        wholesale = rng.random() < 0.25
        created_at = self.at(rng.uniform(95, 1100))
        if scenario in ("recent", "pending_setup"):
            created_at = self.at(rng.uniform(1, 85))
        activity_roll = rng.random()
        last_activity = (
            self.at(rng.uniform(0, 29)) if activity_roll < 0.75
            else self.at(rng.uniform(31, 200)) if activity_roll < 0.9
            else None
        )  # fmt: skip
        if last_activity is not None and last_activity < created_at:
            last_activity = created_at
        created_by = None
        if scenario.startswith("trial") and rng.random() < 0.5:
            created_by = admins[AdminRole.SALES_ADMIN]
        name = f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_SECOND)} {partner_id}{number:05d}"
        customer_id = await self.row(
            "customer", partner_id, name, _uuid(rng),
            f"WS-{rng.randrange(10**7, 10**8)}" if wholesale else None, region.value,
            f"{city}, {country}", created_at, created_by, last_activity,
        )  # fmt: skip

        slug = name.lower().replace(" ", "")[:20]
        users = await self.users(customer_id, slug, created_at, last_activity)
        locations = [
            (await self.row("location", customer_id, _uuid(rng), f"{city} {label}", country))
            for label in ("HQ", "Branch 2", "Branch 3")[: rng.randint(1, 3)]
        ]
        for tag_id in rng.sample(tag_ids, rng.choice((0, 0, 1, 1, 2, 3))):
            await self.row("customer_tag", customer_id, tag_id, created_at)
        if rng.random() < 0.3 or number % 5 == 1:
            await self.row(
                "customer_assignment", admins[AdminRole.ADMIN], customer_id, created_at,
                admins[AdminRole.FULL_ADMIN],
            )  # fmt: skip
        if rng.random() < 0.1 or number % 7 == 2:
            await self.row(
                "customer_assignment", admins[AdminRole.SALES_ADMIN], customer_id, created_at,
                admins[AdminRole.FULL_ADMIN],
            )  # fmt: skip

        license_types = await self.subscriptions(
            customer_id, scenario, region, created_at, wholesale, number, admins, created_by
        )
        calling = any(LICENSE_PRODUCT[t] is Product.CALLING for t in license_types)
        if calling:
            await self.call_legs(customer_id, users, locations, has_queue=rng.random() < 0.5)
            await self.inventory(customer_id, users, locations, prefix)
        await self.app_sessions(customer_id, users)
        await self.daily_usage(customer_id, license_types)

    async def users(
        self, customer_id: int, slug: str, created_at: datetime, last_activity: datetime | None
    ) -> list[_User]:
        rng = self.rng
        users: list[_User] = []
        for n in range(rng.randint(3, 12)):
            first, last = rng.choice(PEOPLE_FIRST), rng.choice(PEOPLE_LAST)
            email = f"{first}.{last.replace(chr(39), '')}{n}@{slug}.example"
            user_uuid = _uuid(rng)
            is_admin = n < 2
            await self.row(
                "customer_user", customer_id, user_uuid, email,
                f"{first.title()} {last.title()}", rng.random() < 0.85, is_admin, created_at,
            )  # fmt: skip
            users.append(_User(user_uuid, email))
        if last_activity is not None:
            await self.row("customer_admin_sign_in", customer_id, users[0].email, last_activity)
        return users

    async def subscriptions(
        self,
        customer_id: int,
        scenario: str,
        region: Region,
        created_at: datetime,
        wholesale: bool,
        number: int,
        admins: dict[AdminRole, int],
        created_by: int | None,
    ) -> set[LicenseType]:
        rng = self.rng
        today = self.today
        bundle = (
            MESSAGING_ONLY if scenario == "messaging_only"
            else BUNDLES[number % len(BUNDLES)] if number < 3 * len(BUNDLES)
            else BUNDLES[3] if wholesale and rng.random() < 0.5
            else rng.choice(BUNDLES)
        )  # fmt: skip
        types: set[LicenseType] = set()
        age_days = (self.now - created_at).days

        def plan(status: SubscriptionStatus, end_in: int | None, auto_renew: bool,
                 added_days_ago: float, ratio: tuple[float, float]) -> dict:  # fmt: skip
            return {"status": status, "end_in": end_in, "auto_renew": auto_renew,
                    "added": min(added_days_ago, age_days), "ratio": ratio}  # fmt: skip

        normal = (0.55, 0.98)
        plans: list[dict] = []
        trial: tuple[int, int, TrialStatus] | None = None  # (starts days ago, length, status)
        if scenario in ("healthy", "messaging_only"):
            plans.append(plan(SubscriptionStatus.ACTIVE, rng.randint(95, 720),
                              rng.random() < 0.7, rng.uniform(95, 700), normal))  # fmt: skip
            if rng.random() < 0.3:
                trial = (int(min(age_days, 700)), 30, TrialStatus.CONVERTED)
        elif scenario == "expiring":
            plans.append(plan(SubscriptionStatus.ACTIVE, rng.randint(0, 30), False,
                              rng.uniform(200, 700), normal))  # fmt: skip
        elif scenario == "renewing":
            plans.append(plan(SubscriptionStatus.ACTIVE, rng.randint(0, 90), True,
                              rng.uniform(200, 700), normal))  # fmt: skip
        elif scenario == "overage":
            plans.append(plan(SubscriptionStatus.ACTIVE, rng.randint(40, 400),
                              rng.random() < 0.5, rng.uniform(100, 700), (1.03, 1.25)))  # fmt: skip
        elif scenario == "low_assignment":
            plans.append(plan(SubscriptionStatus.ACTIVE, rng.randint(100, 600),
                              rng.random() < 0.5, rng.uniform(45, 400), (0.02, 0.15)))  # fmt: skip
        elif scenario == "pending_setup":
            plans.append(plan(SubscriptionStatus.PENDING_SETUP, rng.randint(300, 400), True,
                              rng.uniform(1, 20), (0.0, 0.05)))  # fmt: skip
        elif scenario == "suspended":
            plans.append(plan(SubscriptionStatus.SUSPENDED, rng.randint(30, 300), False,
                              rng.uniform(100, 600), normal))  # fmt: skip
        elif scenario == "expired":
            plans.append(plan(SubscriptionStatus.EXPIRED, -rng.randint(5, 300), False,
                              rng.uniform(400, 900), normal))  # fmt: skip
            if rng.random() < 0.5:
                trial = (int(min(age_days, 1000)), 60, TrialStatus.EXPIRED)
        elif scenario == "recent":
            plans.append(plan(SubscriptionStatus.ACTIVE, rng.randint(300, 1100),
                              rng.random() < 0.8, rng.uniform(0, 89), (0.2, 0.9)))  # fmt: skip
        elif scenario == "trial":
            length = rng.choice((45, 60, 90))
            trial = (rng.randint(0, length - 31), length, TrialStatus.ACTIVE)
        elif scenario == "trial_ending":
            length = rng.choice((30, 45, 60))
            trial = (length - rng.randint(0, 30), length, TrialStatus.ACTIVE)
        if rng.random() < 0.15 and scenario not in ("expired", "messaging_only", "trial"):
            plans.append(plan(SubscriptionStatus.ACTIVE, rng.randint(95, 900),
                              rng.random() < 0.7, rng.uniform(95, 900), normal))  # fmt: skip

        for p in plans:
            start = (self.now - timedelta(days=p["added"])).date()
            end = today + timedelta(days=p["end_in"]) if p["end_in"] is not None else None
            added_at = self.now - timedelta(days=p["added"])
            sub_id = await self.row(
                "subscription", customer_id, f"Sub-{10**8 + self.ids.peek('subscription')}",
                SubscriptionKind.SUBSCRIPTION.value, p["status"].value, start, end,
                p["auto_renew"], added_at, None,
            )  # fmt: skip
            lines = await self.license_lines(sub_id, bundle, p["ratio"], added_at)
            types.update(lines)
            await self.billing(sub_id, region, lines, added_at, p["status"])

        if trial is not None:
            started_ago, length, status = trial
            start = today - timedelta(days=started_ago)
            end = start + timedelta(days=length)
            trial_code = f"ET-{10**9 + self.ids.peek('trial')}"  # unique by construction
            ended_at = None
            if status is not TrialStatus.ACTIVE:
                ended_at = datetime.combine(end, datetime.min.time(), UTC)
            starter = created_by or rng.choice(
                (admins[AdminRole.FULL_ADMIN], admins[AdminRole.SALES_FULL_ADMIN])
            )
            trial_id = await self.row(
                "trial", customer_id, trial_code, status.value, start, end, starter,
                datetime.combine(start, datetime.min.time(), UTC), ended_at,
            )  # fmt: skip
            products = sorted({LICENSE_PRODUCT[t] for t in bundle}, key=list(Product).index)
            trial_lines: dict[LicenseType, int] = {}
            for product in products:
                licenses = rng.choice((10, 25, 50, 100, 250))
                await self.row("trial_product", trial_id, product.value, licenses)
                trial_lines[TRIAL_LICENSE_TYPE[product]] = licenses
            sub_status = trial_subscription_status(status)
            added_at = datetime.combine(start, datetime.min.time(), UTC)
            sub_id = await self.row(
                "subscription", customer_id, trial_code, SubscriptionKind.TRIAL.value,
                sub_status.value, start, end, False, added_at, trial_id,
            )  # fmt: skip
            for license_type, quantity in trial_lines.items():
                assigned = int(quantity * rng.uniform(0.1, 0.8))
                await self.line(sub_id, license_type, quantity, assigned, added_at)
                types.add(license_type)
        return types

    async def license_lines(
        self,
        sub_id: int,
        bundle: tuple[LicenseType, ...],
        ratio: tuple[float, float],
        added_at: datetime,
    ) -> list[LicenseType]:
        rng = self.rng
        for n, license_type in enumerate(bundle):
            band = rng.random()
            quantity = (
                rng.randint(1, 50) if band < 0.45
                else rng.randint(51, 250) if band < 0.75
                else rng.randint(251, 1000) if band < 0.93
                else rng.randint(1001, 5000)
            )  # fmt: skip
            if ratio[0] > 1 and n > 0:  # overage on the first line only
                low, high = (0.55, 0.98)
            else:
                low, high = ratio
            assigned = round(quantity * rng.uniform(low, high))
            if ratio[0] > 1 and n == 0:
                assigned = max(assigned, quantity + 1)
            await self.line(sub_id, license_type, quantity, assigned, added_at)
        return list(bundle)

    async def line(
        self,
        sub_id: int,
        license_type: LicenseType,
        quantity: int,
        assigned: int,
        added_at: datetime,
    ) -> None:
        rng = self.rng
        used = round(assigned * rng.uniform(0.3, 0.95))
        await self.row(
            "license_line", sub_id, license_type.value, LICENSE_PRODUCT[license_type].value,
            quantity, assigned, used,
        )  # fmt: skip
        # 12 weekly snapshots, newest = the line as it is now, older ones lower.
        for weeks_ago in range(12):
            week = self.week_start - timedelta(weeks=weeks_ago)
            if week < added_at.date() - timedelta(days=6):
                break
            shrink = 1 - weeks_ago * rng.uniform(0.0, 0.03)
            week_assigned = max(0, round(assigned * shrink))
            week_used = min(week_assigned, round(used * shrink * rng.uniform(0.9, 1.05)))
            used_90d = min(week_assigned, round(week_used * rng.uniform(1.05, 1.4)))
            await self.row(
                "license_snapshot", sub_id, license_type.value, week, quantity, week_assigned,
                week_used, max(used_90d, week_used),
            )  # fmt: skip

    async def billing(
        self,
        sub_id: int,
        region: Region,
        lines: list[LicenseType],
        added_at: datetime,
        status: SubscriptionStatus,
    ) -> None:
        rng = self.rng
        monthly = sum(UNIT_PRICE[t] * rng.randint(5, 200) for t in lines)
        invoices = rng.randint(1, 3)
        for n in range(invoices):
            issued = (added_at + timedelta(days=30 * n)).date()
            if issued > self.today:
                break
            paid = not (status is SubscriptionStatus.SUSPENDED and n == invoices - 1)
            await self.row(
                "invoice", sub_id, f"INV-{sub_id:07d}-{n + 1}", issued,
                monthly.quantize(Decimal("0.01")),
                CURRENCY[region], paid,
            )  # fmt: skip
        later = rng.sample([OrderAction.MODIFY, OrderAction.RENEW], rng.randint(0, 2))
        actions = [OrderAction.NEW, *later]
        if status is SubscriptionStatus.EXPIRED:
            actions.append(OrderAction.CANCEL)
        for n, action in enumerate(actions):
            placed = added_at + timedelta(days=45 * n)
            await self.row(
                "purchase_order", sub_id, f"ORD-{sub_id:07d}-{n + 1}", min(placed, self.now),
                action.value, f"{action.value.title()} order for {len(lines)} license type(s)",
            )  # fmt: skip

    # ------------------------------------------------------ usage and calls ----

    async def call_legs(
        self, customer_id: int, users: list[_User], locations: list[int], has_queue: bool
    ) -> None:
        rng = self.rng
        features = (
            FEATURES
            if has_queue
            else tuple(f for f in FEATURES if f[0] is not CallFeature.CALL_QUEUE)
        )
        for weeks_ago in range(1, 11):  # the 10 completed weeks before this one
            monday = datetime.combine(
                self.week_start - timedelta(weeks=weeks_ago), datetime.min.time(), UTC
            )
            for _ in range(rng.randint(2, 14)):
                call_id = f"c{customer_id}-{rng.getrandbits(40):010x}"
                started = monday + timedelta(seconds=rng.randrange(7 * 86400))
                feature = _weighted(rng, features)
                call_type = _weighted(rng, CALL_TYPES)
                for leg in range(rng.choice((1, 1, 2))):
                    user = rng.choice(users)
                    endpoint = _weighted(rng, ENDPOINTS)
                    ipv6 = rng.random() < 0.05
                    measured = (
                        endpoint not in (EndpointType.ANALOG, EndpointType.THIRD_PARTY) and not ipv6
                    )
                    poor = rng.random() < 0.08
                    jitter = rng.uniform(151, 400) if poor else rng.uniform(1, 60)
                    duration = rng.randint(10, 1800)
                    video = (
                        endpoint in (EndpointType.APP, EndpointType.ROOM_DEVICE)
                        and rng.random() < 0.2
                    )
                    outcome = wait = None
                    if feature is CallFeature.CALL_QUEUE:
                        outcome = _weighted(rng, QUEUE_OUTCOMES)
                        wait = rng.randint(3, 300)
                    await self.row(
                        "call_leg", customer_id, rng.choice(locations), f"{call_id}-{leg}", call_id,
                        user.uuid, started + timedelta(seconds=leg), duration,
                        rng.randint(0, duration) if video else 0, True, video, endpoint.value,  # type: ignore[union-attr]
                        6 if ipv6 else 4,
                        jitter if measured else None,  # no metrics: analog, third party, IPv6
                        rng.uniform(20, 380) if measured else None,
                        (rng.uniform(0, 8) if poor else rng.uniform(0, 2)) if measured else None,
                        call_type.value, feature.value,  # type: ignore[union-attr]
                        outcome.value if outcome else None, wait,  # type: ignore[union-attr]
                    )  # fmt: skip

    async def inventory(
        self, customer_id: int, users: list[_User], locations: list[int], prefix: str
    ) -> None:
        rng = self.rng
        for n in range(rng.randint(1, 6)):
            user = rng.choice(users) if rng.random() < 0.8 else None
            number = f"{prefix}{rng.randrange(10**6, 10**7)}" if rng.random() < 0.7 else None
            await self.row(
                "device", customer_id, rng.choice(locations), _uuid(rng), rng.choice(DEVICE_MODELS),
                f"{rng.getrandbits(48):012X}", f"sip{rng.randint(11, 14)}-{rng.randint(0, 9)}",
                number, f"{1000 + n}", user.email if user else None, user.uuid if user else None,
            )  # fmt: skip
        first_number = rng.randrange(10**6, 10**7 - 10)  # consecutive: unique per customer
        for n in range(rng.randint(2, 8)):
            location = rng.choice(locations)
            user = rng.choice(users) if rng.random() < 0.7 else None
            is_extension = rng.random() < 0.3
            number = None if is_extension else f"{prefix}{first_number + n}"
            extension = f"{2000 + n}" if is_extension else None
            user_type = "People" if user else rng.choice(("Auto Attendant", "Virtual Line", None))
            await self.row(
                "phone_number", customer_id, location,
                f"ext:{location}:{extension}" if is_extension else number, number, extension,
                None if is_extension else rng.choice(PSTN), rng.random() < 0.9, user_type,
                None if is_extension or user_type is None else rng.choice(NUMBER_TYPES),
                user.email if user else None, user.uuid if user else None,
            )  # fmt: skip

    async def app_sessions(self, customer_id: int, users: list[_User]) -> None:
        rng = self.rng
        for user in users:
            platform, os_version = rng.choice(APP_PLATFORMS)
            days = sorted(rng.sample(range(90), rng.randint(1, 2)))
            for day in days:
                await self.row(
                    "app_session", customer_id, user.uuid,
                    "Webex App (VDI)" if rng.random() < 0.05 else "Webex App", platform,
                    rng.choice(APP_VERSIONS), os_version, self.today - timedelta(days=day),
                )  # fmt: skip

    async def daily_usage(self, customer_id: int, license_types: set[LicenseType]) -> None:
        rng = self.rng
        products = {LICENSE_PRODUCT[t] for t in license_types}
        meets, calls = Product.MEETINGS in products, Product.CALLING in products
        scale = rng.randint(5, 120)
        for day in range(1, 36):
            await self.row(
                "daily_org_usage", customer_id, self.today - timedelta(days=day),
                rng.randint(0, scale) if meets else 0, rng.randint(0, scale * 6) if calls else 0,
                rng.randint(0, scale * 20),
            )  # fmt: skip


@dataclass(frozen=True)
class DemoSummary:
    seed: int
    customers: int
    rows: dict[str, int]


async def database_is_empty() -> bool:
    return not await PartnerOrganization.exists()


async def loaded_demo() -> DemoDataset | None:
    return await DemoDataset.first()


async def load_demo(
    customers: int,
    seed: int,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Load `customers` customers (split between the two partners) into an empty
    database, in one transaction. `progress(n)` is called as customers are written."""
    await ensure_demo_can_load(customers)
    now = now or datetime.now(UTC)
    per_partner = [customers // len(PARTNERS)] * len(PARTNERS)
    per_partner[0] += customers - sum(per_partner)
    await ensure_partitions_between(now - timedelta(weeks=11), now, now=now)  # the legs' weeks
    async with in_transaction() as conn:
        writer = BulkWriter(conn)
        builder = DemoBuilder(writer, seed, now)
        await ensure_reference_resources()  # stored by migrate; an older install gains them
        team: list[dict[AdminRole, int]] = []
        first_customer: list[int] = []
        for index, spec in enumerate(PARTNERS):
            partner_id, admins, tag_ids = await builder.partner(index, spec)
            team.append(admins)
            first_customer.append(builder.ids.peek("customer"))
            for number in range(per_partner[index]):
                await builder.customer(partner_id, number, admins, tag_ids)
                if progress is not None and number % 50 == 49:
                    progress(50)
            if progress is not None:
                progress(per_partner[index] % 50)
        for owner, number, grantee, role, days_ago in EXTERNAL_ADMIN_GRANTS:
            await builder.row(
                "external_admin_grant", first_customer[owner] + number, team[grantee][role],
                team[owner][AdminRole.FULL_ADMIN], builder.at(days_ago),
            )  # fmt: skip
        await builder.row("demo_dataset", seed, per_partner[0], now)
        await writer.flush()
        await writer.reset_sequences()
        # The customers' kept list columns, from the rows just written (one
        # statement). The planner first learns the tables' sizes: freshly
        # COPYed rows have no statistics, and without them it may read every
        # subscription once per customer.
        if is_postgres(conn):
            await conn.execute_script("ANALYZE customer, subscription, license_line, trial")
        # The attention feed starts with the load: each customer's states are
        # announced as entered now (a state of "none yet" would record them
        # silently and leave the feed empty).
        await execute("UPDATE customer SET attention_flags = 0")
        await refresh_all_customer_columns(now.date())
    # The weekly calling figures of the ten weeks of call legs, as the Sunday job
    # would, and the last week's call quality declines it would announce.
    for weeks_ago in range(10, 0, -1):
        week = builder.week_start - timedelta(weeks=weeks_ago)
        await rollup_week(week, now=now, announce=weeks_ago == 1)
    return DemoSummary(seed=seed, customers=customers, rows=dict(writer.written))


async def ensure_demo_can_load(customers: int) -> None:
    """Raise DemoError unless `customers` demo customers can load into this database."""
    if customers < len(SCENARIOS) * len(PARTNERS):
        raise DemoError(
            f"--customers must be at least {len(SCENARIOS) * len(PARTNERS)} "
            "so that every status appears for both partners"
        )
    if not await database_is_empty():
        count = await PartnerOrganization.all().count()
        raise DemoError(
            f"the database already holds data ({count} partner organization(s)): demo data loads "
            "only into an empty database. Point DATABASE_URL at a new database, or pass "
            "--if-empty to keep what is there."
        )
