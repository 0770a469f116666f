"""Demo data: both partners with one admin per role, every status of SPEC.md,
every product and license type, the history tables; deterministic, refused on
a non-empty database, and all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tortoise import Tortoise

from app.auth import viewer_for_token
from app.config import Settings
from app.db import fetch_all
from app.demo import DemoBuilder, DemoError, demo_admins, load_demo
from app.domain.resources import REFERENCE_RESOURCES
from app.models.enums import AdminRole, LicenseType, Product
from app.models.organization import PartnerOrganization
from tests.graphql_client import data

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TODAY = NOW.date()

# SPEC.md's status definitions, written independently of the product's code:
# each counts the customers of a partner that carry the status.
SUBSCRIPTION = "s.kind = 'SUBSCRIPTION'"
HOLDING = "('ACTIVE', 'SUSPENDED', 'PENDING_SETUP')"
ONGOING_TRIAL = (
    "EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id"
    " AND t.status = 'ACTIVE' AND t.end_date >= ?)"
)


def has_subscription(condition: str) -> str:
    return f"EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id AND {condition})"


STATUS_SQL = {
    "TRIAL": ONGOING_TRIAL,
    "ACTIVE": has_subscription(f"{SUBSCRIPTION} AND s.status = 'ACTIVE'"),
    "EXPIRING_SOON": has_subscription(
        "s.status = 'ACTIVE' AND (s.kind = 'TRIAL' OR s.auto_renew = ?)"
        " AND s.end_date >= ? AND s.end_date <= ?"
    ),
    "LICENSE_OVERAGE": has_subscription(
        f"s.status IN {HOLDING} AND EXISTS (SELECT 1 FROM license_line l"
        " WHERE l.subscription_id = s.id AND l.assigned > l.quantity)"
    ),
    "NO_RECENT_ACTIVITY": "(c.last_admin_activity_at IS NULL OR c.last_admin_activity_at < ?)",
    "READY_FOR_ORDER_SETUP": has_subscription(f"{SUBSCRIPTION} AND s.status = 'PENDING_SETUP'"),
    "SUSPENDED": has_subscription(f"{SUBSCRIPTION} AND s.status = 'SUSPENDED'"),
    "EXPIRED": f"NOT {has_subscription(f'{SUBSCRIPTION} AND s.status IN {HOLDING}')}"
    f" AND NOT {ONGOING_TRIAL}",
}
STATUS_PARAMS = {
    "TRIAL": [TODAY],
    "EXPIRING_SOON": [False, TODAY, TODAY + timedelta(days=30)],
    "NO_RECENT_ACTIVITY": [NOW - timedelta(days=30)],
    "EXPIRED": [TODAY],
}


async def customers_with_status(partner_id: int, status: str) -> int:
    rows = await fetch_all(
        f"SELECT COUNT(*) AS n FROM customer c WHERE c.partner_id = ? AND {STATUS_SQL[status]}",
        [partner_id, *STATUS_PARAMS.get(status, [])],
    )
    return int(rows[0]["n"])


async def count(sql: str, params: list | None = None) -> int:
    return int((await fetch_all(sql, params or []))[0]["n"])


async def table_counts() -> dict[str, int]:
    tables = sorted(m._meta.db_table for m in Tortoise.apps["models"].values())
    return {t: await count(f'SELECT COUNT(*) AS n FROM "{t}"') for t in tables}


async def test_demo_covers_both_partners_every_role_status_product_and_history(
    db: Settings,
) -> None:
    summary = await load_demo(40, seed=7, now=NOW)
    assert summary.customers == 40

    partners = {p.domain: p for p in await PartnerOrganization.all()}
    assert set(partners) == {"northwind.example", "contoso.example"}
    assert partners["northwind.example"].name == "Northwind Partners"
    assert partners["northwind.example"].setup_completed
    assert not partners["contoso.example"].setup_completed
    assert await count("SELECT COUNT(*) AS n FROM customer") == 40

    for domain, org in partners.items():
        emails = {
            r["email"]: r["role"]
            for r in await fetch_all("SELECT email, role FROM admin WHERE partner_id = ?", [org.id])
        }
        assert emails == {
            f"full@{domain}": "FULL_ADMIN",
            f"admin@{domain}": "ADMIN",
            f"readonly@{domain}": "READ_ONLY_ADMIN",
            f"salesfull@{domain}": "SALES_FULL_ADMIN",
            f"sales@{domain}": "SALES_ADMIN",
        }
        for status in STATUS_SQL:
            assert await customers_with_status(org.id, status) > 0, (domain, status)
        regions = {
            r["region"]
            for r in await fetch_all(
                "SELECT DISTINCT region FROM customer WHERE partner_id = ?", [org.id]
            )
        }
        assert regions == {"US", "CA", "EU", "UAE"}

    license_types = {
        r["license_type"] for r in await fetch_all("SELECT DISTINCT license_type FROM license_line")
    }
    assert license_types == {t.value for t in LicenseType}
    products = {r["product"] for r in await fetch_all("SELECT DISTINCT product FROM license_line")}
    assert products == {p.value for p in Product}
    assert await count("SELECT COUNT(DISTINCT week_start) AS n FROM license_snapshot") == 12
    weeks = await fetch_all(
        "SELECT MIN(started_at) AS first, MAX(started_at) AS last FROM call_leg"
    )
    first, last = (datetime.fromisoformat(str(weeks[0][k])) for k in ("first", "last"))
    assert timedelta(weeks=9) < last - first <= timedelta(weeks=10)
    assert last < NOW  # legs only in completed weeks
    for table in (
        "invoice",
        "purchase_order",
        "trial_product",
        "device",
        "phone_number",
        "app_session",
        "daily_org_usage",
        "customer_user",
        "location",
        "customer_tag",
        "customer_assignment",
        "resource",
        "tag",
    ):
        assert await count(f'SELECT COUNT(*) AS n FROM "{table}"') > 0, table
    trial_ids = await fetch_all("SELECT trial_id FROM trial")
    assert trial_ids and all(r["trial_id"].startswith("ET-") for r in trial_ids)
    # Every trial shows among the subscriptions, with kind TRIAL and the same id.
    assert await count(
        "SELECT COUNT(*) AS n FROM trial t JOIN subscription s ON s.trial_id = t.id"
        " AND s.kind = 'TRIAL' AND s.subscription_id = t.trial_id"
    ) == len(trial_ids)


async def test_both_demo_partners_have_one_own_subscription_in_their_plan_overview(
    client: httpx.AsyncClient, db: Settings
) -> None:
    """The setup wizard's plan overview (`organization.subscriptions`) shows each
    demo partner one subscription of its own, with license lines; no customer
    subscription carries its id."""
    await load_demo(24, seed=3, now=NOW)
    query = """{ organization { name setupCompleted subscriptions { subscriptionId status
      licenses { licenseType quantity assigned } totals { total } } } }"""
    seen = {}
    for admin in demo_admins(3):
        org = (await data(client, admin.token, query))["organization"]
        [own] = org["subscriptions"]
        assert own["status"] == "ACTIVE" and len(own["licenses"]) >= 2
        assert own["totals"]["total"] == sum(line["quantity"] for line in own["licenses"])
        seen[org["name"]] = own["subscriptionId"]
    assert set(seen) == {"Northwind Partners", "Contoso Partners"}
    assert len(set(seen.values())) == 2
    assert not await count(
        "SELECT COUNT(*) AS n FROM subscription WHERE subscription_id LIKE 'Sub-OWN-%'"
    )


async def test_demo_tokens_sign_in_as_their_admins(db: Settings) -> None:
    await load_demo(24, seed=3, now=NOW)
    admins = demo_admins(3)
    assert len(admins) == 10
    for admin in admins:
        viewer = await viewer_for_token(admin.token)
        assert viewer is not None
        assert viewer.admin.email == admin.email
        assert viewer.role is admin.role
        assert viewer.partner.name == admin.partner
    assert await viewer_for_token(demo_admins(4)[0].token) is None  # another seed's token
    assert {a.role for a in admins} == set(AdminRole)


async def test_same_seed_gives_the_same_data(db: Settings) -> None:
    from tests.conftest import empty_all_tables

    await load_demo(24, seed=11, now=NOW)
    first = await fetch_all("SELECT name, org_id, region FROM customer ORDER BY id")
    first_counts = await table_counts()
    await empty_all_tables()
    await load_demo(24, seed=11, now=NOW)
    assert await fetch_all("SELECT name, org_id, region FROM customer ORDER BY id") == first
    assert await table_counts() == first_counts
    await empty_all_tables()
    await load_demo(24, seed=12, now=NOW)
    assert await fetch_all("SELECT name, org_id, region FROM customer ORDER BY id") != first


async def test_demo_refuses_a_database_that_holds_data_and_changes_nothing(db: Settings) -> None:
    await load_demo(24, seed=1, now=NOW)
    before = await table_counts()
    with pytest.raises(DemoError, match="already holds data"):
        await load_demo(24, seed=2, now=NOW)
    assert await table_counts() == before


async def test_a_load_that_fails_midway_leaves_the_database_empty(
    db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small chunks, so rows reach the database before the failure; the
    transaction then takes every one of them back."""
    import app.bulk

    monkeypatch.setattr(app.bulk, "DEFAULT_CHUNK_ROWS", 200)
    written_before_failure = 0
    calls = 0
    original = DemoBuilder.daily_usage

    async def failing(self: DemoBuilder, *args: object) -> None:
        nonlocal calls, written_before_failure
        calls += 1
        if calls == 15:
            written_before_failure = sum(self.w.written.values())
            raise RuntimeError("disk full")
        await original(self, *args)

    monkeypatch.setattr(DemoBuilder, "daily_usage", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        await load_demo(24, seed=1, now=NOW)
    assert written_before_failure > 1000
    counts = await table_counts()
    assert counts.pop("report_template") == 6  # the DEFAULT templates, stored by migrate
    assert counts.pop("resource") == len(REFERENCE_RESOURCES)  # stored by migrate too
    assert set(counts.values()) == {0}


async def test_too_few_customers_to_show_every_status_is_refused(db: Settings) -> None:
    with pytest.raises(DemoError, match="at least 24"):
        await load_demo(10, seed=1, now=NOW)
