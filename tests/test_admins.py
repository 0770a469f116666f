"""Admins: the list, creating admins, role changes (never the last FULL_ADMIN),
assignments that agree from both sides, and the audit log."""

from __future__ import annotations

import httpx
import pytest

from app.domain.ids import encode_global_id as gid
from app.models.admins import Admin, CustomerAssignment
from app.models.enums import AdminRole
from tests import factories
from tests.graphql_client import data, gql
from tests.test_mutation_matrix import everything

CREATE = """mutation($input: CreateAdminInput!) { createAdmin(input: $input) {
  admin { email displayName role accessAllCustomers } userErrors { field message code } } }"""
ROLE = """mutation($input: UpdateAdminRoleInput!) { updateAdminRole(input: $input) {
  admin { role } userErrors { field message code } } }"""
ASSIGN = """mutation($input: AssignAdminInput!) { assignAdminToCustomer(input: $input) {
  assignment { role admin { email } } userErrors { field message code } } }"""
UNASSIGN = """mutation($input: AssignAdminInput!) { unassignAdminFromCustomer(input: $input) {
  deletedId userErrors { field message code } } }"""


@pytest.fixture
async def org(db):
    org = await factories.partner("Northwind Partners", "northwind.example")
    return org, await factories.team(org)


async def test_create_admin_checks_email_and_name(client: httpx.AsyncClient, org) -> None:
    _, team = org
    full = team[AdminRole.FULL_ADMIN].token
    made = await data(
        client,
        full,
        CREATE,
        {
            "input": {
                "email": " New@Northwind.example ",
                "displayName": " Nia  Lee ",
                "role": "SALES_FULL_ADMIN",
            }
        },
    )
    assert made["createAdmin"] == {
        "admin": {
            "email": "new@northwind.example",
            "displayName": "Nia Lee",
            "role": "SALES_FULL_ADMIN",
            "accessAllCustomers": True,
        },
        "userErrors": [],
    }
    before = await everything()
    for email, name, field, code in (
        ("not-an-email", "X", "email", "INVALID"),
        ("NEW@northwind.example", "X", "email", "CONFLICT"),
        (team[AdminRole.ADMIN].admin.email, "X", "email", "CONFLICT"),
        ("ok@northwind.example", "   ", "displayName", "INVALID"),
        ("ok@northwind.example", "x" * 10_000, "displayName", "INVALID"),
    ):
        answer = await data(
            client, full, CREATE, {"input": {"email": email, "displayName": name, "role": "ADMIN"}}
        )
        [error] = answer["createAdmin"]["userErrors"]
        assert (error["field"], error["code"]) == (["input", field], code), (email, name)
    assert await everything() == before


async def test_the_last_full_admin_cannot_be_demoted(client: httpx.AsyncClient, org) -> None:
    partner, team = org
    me = team[AdminRole.FULL_ADMIN]
    before = await everything()
    answer = await data(
        client, me.token, ROLE, {"input": {"adminId": gid("Admin", me.admin.id), "role": "ADMIN"}}
    )
    [error] = answer["updateAdminRole"]["userErrors"]
    assert error["code"] == "CONFLICT" and "last FULL_ADMIN" in error["message"]
    assert await everything() == before
    # With a second FULL_ADMIN, one may step down; the change takes effect at once.
    second = await factories.admin(partner, AdminRole.FULL_ADMIN)
    await factories.customer(partner)  # exists, and a demoted ADMIN no longer sees it
    answer = await data(
        client,
        second.token,
        ROLE,
        {"input": {"adminId": gid("Admin", me.admin.id), "role": "ADMIN"}},
    )
    assert answer["updateAdminRole"] == {"admin": {"role": "ADMIN"}, "userErrors": []}
    seen = await data(
        client, me.token, "{ viewer { role accessAllCustomers } customers { totalCount } }"
    )
    assert seen == {
        "viewer": {"role": "ADMIN", "accessAllCustomers": False},
        "customers": {"totalCount": 0},
    }


