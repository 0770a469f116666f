"""External-admin grants ("managed by" EXTERNAL_ADMIN, issue 14 item 1).

Northwind's FULL_ADMIN makes Contoso's admins external admins of some of its
customers. With the grants in place, for every role: only the granted
customers cross partners (list, filters, ids, detail, analytics KPIs, reports),
read-only, and nothing of theirs beyond what SPEC.md lists (not Northwind's
tags, admins, assignments, audit events); the `managedBy` filters split what a
viewer sees in two. The expected sets are written by hand.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.config import Settings
from app.db import fetch_all
from app.demo import demo_admins, load_demo
from app.domain.access import Viewer, customer_scope, managed_customers, visible_customers
from app.domain.ids import encode_global_id as gid
from app.domain.mutations import audit_target
from app.models.admins import ExternalAdminGrant
from app.models.audit import AuditEvent
from app.models.customers import Customer, Location
from app.models.enums import AdminRole, LicenseType, Region, SubscriptionStatus
from app.models.organization import PartnerOrganization
from app.models.tags import CustomerTag, Tag
from tests import factories
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.graphql_client import data
from tests.report_helpers import (
    download,
    flush_queue,
    generate,
    parse_csv,
    report_of,
    run_jobs,
    templates_by_type,
)
from tests.test_mutation_matrix import everything
from tests.world import subscription

ALL_ROLES = (FULL, ADMIN, READ_ONLY, SALES_FULL, SALES)
# Northwind's customers: name -> (region, overage?)
NW = {
    "NW granted": (Region.US, True),
    "NW granted to full": (Region.EU, False),
    "NW not granted": (Region.US, True),
}
CO = {"CO assigned": (Region.EU, False), "CO plain": (Region.US, False)}


def own_of_contoso(role: AdminRole) -> set[str]:
    return {"CO assigned"} if role in (ADMIN, SALES) else {"CO assigned", "CO plain"}


def granted_to_contoso(role: AdminRole) -> set[str]:
    return {"NW granted", "NW granted to full"} if role is FULL else {"NW granted"}


def own_of_northwind(role: AdminRole) -> set[str]:
    return {"NW granted"} if role in (ADMIN, SALES) else set(NW)


@dataclass
class GrantWorld:
    northwind: PartnerOrganization
    contoso: PartnerOrganization
    fabrikam: PartnerOrganization
    nw: dict[AdminRole, factories.AdminWithToken]
    co: dict[AdminRole, factories.AdminWithToken]
    fab: factories.AdminWithToken
    customers: dict[str, Customer]
    nw_tag: Tag

    def viewers(self) -> dict[str, tuple[factories.AdminWithToken, set[str], set[str]]]:
        """Every viewer: (admin, its own partner's customers, its granted customers)."""
        found = {}
        for role in ALL_ROLES:
            found[f"contoso {role.value}"] = (
                self.co[role],
                own_of_contoso(role),
                granted_to_contoso(role),
            )
            found[f"northwind {role.value}"] = (self.nw[role], own_of_northwind(role), set())
        found["fabrikam FULL_ADMIN"] = (self.fab, set(), set())
        return found


async def build_grant_world() -> GrantWorld:
    today = datetime.now(UTC).date()
    # Contoso first, so that ids of the two partners differ.
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    fabrikam = await factories.partner("Fabrikam Partners", "fabrikam.example")
    co = await factories.team(contoso)
    nw = await factories.team(northwind)
    fab = await factories.admin(fabrikam, FULL)
    customers: dict[str, Customer] = {}
    for partner, table in ((northwind, NW), (contoso, CO)):
        for name, (region, overage) in table.items():
            customer = await factories.customer(partner, name, region)
            lines = [(LicenseType.MEETINGS, 10, 12 if overage else 5, 2)]
            await subscription(
                customer, SubscriptionStatus.ACTIVE, today + timedelta(days=300), lines=lines,
                today=today,
            )  # fmt: skip
            await Location.create(
                customer=customer, uuid=uuid.uuid4(), name=f"{name} HQ", country="US"
            )
            customers[name] = customer
    for role in (ADMIN, SALES):
        await factories.assign(nw[role].admin, customers["NW granted"])
        await factories.assign(co[role].admin, customers["CO assigned"])
    nw_tag = await Tag.create(partner=northwind, name="NW Gold", name_key="nw gold")
    await CustomerTag.create(customer=customers["NW granted"], tag=nw_tag)
    trial = await factories.trial(
        customers["NW granted"], today - timedelta(days=3), today + timedelta(days=20)
    )
    trial.started_by_id = nw[FULL].admin.id
    await trial.save(update_fields=["started_by_id"])
    return GrantWorld(northwind, contoso, fabrikam, nw, co, fab, customers, nw_tag)


GRANT = """mutation($input: ExternalAdminInput!) { grantExternalAdmin(input: $input) {
  customer { name externalAdmins { email grantedBy { email } } }
  externalAdmin { email grantedAt }
  userErrors { field message code } } }"""
REVOKE = GRANT.replace("grantExternalAdmin", "revokeExternalAdmin")


def _grant_input(customer: Customer, email: str) -> dict:
    return {"input": {"customerId": gid("Customer", customer.id), "adminEmail": email}}


async def grant_all(client: httpx.AsyncClient, w: GrantWorld) -> None:
    """Northwind's FULL_ADMIN grants through the API, as the product would be used."""
    for role in ALL_ROLES:
        answer = await data(
            client, w.nw[FULL].token, GRANT, _grant_input(w.customers["NW granted"], w.co[role].admin.email)
        )  # fmt: skip
        assert answer["grantExternalAdmin"]["userErrors"] == [], answer
    answer = await data(
        client,
        w.nw[FULL].token,
        GRANT,
        _grant_input(w.customers["NW granted to full"], w.co[FULL].admin.email.upper()),
    )
    assert answer["grantExternalAdmin"]["userErrors"] == [], answer


@pytest.fixture
async def world(db: Settings, client: httpx.AsyncClient) -> GrantWorld:
    w = await build_grant_world()
    await grant_all(client, w)
    return w


LIST = """query($filter: CustomerFilter) { customers(first: 100, filter: $filter) {
  totalCount nodes { name managedBy } } }"""


async def _listed(client: httpx.AsyncClient, token: str, flt: dict | None = None) -> dict:
    answer = (await data(client, token, LIST, {"filter": flt}))["customers"]
    assert answer["totalCount"] == len(answer["nodes"])
    return {n["name"]: n["managedBy"] for n in answer["nodes"]}


# ------------------------------------------------------------------ the list


async def test_each_viewer_sees_its_own_and_its_granted_customers_and_the_filters_partition(
    client: httpx.AsyncClient, world: GrantWorld
) -> None:
    for key, (viewer, own, granted) in world.viewers().items():
        listed = await _listed(client, viewer.token)
        assert set(listed) == own | granted, key
        assert {n for n, m in listed.items() if m == "PARTNER_ORGANIZATION"} == own, key
        assert {n for n, m in listed.items() if m == "EXTERNAL_ADMIN"} == granted, key
        partner = await _listed(client, viewer.token, {"managedBy": "PARTNER_ORGANIZATION"})
        external = await _listed(client, viewer.token, {"managedBy": "EXTERNAL_ADMIN"})
        assert set(partner) == own and set(external) == granted, key
        assert set(partner.values()) <= {"PARTNER_ORGANIZATION"}, key
        assert set(external.values()) <= {"EXTERNAL_ADMIN"}, key
        # Other filters keep to the same customers.
        us = await _listed(client, viewer.token, {"regions": ["US"], "managedBy": "EXTERNAL_ADMIN"})
        assert set(us) == {n for n in granted if NW[n][0] is Region.US}, key
        found = await _listed(client, viewer.token, {"search": "NW"})
        assert set(found) == {n for n in own | granted if n.startswith("NW")}, key
        tagged = await _listed(client, viewer.token, {"tagIds": [gid("Tag", world.nw_tag.id)]})
        # Northwind's tag is no tag to anyone else: it filters nothing in.
        assert set(tagged) == ({"NW granted"} & own), key


async def test_the_scope_queryset_and_its_sql_agree_with_grants_and_mutations_see_none(
    world: GrantWorld,
) -> None:
    partners = {world.northwind.id: world.northwind, world.contoso.id: world.contoso}
    partners[world.fabrikam.id] = world.fabrikam
    names = {c.id: n for n, c in world.customers.items()}
    for key, (member, own, granted) in world.viewers().items():
        viewer = Viewer(admin=member.admin, partner=partners[member.admin.partner_id])
        ids = await visible_customers(viewer).values_list("id", flat=True)
        assert {names[i] for i in ids} == own | granted, key
        scope = customer_scope(viewer)
        rows = await fetch_all(f"SELECT c.id FROM customer c WHERE {scope.text}", scope.params)
        assert {names[r["id"]] for r in rows} == own | granted, key
        managed = await managed_customers(viewer).values_list("id", flat=True)
        assert {names[i] for i in managed} == own, key
        shared = Viewer(admin=member.admin, partner=viewer.partner, with_grants=False)
        scope = customer_scope(shared)
        rows = await fetch_all(f"SELECT c.id FROM customer c WHERE {scope.text}", scope.params)
        assert {names[r["id"]] for r in rows} == own, key


# ------------------------------------------------------------------ ids


async def test_only_granted_customers_and_their_rows_resolve_by_id_across_partners(
    client: httpx.AsyncClient, world: GrantWorld
) -> None:
    granted_customer = world.customers["NW granted"]
    trial = await granted_customer.trials.all().first()
    sub_ids = await granted_customer.subscriptions.all().values_list("id", flat=True)
    event = await AuditEvent.filter(partner_id=world.northwind.id).first()
    assert trial is not None and event is not None
    aliases = {f"c{n}": name for n, name in enumerate(world.customers)}
    parts = [
        f'{a}: node(id: "{gid("Customer", world.customers[n].id)}") {{ id }}'
        for a, n in aliases.items()
    ]
    parts += [
        f'tr: node(id: "{gid("Trial", trial.id)}") {{ id }}',
        f'tag: node(id: "{gid("Tag", world.nw_tag.id)}") {{ id }}',
        f'ad: node(id: "{gid("Admin", world.nw[FULL].admin.id)}") {{ id }}',
        f'ev: node(id: "{gid("AuditEvent", event.id)}") {{ id }}',
        f'org: node(id: "{gid("PartnerOrganization", world.northwind.id)}") {{ id }}',
    ]
    parts += [
        f's{i}: node(id: "{gid("CustomerSubscription", s)}") {{ id }}'
        for i, s in enumerate(sub_ids)
    ]
    query = "{ " + " ".join(parts) + " }"
    for key, (viewer, own, granted) in world.viewers().items():
        answer = await data(client, viewer.token, query)
        seen = {aliases[a] for a in aliases if answer[a] is not None}
        assert seen == own | granted, key
        sees_granted = "NW granted" in own | granted
        assert (answer["tr"] is not None) == sees_granted, key
        assert all((answer[f"s{i}"] is not None) == sees_granted for i in range(len(sub_ids))), key
        if key.startswith("northwind"):
            continue
        # Nothing else of Northwind: its tag, admins, audit events, organization.
        assert answer["tag"] is None and answer["ad"] is None, key
        assert answer["ev"] is None and answer["org"] is None, key
        trials = await data(client, viewer.token, "{ trials(first: 50) { nodes { trialId } } }")
        assert [t["trialId"] for t in trials["trials"]["nodes"]] == (
            [trial.trial_id] if sees_granted else []
        ), key


DETAIL = """query($id: ID!) { customer(id: $id) {
  name managedBy region products statuses launchUrl
  licenseTotals { total assigned overage }
  subscriptions(first: 10) { nodes { subscriptionId kind } }
  trials { trialId startedBy { email } }
  locations { name }
  tags { name }
  partnerAdmins { admin { email } }
  externalAdmins { email grantedBy { email } } } }"""


async def test_a_granted_customers_detail_shows_the_tabs_and_nothing_of_the_managing_partner(
    client: httpx.AsyncClient, world: GrantWorld
) -> None:
    customer = world.customers["NW granted"]
    variables = {"id": gid("Customer", customer.id)}
    managing = (await data(client, world.nw[FULL].token, DETAIL, variables))["customer"]
    assert managing["managedBy"] == "PARTNER_ORGANIZATION"
    assert managing["tags"] == [{"name": "NW Gold"}]
    assert {a["admin"]["email"] for a in managing["partnerAdmins"]} == {
        world.nw[ADMIN].admin.email,
        world.nw[SALES].admin.email,
    }
    assert sorted(e["email"] for e in managing["externalAdmins"]) == sorted(
        world.co[r].admin.email for r in ALL_ROLES
    )
    assert {e["grantedBy"]["email"] for e in managing["externalAdmins"]} == {
        world.nw[FULL].admin.email
    }
    assert managing["trials"][0]["startedBy"] == {"email": world.nw[FULL].admin.email}
    for role in ALL_ROLES:
        seen = (await data(client, world.co[role].token, DETAIL, variables))["customer"]
        assert seen["managedBy"] == "EXTERNAL_ADMIN", role
        # The tabs SPEC.md lists, as the managing side sees them.
        for tab in ("name", "region", "products", "statuses", "launchUrl", "licenseTotals"):
            assert seen[tab] == managing[tab], (role, tab)
        assert seen["subscriptions"] == managing["subscriptions"], role
        assert seen["locations"] == managing["locations"], role
        assert [t["trialId"] for t in seen["trials"]] == [
            t["trialId"] for t in managing["trials"]
        ], role
        # Nothing of Northwind itself: its tags, admins, assignments, other grants.
        assert seen["tags"] == [] and seen["partnerAdmins"] == [], role
        assert seen["externalAdmins"] == [], role
        assert seen["trials"][0]["startedBy"] is None, role
    # Contoso's own tags and the Admins list stay Contoso's.
    tags = await data(client, world.co[FULL].token, "{ tags { name customerCount } }")
    assert tags["tags"] == []
    admins = await data(client, world.co[FULL].token, "{ admins(first: 50) { nodes { email } } }")
    assert all(a["email"].endswith("@contoso.example") for a in admins["admins"]["nodes"])
    # Contoso's audit trail holds nothing of the grants; Northwind's holds one each.
    log = await data(client, world.co[FULL].token, "{ auditLog(first: 50) { nodes { action } } }")
    assert log["auditLog"]["nodes"] == []
    actions = await AuditEvent.filter(partner_id=world.northwind.id).values_list(
        "action", flat=True
    )
    assert actions == ["customer.external_admin.grant"] * 6


# ------------------------------------------------------------------ analytics

KPIS = """{ subscriptionAnalytics(product: MEETINGS) {
  kpis { totalCustomers overLicenseLimit } overLicenseLimit { kpis { customers } } } }"""


async def test_analytics_kpis_count_exactly_the_listed_customers(
    client: httpx.AsyncClient, world: GrantWorld
) -> None:
    overage = {n for n, (_, over) in NW.items() if over}
    for key, (viewer, own, granted) in world.viewers().items():
        analytics = (await data(client, viewer.token, KPIS))["subscriptionAnalytics"]
        seen = own | granted
        assert analytics["kpis"] == {
            "totalCustomers": len(seen),
            "overLicenseLimit": len(seen & overage),
        }, key
        assert analytics["overLicenseLimit"]["kpis"]["customers"] == len(seen & overage), key


# ------------------------------------------------------------------ reports


async def _report_names(client: httpx.AsyncClient, token: str, report_id: str) -> set[str]:
    report = await report_of(client, token, report_id)
    assert report["status"] == "SUCCEEDED", report
    rows = parse_csv((await download(client, report["download"]["url"])).content)
    everyone = set(NW) | set(CO)
    return {cell for row in rows[1:] for cell in row if cell in everyone}


async def test_reports_hold_granted_customers_for_their_requester_only(
    db: Settings, client: httpx.AsyncClient, world: GrantWorld, redis_url: str,
    http_settings: Settings,
) -> None:  # fmt: skip
    await flush_queue(redis_url)
    templates = await templates_by_type(client, world.co[FULL].token)
    customer_list = templates["CUSTOMER_LIST"]["id"]
    details = templates["SUBSCRIPTION_DETAILS"]["id"]
    asked = {}
    for role in ALL_ROLES:
        answer = await generate(client, world.co[role].token, templateId=customer_list)
        assert answer["userErrors"] == [], answer
        asked[role] = answer["report"]["id"]
    answer = await generate(client, world.co[READ_ONLY].token, templateId=details)
    asked["details"] = answer["report"]["id"]
    # ADMIN's EU report: none of its granted customers lives there, so it is shared.
    answer = await generate(client, world.co[ADMIN].token, templateId=customer_list, region="EU")
    asked["eu"] = answer["report"]["id"]
    # Revoked after asking, before the worker runs: the report leaves it out.
    answer = await data(
        client, world.nw[FULL].token, REVOKE,
        _grant_input(world.customers["NW granted to full"], world.co[FULL].admin.email),
    )  # fmt: skip
    assert answer["revokeExternalAdmin"]["userErrors"] == []
    await run_jobs(redis_url, http_settings)

    for role in ALL_ROLES:
        names = await _report_names(client, world.co[role].token, asked[role])
        assert names == own_of_contoso(role) | {"NW granted"}, role
    details_names = await _report_names(client, world.co[READ_ONLY].token, asked["details"])
    assert details_names == own_of_contoso(READ_ONLY) | {"NW granted"}
    assert await _report_names(client, world.co[FULL].token, asked["eu"]) == {"CO assigned"}
    # Another admin of Contoso never reads a report that holds a granted customer.
    for role in ALL_ROLES:
        for requester in ALL_ROLES:
            if requester is role:
                continue
            assert await report_of(client, world.co[role].token, asked[requester]) is None
    listed = await data(client, world.co[FULL].token, "{ reports(first: 50) { nodes { id } } }")
    assert {r["id"] for r in listed["reports"]["nodes"]} == {asked[FULL], asked["eu"]}
    # Northwind and Fabrikam see none of them.
    for token in (world.nw[FULL].token, world.fab.token):
        assert await report_of(client, token, asked[READ_ONLY]) is None


# ------------------------------------------------------------------ mutations


async def test_grant_mistakes_are_user_errors_with_field_paths_and_change_nothing(
    client: httpx.AsyncClient, world: GrantWorld
) -> None:
    full = world.nw[FULL].token
    granted = world.customers["NW granted"]
    removed = await factories.admin(world.contoso, ADMIN)
    removed.admin.removed_at = datetime.now(UTC)
    await removed.admin.save(update_fields=["removed_at"])
    before = await everything()
    cases = [
        (GRANT, granted, "nobody@contoso.example", ["input", "adminEmail"], "NOT_FOUND"),
        (GRANT, granted, removed.admin.email, ["input", "adminEmail"], "NOT_FOUND"),
        (GRANT, granted, world.nw[ADMIN].admin.email, ["input", "adminEmail"], "INVALID"),
        (GRANT, granted, "not an email", ["input", "adminEmail"], "INVALID"),
        (GRANT, granted, world.co[ADMIN].admin.email, ["input", "adminEmail"], "CONFLICT"),
        (GRANT, world.customers["CO plain"], world.fab.admin.email, ["input", "customerId"], "NOT_FOUND"),
        (REVOKE, granted, world.fab.admin.email, ["input", "adminEmail"], "NOT_FOUND"),
        (REVOKE, world.customers["NW not granted"], world.co[FULL].admin.email, ["input", "adminEmail"], "NOT_FOUND"),
        (REVOKE, world.customers["CO plain"], world.co[FULL].admin.email, ["input", "customerId"], "NOT_FOUND"),
    ]  # fmt: skip
    for query, customer, email, field, code in cases:
        name = "grantExternalAdmin" if query is GRANT else "revokeExternalAdmin"
        payload = (await data(client, full, query, _grant_input(customer, email)))[name]
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], (
            name, email, payload,
        )  # fmt: skip
        assert payload["customer"] is None and payload["externalAdmin"] is None
    # A grantee cannot pass its grant on, nor end it, nor act on the customer.
    co_full = world.co[FULL].token
    for query in (GRANT, REVOKE):
        name = "grantExternalAdmin" if query is GRANT else "revokeExternalAdmin"
        payload = await data(client, co_full, query, _grant_input(granted, world.fab.admin.email))
        assert [e["code"] for e in payload[name]["userErrors"]] == ["NOT_FOUND"]
    # Other roles of the managing partner: FORBIDDEN, naming the role needed.
    for role in (ADMIN, READ_ONLY, SALES_FULL, SALES):
        payload = (
            await data(client, world.nw[role].token, GRANT, _grant_input(granted, world.fab.admin.email))
        )["grantExternalAdmin"]  # fmt: skip
        [error] = payload["userErrors"]
        assert error["code"] == "FORBIDDEN" and "FULL_ADMIN" in error["message"], role
    assert await everything() == before


