"""`partnerhub migrate` builds the whole data model on SQLite and PostgreSQL,
and the service refuses an unmigrated database."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from tortoise import Tortoise

from app.config import Settings
from app.db import (
    DatabaseError,
    apply_migrations,
    close_database,
    fetch_all,
    open_database,
    pending_migrations,
)


async def migrate(to: str | None = None) -> None:
    """Apply (or undo) migrations on the open database up to `to`, or all of them."""
    from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

    from app.db import APP_LABEL, connection
    from app.models import MODEL_MODULES

    apps = {APP_LABEL: {"models": MODEL_MODULES, "migrations": "migrations"}}
    await MigrationExecutor(connection(), apps).migrate(
        [MigrationTarget(APP_LABEL, to)] if to else None
    )


async def table_names() -> set[str]:
    from app.db import is_postgres

    if is_postgres():
        rows = await fetch_all(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        )
    else:
        rows = await fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row["name"] for row in rows}


async def test_unmigrated_database_is_refused_with_the_command_to_run(
    fresh_database_url: str,
) -> None:
    settings = Settings(DATABASE_URL=fresh_database_url)
    with pytest.raises(DatabaseError, match="run `partnerhub migrate`"):
        await open_database(settings)


async def test_migrate_creates_every_model_table_and_is_idempotent(
    fresh_database_url: str,
) -> None:
    settings = Settings(DATABASE_URL=fresh_database_url)
    applied = await apply_migrations(settings)
    assert applied, "a fresh database has migrations to apply"
    assert await apply_migrations(settings) == []

    await open_database(settings)
    try:
        expected = {model._meta.db_table for model in Tortoise.apps["models"].values()}
        assert expected <= await table_names()
        assert await pending_migrations() == []
    finally:
        await close_database()


async def test_the_migrations_match_the_models(fresh_database_url: str) -> None:
    """`tortoise makemigrations` would write nothing: the state the migrations
    build (0009's hand-written call_leg changes included) is the models'."""
    from tortoise.migrations.autodetector import MigrationAutodetector

    from app.db import APP_LABEL
    from app.models import MODEL_MODULES

    await open_database(Settings(DATABASE_URL=fresh_database_url), check_migrated=False)
    try:
        apps = {APP_LABEL: {"models": MODEL_MODULES, "migrations": "migrations"}}
        writers = await MigrationAutodetector(Tortoise.apps, apps).changes()
        assert [(w.name, [op.describe() for op in w.operations]) for w in writers] == []
    finally:
        await close_database()


async def _customer_before_0011(partner_id: int, name: str) -> Any:
    """A customer row written with the columns it had before migration 0011 (the
    model has more now), as a model instance that only carries its id."""
    from datetime import UTC, datetime

    from app.db import execute
    from app.models.customers import Customer

    await execute(
        "INSERT INTO customer (partner_id, name, org_id, region, created_at) VALUES (?, ?, ?, ?, ?)",
        [partner_id, name, uuid.uuid4(), "US", datetime(2026, 1, 1, tzinfo=UTC)],
    )
    rows = await fetch_all("SELECT id FROM customer WHERE name = ?", [name])
    customer = Customer(id=rows[0]["id"], partner_id=partner_id, name=name)
    customer._saved_in_db = True
    return customer


async def test_partitioning_call_legs_keeps_every_leg(fresh_database_url: str, engine: str) -> None:
    """Migration 0009 on a database that has legs: every row kept as it was, the
    id sequence goes on, the keys are the new ones, and on PostgreSQL each leg is
    in its week's partition."""
    from datetime import UTC, datetime, timedelta

    from tortoise.exceptions import IntegrityError

    from app.models.calling import CallLeg
    from app.models.customers import Customer, Location
    from app.models.enums import CallType, EndpointType
    from tests import factories

    settings = Settings(DATABASE_URL=fresh_database_url)
    await open_database(settings, check_migrated=False)
    try:
        await migrate("0008_report_emails")
        assert (await pending_migrations())[0] == "0009_call_leg_partitions"
        org = await factories.partner("Northwind Partners", "northwind.example")
        acme, bolt = (
            await _customer_before_0011(org.id, "Acme"),
            await _customer_before_0011(org.id, "Bolt"),
        )
        hq = await Location.create(customer=acme, uuid=uuid.uuid4(), name="HQ", country="US")
        monday = datetime(2026, 10, 5, tzinfo=UTC)
        legs = [
            CallLeg(
                customer=customer,
                location=hq if customer is acme and n % 2 else None,
                leg_id=f"leg-{n}",
                call_id=f"call-{n // 2}",
                started_at=monday + n * timedelta(hours=31, minutes=7, microseconds=3),
                duration_seconds=60 + n,
                video_seconds=n % 7,
                has_video=n % 7 > 0,
                endpoint_type=EndpointType.APP,
                ip_version=6 if n % 5 == 0 else 4,
                jitter_ms=None if n % 3 == 0 else 1.5 * n,
                latency_ms=20.25,
                packet_loss_pct=0.5,
                call_type=CallType.NATIONAL,
            )
            for n in range(40)  # over three weeks
            for customer in (acme, bolt)
        ]
        await CallLeg.bulk_create(legs)
        last = await CallLeg.create(
            customer=bolt, leg_id="deleted-later", call_id="x", started_at=monday,
            duration_seconds=1, endpoint_type=EndpointType.APP, call_type=CallType.NATIONAL,
        )  # fmt: skip
        await last.delete()  # its id is not handed out again
        before = await fetch_all("SELECT * FROM call_leg ORDER BY id")
        assert len(before) == 80

        await migrate()

        assert await pending_migrations() == []
        assert await fetch_all("SELECT * FROM call_leg ORDER BY id") == before
        again = await CallLeg.create(
            customer=acme, leg_id="leg-1", call_id="y", started_at=monday + timedelta(weeks=5),
            duration_seconds=1, endpoint_type=EndpointType.APP, call_type=CallType.NATIONAL,
        )  # fmt: skip
        assert again.id > last.id  # same natural key but another start: another leg
        with pytest.raises(IntegrityError):
            await CallLeg.create(
                customer=acme, leg_id="leg-1", call_id="z", started_at=monday + timedelta(weeks=5),
                duration_seconds=1, endpoint_type=EndpointType.APP, call_type=CallType.NATIONAL,
            )  # fmt: skip
        if engine == "postgres":
            rows = await fetch_all(
                "SELECT started_at, tableoid::regclass::text AS part FROM call_leg"
            )
            for row in rows:
                day = row["started_at"].astimezone(UTC).date()
                week = day - timedelta(days=day.weekday())
                assert row["part"] == f"call_leg_w{week:%Y%m%d}"
        # The foreign keys hold: a location's legs lose it, a customer's legs go with it.
        await hq.delete()
        assert await CallLeg.filter(location_id__isnull=False).count() == 0
        await Customer.filter(id=acme.id).delete()
        assert await CallLeg.filter(customer_id=acme.id).count() == 0
        assert await CallLeg.all().count() == 40
    finally:
        await close_database()


async def test_kept_customer_columns_are_filled_in_for_existing_customers(
    fresh_database_url: str, engine: str
) -> None:
    """Migration 0011 on a database that has customers with subscriptions, lines
    and trials: every kept column as the rows give it, and the list's indexes."""
    from datetime import UTC, datetime, timedelta

    from app.models.subscriptions import LicenseLine, Subscription
    from app.models.trials import Trial
    from tests import factories
    from tests.kept_columns import assert_kept_columns_exact

    settings = Settings(DATABASE_URL=fresh_database_url)
    await open_database(settings, check_migrated=False)
    try:
        await migrate("0010_customer_name_order")
        assert (await pending_migrations())[0] == "0011_customer_kept_columns"
        org = await factories.partner("Northwind Partners", "northwind.example")
        today = datetime.now(UTC).date()
        day = timedelta(days=1)
        plan = {
            "Acme": [("SUBSCRIPTION", "ACTIVE", 10, False, 5, 7), ("SUBSCRIPTION", "ACTIVE", 3, True, 2, 0)],
            "Bolt": [("SUBSCRIPTION", "SUSPENDED", 40, False, 9, 1), ("TRIAL", "ACTIVE", 6, False, 4, 0)],
            "Cora": [("SUBSCRIPTION", "EXPIRED", -2, False, 3, 9)],
            "Dune": [("SUBSCRIPTION", "PENDING_SETUP", 100, False, 1, 0)],
            "Echo": [],
        }  # fmt: skip
        for name, subs in plan.items():
            customer = await _customer_before_0011(org.id, name)
            for n, (kind, status, ends, renew, quantity, assigned) in enumerate(subs):
                trial = None
                if kind == "TRIAL":
                    trial = await Trial.create(
                        customer_id=customer.id, trial_id=f"ET-{name}", status=status,
                        start_date=today - 9 * day, end_date=today + ends * day,
                    )  # fmt: skip
                sub = await Subscription.create(
                    customer_id=customer.id, subscription_id=f"Sub-{name}-{n}", kind=kind,
                    status=status, start_date=today - 90 * day, end_date=today + ends * day,
                    auto_renew=renew, added_at=datetime.now(UTC), trial=trial,
                )  # fmt: skip
                await LicenseLine.create(
                    subscription=sub, license_type="MEETINGS", product="MEETINGS",
                    quantity=quantity, assigned=assigned,
                )  # fmt: skip

        await migrate()

        assert await pending_migrations() == []
        assert await assert_kept_columns_exact(today) == 5
        if engine == "postgres":
            rows = await fetch_all("SELECT indexname FROM pg_indexes WHERE tablename = 'customer'")
        else:
            rows = await fetch_all(
                "SELECT name AS indexname FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = 'customer'"
            )
        names = {r["indexname"] for r in rows}
        assert {
            "customer_partner_next_end_asc",
            "customer_partner_next_end_desc",
            "customer_partner_total_licenses",
            "customer_partner_expiring",
            "customer_name_overage",
            "customer_name_expired",
        } <= names
    finally:
        await close_database()


async def test_audit_targets_become_domain_references_and_read_the_same(
    fresh_database_url: str, engine: str, redis_url: str
) -> None:
    """Migration 0012 on a trail written with global ids (more rows than one batch):
    each becomes "Kind:key", NULLs stay, a value that is no global id of ours is
    left as it was; `auditLog` answers every targetId as before, and going back
    restores the global ids."""
    from datetime import UTC, datetime, timedelta

    from app.domain.ids import encode_global_id
    from app.models.audit import AuditEvent
    from app.models.enums import AdminRole
    from tests import factories
    from tests.graphql_client import app_client, data

    settings = Settings(DATABASE_URL=fresh_database_url)
    await open_database(settings, check_migrated=False)
    try:
        await migrate("0011_customer_kept_columns")
        assert (await pending_migrations())[0] == "0012_audit_target_ref"
        org = await factories.partner("Northwind Partners", "northwind.example")
        full = await factories.admin(org, AdminRole.FULL_ADMIN)
        kinds = ("Admin", "Tag", "Customer", "ReportSchedule", "PartnerOrganization")
        # Not global ids of ours: left as they are (and read as no target).
        odd = {5: "legacy-note", 9: "QWRtaW46NQ=", 13: encode_global_id("Admin", 5) + "x"}
        old: list[str | None] = []
        for n in range(2100):
            if n in odd:
                old.append(odd[n])
            elif n % 7 == 3:
                old.append(None)
            else:
                key = full.admin.id if n % 5 == 0 else 2**31 - 1 - n if n % 11 == 0 else n + 1
                old.append(encode_global_id(kinds[n % 5], key))
        start = datetime(2026, 11, 1, tzinfo=UTC)
        await AuditEvent.bulk_create(
            [
                AuditEvent(
                    partner_id=org.id,
                    at=start + timedelta(minutes=n),
                    actor_id=full.admin.id,
                    action="tag.create",
                    target_id=target,
                    summary=f"event {n}",
                )
                for n, target in enumerate(old)
            ]
        )

        await migrate()

        assert await pending_migrations() == []
        rows = await fetch_all("SELECT target_id FROM audit_event ORDER BY id")
        stored = [row["target_id"] for row in rows]
        expected: list[str | None] = []
        for n, target in enumerate(old):
            if target is None or n in odd:
                expected.append(target)
            else:
                text = base64.urlsafe_b64decode(target + "=" * (-len(target) % 4)).decode()
                expected.append(text)
        assert stored == expected
        assert stored[0] == f"Admin:{full.admin.id}" and stored[1] == "Tag:2"
        assert stored[3] is None

        # The API answers what it answered before the migration.
        query = """query($after: String) { auditLog(first: 100, after: $after) {
          pageInfo { hasNextPage endCursor } nodes { targetId summary } } }"""
        seen: dict[str, str | None] = {}
        after = None
        async with app_client(settings, redis_url) as http:
            while True:
                page = (await data(http, full.token, query, {"after": after}))["auditLog"]
                seen.update({node["summary"]: node["targetId"] for node in page["nodes"]})
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(old)
        assert seen == {f"event {n}": None if n in odd else target for n, target in enumerate(old)}

        # Going back writes the global ids again.
        await migrate("0011_customer_kept_columns")
        rows = await fetch_all("SELECT target_id FROM audit_event ORDER BY id")
        assert [row["target_id"] for row in rows] == old
    finally:
        await close_database()


async def test_the_expired_status_index_covers_the_trial_end_date_on_postgresql(
    fresh_database_url: str, engine: str
) -> None:
    """Migration 0013: on PostgreSQL the EXPIRED filter's partial index carries
    trial_end_date, so its count needs no row (the planner used a scan of every
    customer without it); SQLite keeps the plain index; going back restores it."""

    from app.db import is_postgres

    async def definition() -> str:
        if is_postgres():
            rows = await fetch_all(
                "SELECT indexdef AS sql FROM pg_indexes WHERE indexname = 'customer_name_expired'"
            )
        else:
            rows = await fetch_all(
                "SELECT sql FROM sqlite_master WHERE name = 'customer_name_expired'"
            )
        assert len(rows) == 1
        return " ".join(rows[0]["sql"].split())

    settings = Settings(DATABASE_URL=fresh_database_url)
    await apply_migrations(settings)
    await open_database(settings, check_migrated=False)
    try:
        now = await definition()
        assert "WHERE" in now and "holds_licenses" in now
        assert ("INCLUDE (trial_end_date)" in now) == (engine == "postgres")
        await migrate("0012_audit_target_ref")
        assert "INCLUDE" not in await definition()
    finally:
        await close_database()
    await apply_migrations(settings)
    await open_database(settings)
    try:
        assert (await definition()) == now
    finally:
        await close_database()
