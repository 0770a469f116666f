"""Lists of ids as one array parameter (app/domain/sql.one_of), and the scope of a
viewer signed in with a token: other partners' customers only for an admin that
holds an external-admin grant."""

from __future__ import annotations

import uuid

import pytest

from app.auth import viewer_for_token
from app.db import fetch_all
from app.domain.access import customer_scope
from app.domain.sql import one_of
from app.models.admins import ExternalAdminGrant
from app.models.customers import Customer
from app.models.enums import AdminRole
from tests import factories
from tests.factories import NOW


async def _names(condition_column: str, values: list, element_type: str = "INTEGER") -> set[str]:
    where = one_of(condition_column, values, element_type)
    rows = await fetch_all(f"SELECT c.name FROM customer c WHERE {where.text}", list(where.params))
    return {r["name"] for r in rows}


async def test_one_of_matches_exactly_the_listed_ids_whatever_their_number(db: None) -> None:
    org = await factories.partner("Acme", "acme.example")
    customers = [await factories.customer(org, name=f"Customer {n:03}") for n in range(30)]
    chosen = customers[3:17:2]
    assert await _names("c.id", [c.id for c in chosen]) == {c.name for c in chosen}
    # Ids that do not exist, many of them, and duplicates: still exactly the chosen.
    noise = list(range(10**6, 10**6 + 20_000))
    ids = [c.id for c in chosen] * 2 + noise
    assert await _names("c.id", ids) == {c.name for c in chosen}
    assert await _names("c.id", []) == set()


async def test_one_of_takes_uuids_and_text(db: None) -> None:
    org = await factories.partner("Acme", "acme.example")
    first, second, _ = [await factories.customer(org, name=n) for n in ("Alpha", "Beta", "Gamma")]
    orgs = [first.org_id, second.org_id, uuid.uuid4()]
    assert await _names("c.org_id", orgs, "UUID") == {"Alpha", "Beta"}
    assert await _names("c.name", ["Gamma", "Delta", "it's"], "TEXT") == {"Gamma"}


def test_one_of_refuses_an_unknown_element_type() -> None:
    with pytest.raises(ValueError, match="element type"):
        one_of("c.id", [1], "INTEGER); DROP TABLE customer; --")


async def test_a_token_viewer_reaches_other_partners_only_through_a_grant(db: None) -> None:
    home = await factories.partner("Home", "home.example")
    other = await factories.partner("Other", "other.example")
    own = await factories.customer(home, name="Own customer")
    foreign = await factories.customer(other, name="Foreign customer")
    await factories.customer(other, name="Not granted")
    holder = await factories.admin(home, AdminRole.FULL_ADMIN)
    plain = await factories.admin(home, AdminRole.FULL_ADMIN)
    await ExternalAdminGrant.create(customer=foreign, admin=holder.admin, granted_at=NOW)

    async def seen(token: str) -> set[str]:
        viewer = await viewer_for_token(token)
        assert viewer is not None
        scope = customer_scope(viewer)
        rows = await fetch_all(f"SELECT c.name FROM customer c WHERE {scope.text}", scope.params)
        return {r["name"] for r in rows}

    assert await seen(holder.token) == {own.name, foreign.name}
    assert await seen(plain.token) == {own.name}
    # Revoked: the holder is back to its own partner's customers.
    await ExternalAdminGrant.filter(admin_id=holder.admin.id).delete()
    assert await seen(holder.token) == {own.name}
    assert await Customer.filter(partner_id=other.id).count() == 2


async def test_postgresql_plans_each_statement_for_its_own_values(postgres_db: object) -> None:
    """Prepared statements run with plans made for their values (a generic plan
    chosen after five runs ignored the week range and the scope: 2-5x slower)."""
    rows = await fetch_all("SELECT current_setting('plan_cache_mode') AS mode")
    assert rows[0]["mode"] == "force_custom_plan"