async def test_a_grant_then_a_revocation_take_effect_on_the_next_request(
    client: httpx.AsyncClient, world: GrantWorld
) -> None:
    customer = world.customers["NW not granted"]
    grantee = world.co[SALES]
    variables = {"id": gid("Customer", customer.id)}
    query = "query($id: ID!) { customer(id: $id) { name managedBy } }"
    assert (await data(client, grantee.token, query, variables))["customer"] is None
    answer = await data(
        client, world.nw[FULL].token, GRANT, _grant_input(customer, f"  {grantee.admin.email} ")
    )
    payload = answer["grantExternalAdmin"]
    assert payload["userErrors"] == []
    assert payload["externalAdmin"]["email"] == grantee.admin.email
    assert grantee.admin.email in {e["email"] for e in payload["customer"]["externalAdmins"]}
    seen = (await data(client, grantee.token, query, variables))["customer"]
    assert seen == {"name": "NW not granted", "managedBy": "EXTERNAL_ADMIN"}
    assert "NW not granted" in await _listed(client, grantee.token)

    answer = await data(
        client, world.nw[FULL].token, REVOKE, _grant_input(customer, grantee.admin.email)
    )
    payload = answer["revokeExternalAdmin"]
    assert payload["userErrors"] == []
    assert grantee.admin.email not in {e["email"] for e in payload["customer"]["externalAdmins"]}
    assert (await data(client, grantee.token, query, variables))["customer"] is None
    assert "NW not granted" not in await _listed(client, grantee.token)
    assert not await ExternalAdminGrant.filter(customer_id=customer.id).exists()
    events = await AuditEvent.filter(partner_id=world.northwind.id).order_by("-id").limit(2)
    assert [e.action for e in events] == [
        "customer.external_admin.revoke",
        "customer.external_admin.grant",
    ]
    assert all(e.target_id == audit_target("Customer", customer.id) for e in events)


