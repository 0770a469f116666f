"""Tags: names, uniqueness, customer counts, replace semantics, limits, tenancy."""

from __future__ import annotations

import httpx
import pytest

from app.domain.ids import encode_global_id as gid
from app.models.enums import AdminRole
from app.models.tags import CustomerTag, Tag
from tests import factories
from tests.graphql_client import data
from tests.test_mutation_matrix import everything

CREATE = """mutation($input: CreateTagInput!) { createTag(input: $input) {
  tag { id name description customerCount createdBy { email } } userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateTagInput!) { updateTag(input: $input) {
  tag { name description } userErrors { field message code } } }"""
DELETE = """mutation($input: DeleteInput!) { deleteTag(input: $input) {
  deletedId userErrors { field message code } } }"""
SET = """mutation($input: SetCustomerTagsInput!) { setCustomerTags(input: $input) {
  customer { tags { name customerCount } } userErrors { field message code } } }"""


@pytest.fixture
async def setup(db):
    org = await factories.partner("Northwind Partners", "northwind.example")
    other = await factories.partner("Contoso Partners", "contoso.example")
    full = await factories.admin(org, AdminRole.FULL_ADMIN)
    customers = [await factories.customer(org, f"Customer {n}") for n in range(3)]
    return org, other, full, customers


async def test_tag_names_are_trimmed_checked_and_unique_per_partner_in_any_case(
    client: httpx.AsyncClient, setup
) -> None:
    _, other, full, _ = setup
    made = await data(
        client, full.token, CREATE, {"input": {"name": "  Gold   tier ", "description": "Top"}}
    )
    tag = made["createTag"]["tag"]
    assert tag["name"] == "Gold tier" and tag["customerCount"] == 0
    assert tag["createdBy"] == {"email": full.admin.email}
    before = await everything()
    for name, code in (
        ("", "INVALID"),
        ("   ", "INVALID"),
        ("x" * 41, "INVALID"),
        ("x" * 10_000, "INVALID"),
        ("GOLD TIER", "CONFLICT"),
        ("gold  tier", "CONFLICT"),
    ):
        answer = await data(client, full.token, CREATE, {"input": {"name": name}})
        [error] = answer["createTag"]["userErrors"]
        assert (error["field"], error["code"]) == (["input", "name"], code), name
    assert await everything() == before
    # Another partner may use the same name; 40 characters is allowed.
    other_full = await factories.admin(other, AdminRole.FULL_ADMIN)
    answer = await data(client, other_full.token, CREATE, {"input": {"name": "Gold tier"}})
    assert answer["createTag"]["userErrors"] == []
    answer = await data(client, full.token, CREATE, {"input": {"name": "y" * 40}})
    assert answer["createTag"]["userErrors"] == []
    # Each partner lists only its own tags.
    mine = await data(client, full.token, "{ tags { name } }")
    assert [t["name"] for t in mine["tags"]] == ["Gold tier", "y" * 40]
    theirs = await data(client, other_full.token, "{ tags { name } }")
    assert [t["name"] for t in theirs["tags"]] == ["Gold tier"]


async def test_rename_keeps_names_unique_and_describes(client: httpx.AsyncClient, setup) -> None:
    org, _, full, _ = setup
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    await Tag.create(partner=org, name="Silver", name_key="silver")
    clash = await data(
        client, full.token, UPDATE, {"input": {"id": gid("Tag", gold.id), "name": "SILVER"}}
    )
    assert clash["updateTag"]["userErrors"][0]["code"] == "CONFLICT"
    case_only = await data(
        client, full.token, UPDATE, {"input": {"id": gid("Tag", gold.id), "name": "GOLD"}}
    )
    assert case_only["updateTag"]["tag"]["name"] == "GOLD"
    described = await data(
        client, full.token, UPDATE, {"input": {"id": gid("Tag", gold.id), "description": "Best"}}
    )
    assert described["updateTag"]["tag"] == {"name": "GOLD", "description": "Best"}


