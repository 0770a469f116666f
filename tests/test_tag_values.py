"""What the tag readers and mutations hand the API (issue 15 items 1 and 4):
plain `TagValue`s of the stored rows, in the viewer's partner only, and
refusals whose field paths are in the domain's snake_case, which clients read
in camelCase."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from app.config import Settings
from app.domain import tags
from app.domain.access import Viewer
from app.domain.customers import CustomerRow
from app.domain.errors import MutationRejected
from app.domain.ids import encode_global_id as gid
from app.domain.statuses import StatusClock
from app.models.enums import AdminRole
from app.models.tags import CustomerTag, Tag
from tests import factories
from tests.graphql_client import data

SET = """mutation($input: SetCustomerTagsInput!) { setCustomerTags(input: $input) {
  userErrors { field code } } }"""
ADD = """mutation($input: TagCustomersInput!) { addTagToCustomers(input: $input) {
  userErrors { field code } } }"""


async def _viewer(admin: factories.AdminWithToken) -> Viewer:
    await admin.admin.fetch_related("partner")
    return Viewer(admin=admin.admin, partner=admin.admin.partner)


async def _refusal(work) -> list[tuple[tuple[str, ...] | None, str]]:
    with pytest.raises(MutationRejected) as refused:
        await work
    return [(e.field, e.code.value) for e in refused.value.errors]


async def test_tag_readers_and_mutations_answer_values_of_the_stored_rows(db: Settings) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    other = await factories.partner("Contoso Partners", "contoso.example")
    full = await factories.admin(org, AdminRole.FULL_ADMIN)
    theirs = await _viewer(await factories.admin(other, AdminRole.FULL_ADMIN))
    viewer = await _viewer(full)
    customers = [await factories.customer(org, f"Customer {n}") for n in range(3)]

    silver = await tags.create_tag(viewer, "silver", None)
    gold = await tags.create_tag(viewer, "  Gold  tier ", " Top ")
    assert isinstance(gold, tags.TagValue)
    stored = await Tag.get(id=gold.id)
    assert (gold.name, gold.description, gold.created_by_id) == ("Gold tier", "Top", full.admin.id)
    assert (stored.name, stored.description, stored.created_at) == (
        gold.name,
        gold.description,
        gold.created_at,
    )
    renamed = await tags.update_tag(viewer, gold.id, "Platinum", None)
    assert renamed == tags.TagValue(gold.id, "Platinum", "Top", gold.created_at, full.admin.id)
    # By name in any case: "Platinum" before "silver".
    assert await tags.list_tags(viewer) == [renamed, silver]
    assert await tags.get_tag(viewer, gold.id) == renamed
    assert await tags.get_tag(theirs, gold.id) is None and await tags.list_tags(theirs) == []

    # setCustomerTags answers the customer as a value too (duplicates count once).
    row = await tags.set_customer_tags(viewer, customers[0].id, [gold.id, gold.id], 10)
    assert isinstance(row, CustomerRow) and (row.id, row.name) == (customers[0].id, "Customer 0")
    carried = CustomerTag.filter(customer_id=customers[0].id)
    assert await carried.values_list("tag_id", flat=True) == [gold.id]

    clock = StatusClock(now=datetime.now(UTC))
    result = await tags.add_tag_to_customers(
        viewer, silver.id, [c.id for c in customers[:2]], None, clock, 10
    )
    assert (result.tag, result.customer_count, result.changed_count) == (silver, 2, 2)
    assert await CustomerTag.filter(tag_id=silver.id).count() == 2
    removed = await tags.remove_tag_from_customers(
        viewer, silver.id, [c.id for c in customers], None, clock
    )
    assert (removed.tag, removed.customer_count, removed.changed_count) == (silver, 3, 2)
    assert await tags.delete_tag(viewer, silver.id) == silver.id
    assert await tags.get_tag(viewer, silver.id) is None


async def test_tag_refusals_name_fields_in_domain_terms_and_clients_read_camel_case(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, AdminRole.FULL_ADMIN)
    viewer = await _viewer(full)
    customer = await factories.customer(org, "Acme")
    gold = await tags.create_tag(viewer, "Gold", None)
    clock = StatusClock(now=datetime.now(UTC))

    assert await _refusal(tags.set_customer_tags(viewer, customer.id, [gold.id, 999_999], 10)) == [
        (("input", "tag_ids", "1"), "NOT_FOUND")
    ]
    answer = await data(
        client,
        full.token,
        SET,
        {"input": {"customerId": gid("Customer", customer.id),
                   "tagIds": [gid("Tag", gold.id), gid("Tag", 999_999)]}},
    )  # fmt: skip
    assert answer["setCustomerTags"]["userErrors"] == [
        {"field": ["input", "tagIds", "1"], "code": "NOT_FOUND"}
    ]
    assert await _refusal(tags.set_customer_tags(viewer, None, [], 10)) == [
        (("input", "customer_id"), "NOT_FOUND")
    ]

    assert await _refusal(
        tags.add_tag_to_customers(viewer, gold.id, [customer.id, 999_999], None, clock, 10)
    ) == [(("input", "customer_ids", "1"), "NOT_FOUND")]
    answer = await data(
        client,
        full.token,
        ADD,
        {"input": {"tagId": gid("Tag", gold.id),
                   "customerIds": [gid("Customer", customer.id), gid("Customer", 999_999)]}},
    )  # fmt: skip
    assert answer["addTagToCustomers"]["userErrors"] == [
        {"field": ["input", "customerIds", "1"], "code": "NOT_FOUND"}
    ]
    assert await _refusal(
        tags.add_tag_to_customers(viewer, None, [customer.id], None, clock, 10)
    ) == [(("input", "tag_id"), "NOT_FOUND")]
    assert await CustomerTag.all().count() == 0
