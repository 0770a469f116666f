"""The Account page and the first-time setup wizard."""

from __future__ import annotations

import httpx

from app.models.audit import AuditEvent
from app.models.enums import AdminRole
from app.models.organization import PartnerOrganization
from tests import factories
from tests.graphql_client import data

SETUP = """mutation($input: CompleteSetupInput!) { completeOrganizationSetup(input: $input) {
  organization { name setupCompleted industry plannedUsers termsAcceptedAt }
  userErrors { field message code } } }"""


async def snapshot(org_id: int) -> tuple:
    org = await PartnerOrganization.get(id=org_id)
    return (org.terms_accepted_at, org.industry, org.planned_users, await AuditEvent.all().count())


async def test_a_full_admin_completes_the_setup_once(client: httpx.AsyncClient, db) -> None:
    contoso = await factories.partner("Contoso Partners", "contoso.example", setup_completed=False)
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    team = await factories.team(contoso)
    full = team[AdminRole.FULL_ADMIN]
    before = await data(client, full.token, "{ organization { setupCompleted termsAcceptedAt } }")
    assert before == {"organization": {"setupCompleted": False, "termsAcceptedAt": None}}

    answer = await data(
        client,
        full.token,
        SETUP,
        {"input": {"acceptTerms": True, "industry": " Healthcare ", "plannedUsers": 1200}},
    )
    result = answer["completeOrganizationSetup"]
    assert result["userErrors"] == []
    assert result["organization"]["setupCompleted"] is True
    assert result["organization"]["industry"] == "Healthcare"
    assert result["organization"]["plannedUsers"] == 1200
    assert result["organization"]["termsAcceptedAt"] is not None
    [event] = await AuditEvent.filter(partner_id=contoso.id)
    assert event.action == "organization.setup" and event.actor_id == full.admin.id

    again = await data(client, full.token, SETUP, {"input": {"acceptTerms": True}})
    assert again["completeOrganizationSetup"]["userErrors"] == [
        {
            "field": None,
            "message": "The organization setup is already completed.",
            "code": "CONFLICT",
        }
    ]
    # The other partner is untouched.
    assert (await PartnerOrganization.get(id=northwind.id)).industry is None


async def test_bad_input_is_refused_field_by_field_and_changes_nothing(
    client: httpx.AsyncClient, db
) -> None:
    contoso = await factories.partner("Contoso Partners", "contoso.example", setup_completed=False)
    full = await factories.admin(contoso, AdminRole.FULL_ADMIN)
    before = await snapshot(contoso.id)
    answer = await data(
        client,
        full.token,
        SETUP,
        {"input": {"acceptTerms": False, "industry": "x" * 101, "plannedUsers": 0}},
    )
    result = answer["completeOrganizationSetup"]
    assert result["organization"] is None
    assert {(tuple(e["field"]), e["code"]) for e in result["userErrors"]} == {
        (("input", "acceptTerms"), "INVALID"),
        (("input", "industry"), "INVALID"),
        (("input", "plannedUsers"), "INVALID"),
    }
    assert await snapshot(contoso.id) == before


async def test_only_a_full_admin_may_complete_the_setup(client: httpx.AsyncClient, db) -> None:
    contoso = await factories.partner("Contoso Partners", "contoso.example", setup_completed=False)
    team = await factories.team(contoso)
    before = await snapshot(contoso.id)
    for role, member in team.items():
        if role is AdminRole.FULL_ADMIN:
            continue
        answer = await data(client, member.token, SETUP, {"input": {"acceptTerms": True}})
        [error] = answer["completeOrganizationSetup"]["userErrors"]
        assert error["code"] == "FORBIDDEN"
        assert "needs the FULL_ADMIN role" in error["message"] and role.value in error["message"]
    assert await snapshot(contoso.id) == before


async def test_resources_sections_and_search(client: httpx.AsyncClient, db) -> None:
    # The reference list, stored by `partnerhub migrate` (and so by the `db` fixture).
    from app.domain.resources import REFERENCE_RESOURCES as RESOURCES

    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.READ_ONLY_ADMIN)).token
    query = (
        "query($s: String, $x: String) { resources(search: $s, section: $x) { title section url } }"
    )
    everything = (await data(client, token, query))["resources"]
    assert len(everything) == len(RESOURCES)
    sections = [r["section"] for r in everything]
    assert sections == sorted(sections, key=["QUICK_LINK", "FEATURED", "GENERAL"].index)
    quick = (await data(client, token, query, {"x": "QUICK_LINK"}))["resources"]
    assert {r["title"] for r in quick} == {t for t, _, s, _, _ in RESOURCES if s == "QUICK_LINK"}
    assert "Partner Helpdesk" in {r["title"] for r in quick}
    found = (await data(client, token, query, {"s": "HELPDESK"}))["resources"]
    assert [r["title"] for r in found] == ["Partner Helpdesk"]
    bad = await client.post(
        "/graphql",
        json={"query": query, "variables": {"x": "SECRET"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (
        "`section` must be one of QUICK_LINK, FEATURED, GENERAL"
        in bad.json()["errors"][0]["message"]
    )
    long = await client.post(
        "/graphql",
        json={"query": query, "variables": {"s": "x" * 10_000}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert "at most 200 characters" in long.json()["errors"][0]["message"]


async def test_the_setup_guard_refuses_until_the_setup_is_completed(db) -> None:
    """Every mutation but completeOrganizationSetup calls this guard first."""
    import pytest

    from app.domain.access import Viewer, require_setup_completed
    from app.domain.errors import MutationRejected

    contoso = await factories.partner("Contoso Partners", "contoso.example", setup_completed=False)
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    pending = Viewer(
        admin=(await factories.admin(contoso, AdminRole.FULL_ADMIN)).admin, partner=contoso
    )
    with pytest.raises(MutationRejected) as refused:
        require_setup_completed(pending)
    [error] = refused.value.errors
    assert error.code == "FORBIDDEN" and "setup is pending" in error.message
    done = Viewer(
        admin=(await factories.admin(northwind, AdminRole.ADMIN)).admin, partner=northwind
    )
    require_setup_completed(done)  # no error