async def test_set_customer_tags_replaces_and_counts_follow(
    client: httpx.AsyncClient, setup
) -> None:
    org, _, full, customers = setup
    a, b, c = [await Tag.create(partner=org, name=n, name_key=n.lower()) for n in ("A", "B", "C")]
    first, second = (gid("Customer", customers[n].id) for n in (0, 1))
    answer = await data(
        client,
        full.token,
        SET,
        {
            "input": {
                "customerId": first,
                "tagIds": [gid("Tag", a.id), gid("Tag", b.id), gid("Tag", a.id)],
            }
        },
    )
    assert answer["setCustomerTags"]["customer"]["tags"] == [
        {"name": "A", "customerCount": 1},
        {"name": "B", "customerCount": 1},
    ]
    await data(
        client, full.token, SET, {"input": {"customerId": second, "tagIds": [gid("Tag", b.id)]}}
    )
    answer = await data(
        client,
        full.token,
        SET,
        {"input": {"customerId": first, "tagIds": [gid("Tag", b.id), gid("Tag", c.id)]}},
    )
    assert answer["setCustomerTags"]["customer"]["tags"] == [
        {"name": "B", "customerCount": 2},
        {"name": "C", "customerCount": 1},
    ]
    cleared = await data(client, full.token, SET, {"input": {"customerId": first, "tagIds": []}})
    assert cleared["setCustomerTags"]["customer"]["tags"] == []
    # Deleting a tag removes it from every customer.
    deleted = await data(client, full.token, DELETE, {"input": {"id": gid("Tag", b.id)}})
    assert deleted["deleteTag"] == {"deletedId": gid("Tag", b.id), "userErrors": []}
    assert not await CustomerTag.filter(tag_id=b.id).exists()
    listed = await data(client, full.token, "{ tags { name customerCount } }")
    assert listed["tags"] == [{"name": "A", "customerCount": 0}, {"name": "C", "customerCount": 0}]


async def test_set_customer_tags_refuses_foreign_tags_and_too_many(
    client: httpx.AsyncClient, setup
) -> None:
    org, other, full, customers = setup
    ours = [await Tag.create(partner=org, name=f"T{n}", name_key=f"t{n}") for n in range(21)]
    theirs = await Tag.create(partner=other, name="Theirs", name_key="theirs")
    customer = gid("Customer", customers[0].id)
    before = await everything()
    too_many = await data(
        client,
        full.token,
        SET,
        {"input": {"customerId": customer, "tagIds": [gid("Tag", t.id) for t in ours]}},
    )
    [error] = too_many["setCustomerTags"]["userErrors"]
    assert error["code"] == "LIMIT_EXCEEDED" and "at most 20" in error["message"]
    foreign = await data(
        client,
        full.token,
        SET,
        {
            "input": {
                "customerId": customer,
                "tagIds": [gid("Tag", ours[0].id), gid("Tag", theirs.id), "junk"],
            }
        },
    )
    errors = foreign["setCustomerTags"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        (["input", "tagIds", "1"], "NOT_FOUND"),
        (["input", "tagIds", "2"], "NOT_FOUND"),
    ]
    assert await everything() == before


async def test_a_tag_of_another_partner_is_not_found_exactly_like_a_missing_one(
    client: httpx.AsyncClient, setup
) -> None:
    _, other, full, _ = setup
    theirs = await Tag.create(partner=other, name="Theirs", name_key="theirs")
    answers = []
    for tag_id in (gid("Tag", theirs.id), gid("Tag", 10**6)):
        answer = await data(client, full.token, DELETE, {"input": {"id": tag_id}})
        answers.append(answer["deleteTag"]["userErrors"])
    assert (
        answers[0]
        == answers[1]
        == [{"field": ["input", "id"], "message": "No such tag.", "code": "NOT_FOUND"}]
    )
    assert await Tag.filter(id=theirs.id).exists()


async def test_customer_count_counts_only_customers_the_viewer_reaches(
    client: httpx.AsyncClient, setup
) -> None:
    org, _, full, customers = setup
    admin = await factories.admin(org, AdminRole.ADMIN)
    await factories.assign(admin.admin, customers[0])
    tag = await Tag.create(partner=org, name="Gold", name_key="gold")
    for customer in customers[:2]:
        await CustomerTag.create(customer=customer, tag=tag)
    as_full = await data(client, full.token, "{ tags { name customerCount } }")
    as_admin = await data(client, admin.token, "{ tags { name customerCount } }")
    assert as_full["tags"] == [{"name": "Gold", "customerCount": 2}]
    assert as_admin["tags"] == [{"name": "Gold", "customerCount": 1}]