async def test_assignments_agree_from_both_sides(client: httpx.AsyncClient, org) -> None:
    partner, team = org
    full = team[AdminRole.FULL_ADMIN].token
    admin = team[AdminRole.ADMIN].admin
    customers = [await factories.customer(partner, f"Customer {n}") for n in range(3)]
    for customer in customers[:2]:
        answer = await data(
            client,
            full,
            ASSIGN,
            {
                "input": {
                    "adminId": gid("Admin", admin.id),
                    "customerId": gid("Customer", customer.id),
                }
            },
        )
        assert answer["assignAdminToCustomer"] == {
            "assignment": {"role": "ADMIN", "admin": {"email": admin.email}},
            "userErrors": [],
        }
    query = """query($id: ID!) { node(id: $id) { ... on Admin { assignedCustomers { totalCount nodes { name
      partnerAdmins { admin { email } role } } } } } }"""
    answer = await data(client, full, query, {"id": gid("Admin", admin.id)})
    assigned = answer["node"]["assignedCustomers"]
    assert assigned["totalCount"] == 2
    assert [n["name"] for n in assigned["nodes"]] == ["Customer 0", "Customer 1"]
    assert all(
        n["partnerAdmins"] == [{"admin": {"email": admin.email}, "role": "ADMIN"}]
        for n in assigned["nodes"]
    )

    before = await everything()
    twice = await data(
        client,
        full,
        ASSIGN,
        {
            "input": {
                "adminId": gid("Admin", admin.id),
                "customerId": gid("Customer", customers[0].id),
            }
        },
    )
    assert twice["assignAdminToCustomer"]["userErrors"][0]["code"] == "CONFLICT"
    everyone = await data(
        client,
        full,
        ASSIGN,
        {
            "input": {
                "adminId": gid("Admin", team[AdminRole.READ_ONLY_ADMIN].admin.id),
                "customerId": gid("Customer", customers[0].id),
            }
        },
    )
    [error] = everyone["assignAdminToCustomer"]["userErrors"]
    assert error["code"] == "INVALID" and "sees every customer" in error["message"]
    not_assigned = await data(
        client,
        full,
        UNASSIGN,
        {
            "input": {
                "adminId": gid("Admin", admin.id),
                "customerId": gid("Customer", customers[2].id),
            }
        },
    )
    assert not_assigned["unassignAdminFromCustomer"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert await everything() == before

    removed = await data(
        client,
        full,
        UNASSIGN,
        {
            "input": {
                "adminId": gid("Admin", admin.id),
                "customerId": gid("Customer", customers[0].id),
            }
        },
    )
    assert removed["unassignAdminFromCustomer"]["userErrors"] == []
    answer = await data(client, full, query, {"id": gid("Admin", admin.id)})
    assert [n["name"] for n in answer["node"]["assignedCustomers"]["nodes"]] == ["Customer 1"]


async def test_admins_list_filters_pages_and_stays_in_the_partner(
    client: httpx.AsyncClient, org
) -> None:
    _, team = org
    other = await factories.partner("Contoso Partners", "contoso.example")
    await factories.team(other)
    query = """query($f: AdminFilter, $after: String) { admins(first: 2, filter: $f, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } nodes { email role } } }"""
    token = team[AdminRole.SALES_ADMIN].token
    emails, after = [], None
    while True:
        page = (await data(client, token, query, {"after": after}))["admins"]
        assert page["totalCount"] == 5
        emails += [n["email"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert emails == sorted(m.admin.email for m in team.values())
    only = await data(client, token, query, {"f": {"roles": ["ADMIN", "SALES_ADMIN"]}})
    assert {n["role"] for n in only["admins"]["nodes"]} == {"ADMIN", "SALES_ADMIN"}
    found = await data(
        client,
        token,
        query,
        {"f": {"search": team[AdminRole.READ_ONLY_ADMIN].admin.email[:12].upper()}},
    )
    assert [n["email"] for n in found["admins"]["nodes"]] == [
        team[AdminRole.READ_ONLY_ADMIN].admin.email
    ]


async def test_audit_log_newest_first_for_full_and_read_only_admins_only(
    client: httpx.AsyncClient, org
) -> None:
    _, team = org
    other = await factories.partner("Contoso Partners", "contoso.example")
    other_full = await factories.admin(other, AdminRole.FULL_ADMIN)
    full = team[AdminRole.FULL_ADMIN]
    create_tag = "mutation($n: String!) { createTag(input: {name: $n}) { userErrors { code } } }"
    for name in ("First", "Second", "Third"):
        await data(client, full.token, create_tag, {"n": name})
    await data(client, other_full.token, create_tag, {"n": "Contoso tag"})
    query = """query($after: String) { auditLog(first: 2, after: $after) { totalCount
      pageInfo { hasNextPage endCursor } nodes { action summary targetId actor { email } } } }"""
    for role in (AdminRole.FULL_ADMIN, AdminRole.READ_ONLY_ADMIN):
        page = (await data(client, team[role].token, query))["auditLog"]
        assert page["totalCount"] == 3
        assert [n["summary"] for n in page["nodes"]] == [
            "Created tag 'Third'",
            "Created tag 'Second'",
        ]
        assert all(
            n["action"] == "tag.create" and n["actor"] == {"email": full.admin.email}
            for n in page["nodes"]
        )
        rest = (
            await data(client, team[role].token, query, {"after": page["pageInfo"]["endCursor"]})
        )["auditLog"]
        assert [n["summary"] for n in rest["nodes"]] == ["Created tag 'First'"]
    for role in (AdminRole.ADMIN, AdminRole.SALES_FULL_ADMIN, AdminRole.SALES_ADMIN):
        response = await gql(client, team[role].token, query)
        assert response.json()["data"] is None
        assert "FULL_ADMIN and READ_ONLY_ADMIN only" in response.json()["errors"][0]["message"]


async def test_assigned_customers_of_a_page_of_admins_cost_the_same_statements_and_continue(
    client: httpx.AsyncClient, org
) -> None:
    from tests.test_customer_detail import counting_statements

    partner, team = org
    full = team[AdminRole.FULL_ADMIN].token
    customers = [
        await factories.customer(partner, name)
        for name in ("delta", "Alpha", "charlie", "Bravo", "echo")
    ]
    query = """query($roles: [AdminRole!]) { admins(first: 50, filter: {roles: $roles}) { nodes { id email
      assignedCustomers(first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { name } } } } }"""
    await data(client, full, "{ viewer { email } }")  # the token's first use is written

    async def statements_for(admin_count: int) -> tuple[int, dict]:
        while await Admin.filter(partner_id=partner.id, role=AdminRole.ADMIN).count() < admin_count:
            admin = (await factories.admin(partner, AdminRole.ADMIN)).admin
            for customer in customers[: (admin.id % 5) + 1]:
                await factories.assign(admin, customer)
        with counting_statements() as statements:
            answer = await data(client, full, query, {"roles": ["ADMIN"]})
        return len(statements), answer

    few, _ = await statements_for(3)
    many, answer = await statements_for(8)
    assert few == many
    for node in answer["admins"]["nodes"]:
        admin_id = (await Admin.get(email=node["email"])).id
        mine = [
            c.name
            for c in customers
            if await CustomerAssignment.filter(admin_id=admin_id, customer_id=c.id).exists()
        ]
        names = sorted(mine, key=str.lower)
        page = node["assignedCustomers"]
        assert page["totalCount"] == len(names)
        assert [n["name"] for n in page["nodes"]] == names[:2]
        assert page["pageInfo"]["hasNextPage"] == (len(names) > 2)
        if page["pageInfo"]["hasNextPage"]:
            rest = await data(
                client,
                full,
                """query($id: ID!, $after: String) { node(id: $id) { ... on Admin {
              assignedCustomers(first: 10, after: $after) { nodes { name } } } } }""",
                {"id": node["id"], "after": page["pageInfo"]["endCursor"]},
            )
            assert [n["name"] for n in rest["node"]["assignedCustomers"]["nodes"]] == names[2:]