async def test_a_removed_admins_grants_stop(client: httpx.AsyncClient, world: GrantWorld) -> None:
    removed = world.co[READ_ONLY]
    answer = await data(
        client,
        world.co[FULL].token,
        "mutation($input: RemoveAdminInput!) { removeAdmin(input: $input) { userErrors { code } } }",
        {"input": {"adminId": gid("Admin", removed.admin.id)}},
    )
    assert answer["removeAdmin"]["userErrors"] == []
    assert not await ExternalAdminGrant.filter(admin_id=removed.admin.id).exists()
    detail = await data(
        client, world.nw[FULL].token, DETAIL, {"id": gid("Customer", world.customers["NW granted"].id)}
    )  # fmt: skip
    emails = {e["email"] for e in detail["customer"]["externalAdmins"]}
    assert removed.admin.email not in emails and len(emails) == 4
    answer = await data(
        client, world.nw[FULL].token, GRANT,
        _grant_input(world.customers["NW granted"], removed.admin.email),
    )  # fmt: skip
    assert [e["code"] for e in answer["grantExternalAdmin"]["userErrors"]] == ["NOT_FOUND"]


# ------------------------------------------------------------------ the demo


async def test_the_demo_makes_grants_in_both_directions(
    client: httpx.AsyncClient, db: Settings
) -> None:
    await load_demo(24, seed=1)
    tokens = {(a.partner, a.email.split("@")[0]): a.token for a in demo_admins(1)}
    expected = {
        ("Northwind Partners", "admin"): 2,
        ("Northwind Partners", "full"): 1,
        ("Contoso Partners", "admin"): 2,
        ("Contoso Partners", "readonly"): 1,
        ("Contoso Partners", "salesfull"): 0,
    }
    for (partner, box), count in expected.items():
        external = await _listed(client, tokens[(partner, box)], {"managedBy": "EXTERNAL_ADMIN"})
        assert len(external) == count, (partner, box)
        everything_seen = await _listed(client, tokens[(partner, box)])
        own = await _listed(client, tokens[(partner, box)], {"managedBy": "PARTNER_ORGANIZATION"})
        assert set(everything_seen) == set(own) | set(external), (partner, box)
        assert not set(own) & set(external), (partner, box)
    grants = await ExternalAdminGrant.all().prefetch_related("customer", "admin", "granted_by")
    assert len(grants) == 6
    for grant in grants:
        assert grant.customer.partner_id != grant.admin.partner_id
        assert grant.granted_by.partner_id == grant.customer.partner_id
        assert grant.granted_by.role == AdminRole.FULL_ADMIN
