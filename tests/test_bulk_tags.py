"""Tags for many customers at once: addTagToCustomers / removeTagFromCustomers by
ids (each in the viewer's scope, refusals by index) or by the `customers` query's
filter, up to 10,000 customers, all or nothing, in a few statements whatever
their number, and one audit event with the count."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from app.config import Settings
from app.domain.ids import encode_global_id as gid
from app.domain.mutations import audit_target
from app.models.audit import AuditEvent
from app.models.customers import Customer
from app.models.enums import AdminRole, Region
from app.models.organization import PartnerOrganization
from app.models.tags import CustomerTag, Tag
from tests import factories
from tests.factories import NOW
from tests.graphql_client import data
from tests.test_customer_detail import counting_statements
from tests.test_mutation_matrix import everything

FULL, ADMIN, READ_ONLY, SALES = (
    AdminRole.FULL_ADMIN,
    AdminRole.ADMIN,
    AdminRole.READ_ONLY_ADMIN,
    AdminRole.SALES_ADMIN,
)
FIELDS = "tag { name customerCount } customerCount changedCount userErrors { field message code }"
ADD = f"""mutation($input: TagCustomersInput!) {{ addTagToCustomers(input: $input) {{ {FIELDS} }} }}"""
REMOVE = f"""mutation($input: TagCustomersInput!) {{
  removeTagFromCustomers(input: $input) {{ {FIELDS} }} }}"""
CUSTOMERS = """query($filter: CustomerFilter) { customers(first: 100, filter: $filter) {
  totalCount nodes { id name tags { name } } } }"""


async def _tagged(tag: Tag) -> set[int]:
    return set(await CustomerTag.filter(tag_id=tag.id).values_list("customer_id", flat=True))


def _ids(*customers: Customer) -> list[str]:
    return [gid("Customer", c.id) for c in customers]


async def _many(org: PartnerOrganization, count: int, region: Region = Region.EU) -> list[int]:
    """`count` customers of `org` in `region`, written in bulk; their ids."""
    await Customer.bulk_create(
        [
            Customer(
                partner=org,
                name=f"Bulk {region.value} {n:05d}",
                org_id=uuid.uuid4(),
                region=region,
                created_at=NOW,
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    return list(
        await Customer.filter(partner=org, region=region)
        .order_by("id")
        .values_list("id", flat=True)
    )


async def test_a_tag_goes_to_many_customers_and_comes_off_them(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, FULL)
    acme, bolt, core, dash = [
        await factories.customer(org, n) for n in ("Acme", "Bolt", "Core", "Dash")
    ]
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    await CustomerTag.create(customer=bolt, tag=gold)

    ids = [*_ids(acme, bolt, core), gid("Customer", acme.id)]  # a duplicate counts once
    answer = await data(
        client, full.token, ADD, {"input": {"tagId": gid("Tag", gold.id), "customerIds": ids}}
    )
    assert answer["addTagToCustomers"] == {
        "tag": {"name": "Gold", "customerCount": 3},
        "customerCount": 3,
        "changedCount": 2,  # Bolt carried it already
        "userErrors": [],
    }
    assert await _tagged(gold) == {acme.id, bolt.id, core.id}
    added = await CustomerTag.get(customer=acme, tag=gold)
    assert abs(added.tagged_at - datetime.now(UTC)) < timedelta(minutes=1)
    listed = await data(
        client, full.token, CUSTOMERS, {"filter": {"tagIds": [gid("Tag", gold.id)]}}
    )
    assert [c["name"] for c in listed["customers"]["nodes"]] == ["Acme", "Bolt", "Core"]
    [event] = await AuditEvent.filter(action="customer.tags.add")
    assert event.target_id == audit_target("Tag", gold.id) and event.actor_id == full.admin.id
    assert event.summary == "Added tag 'Gold' to 2 customer(s) (3 chosen; 1 already carried it)"

    answer = await data(
        client,
        full.token,
        REMOVE,
        {"input": {"tagId": gid("Tag", gold.id), "customerIds": _ids(bolt, dash)}},
    )
    assert answer["removeTagFromCustomers"]["changedCount"] == 1  # Dash never carried it
    assert answer["removeTagFromCustomers"]["customerCount"] == 2
    assert await _tagged(gold) == {acme.id, core.id}
    [event] = await AuditEvent.filter(action="customer.tags.remove")
    assert event.summary == "Removed tag 'Gold' from 1 customer(s) (2 chosen; 1 did not carry it)"


async def test_by_filter_the_tag_goes_to_exactly_the_customers_the_list_shows(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    other = await factories.partner("Contoso Partners", "contoso.example")
    admin = await factories.admin(org, ADMIN)
    eu = [await factories.customer(org, f"EU {n}", Region.EU) for n in range(3)]
    us = await factories.customer(org, "US 0", Region.US)
    unassigned_eu = await factories.customer(org, "EU unassigned", Region.EU)
    theirs_eu = await factories.customer(other, "Contoso EU", Region.EU)
    for c in (*eu, us):
        await factories.assign(admin.admin, c)
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    flt = {"regions": ["EU"]}

    shown = (await data(client, admin.token, CUSTOMERS, {"filter": flt}))["customers"]
    answer = await data(
        client, admin.token, ADD, {"input": {"tagId": gid("Tag", gold.id), "filter": flt}}
    )
    assert answer["addTagToCustomers"]["changedCount"] == shown["totalCount"] == 3
    assert await _tagged(gold) == {c.id for c in eu}  # not the unassigned nor Contoso's
    assert unassigned_eu.id not in await _tagged(gold) and theirs_eu.id not in await _tagged(gold)
    [event] = await AuditEvent.filter(action="customer.tags.add")
    assert event.summary == "Added tag 'Gold' to 3 customer(s) (3 matched by a customer filter)"

    # The filter of the list, tags included: remove it from the EU customers carrying it.
    tagged = {"regions": ["EU"], "tagIds": [gid("Tag", gold.id)]}
    answer = await data(
        client, admin.token, REMOVE, {"input": {"tagId": gid("Tag", gold.id), "filter": tagged}}
    )
    assert answer["removeTagFromCustomers"]["changedCount"] == 3
    assert await _tagged(gold) == set()
    # A filter matching nobody changes nothing and says so.
    answer = await data(
        client,
        admin.token,
        ADD,
        {"input": {"tagId": gid("Tag", gold.id), "filter": {"regions": ["UAE"]}}},
    )
    assert answer["addTagToCustomers"]["customerCount"] == 0
    assert answer["addTagToCustomers"]["changedCount"] == 0


async def test_ids_out_of_scope_unknown_or_foreign_are_refused_by_index_and_nothing_changes(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    other = await factories.partner("Contoso Partners", "contoso.example")
    admin = await factories.admin(org, ADMIN)
    mine = [await factories.customer(org, f"Mine {n}") for n in range(3)]
    for c in mine:
        await factories.assign(admin.admin, c)
    not_assigned = await factories.customer(org, "Not assigned")
    theirs = await factories.customer(other, "Theirs")
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    their_tag = await Tag.create(partner=other, name="Gold", name_key="gold")
    await CustomerTag.create(customer=mine[2], tag=gold)
    before = await everything()

    ids = [
        gid("Customer", mine[0].id),
        gid("Customer", not_assigned.id),  # 1: out of the ADMIN's scope
        gid("Customer", theirs.id),  # 2: another partner's
        gid("Customer", 10**6),  # 3: no such customer
        "junk",  # 4: not an id
        gid("Tag", gold.id),  # 5: an id of something else
        gid("Customer", mine[2].id),
    ]
    for query, name in ((ADD, "addTagToCustomers"), (REMOVE, "removeTagFromCustomers")):
        answer = await data(
            client,
            admin.token,
            query,
            {"input": {"tagId": gid("Tag", gold.id), "customerIds": ids}},
        )
        payload = answer[name]
        assert [(e["field"], e["code"], e["message"]) for e in payload["userErrors"]] == [
            (["input", "customerIds", str(n)], "NOT_FOUND", "No such customer.")
            for n in range(1, 6)
        ]
        assert payload["tag"] is None and payload["changedCount"] is None
        # Another partner's tag, an unknown one: NOT_FOUND alike, at tagId.
        for tag_id in (gid("Tag", their_tag.id), gid("Tag", 10**6), "junk"):
            answer = await data(
                client, admin.token, query, {"input": {"tagId": tag_id, "customerIds": ids[:1]}}
            )
            assert [(e["field"], e["code"]) for e in answer[name]["userErrors"]] == [
                (["input", "tagId"], "NOT_FOUND")
            ]
    assert await everything() == before


async def test_the_tag_maximum_is_all_or_nothing(
    db: Settings, client: httpx.AsyncClient, http_settings: Settings
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, FULL)
    maximum = http_settings.max_tags_per_customer
    roomy, full_up, also_full = [
        await factories.customer(org, n) for n in ("Roomy", "Full", "Also full")
    ]
    tags = [
        await Tag.create(partner=org, name=f"T{n}", name_key=f"t{n}") for n in range(maximum + 1)
    ]
    for c in (full_up, also_full):
        await CustomerTag.bulk_create([CustomerTag(customer=c, tag=t) for t in tags[:maximum]])
    extra = gid("Tag", tags[maximum].id)
    before = await everything()

    answer = await data(
        client, full.token, ADD, {"input": {"tagId": extra, "customerIds": _ids(roomy, full_up)}}
    )
    [error] = answer["addTagToCustomers"]["userErrors"]
    assert (error["field"], error["code"]) == (["input", "customerIds", "1"], "LIMIT_EXCEEDED")
    assert f"maximum of {maximum} tags" in error["message"]
    answer = await data(
        client, full.token, ADD, {"input": {"tagId": extra, "filter": {"search": "full"}}}
    )
    [error] = answer["addTagToCustomers"]["userErrors"]
    assert (error["field"], error["code"]) == (["input", "filter"], "LIMIT_EXCEEDED")
    assert "2 customer(s) the filter matches" in error["message"]
    assert "Also full, Full" in error["message"]
    assert await everything() == before  # not even Roomy got it

    # A tag the full customers carry already is no new tag for them: allowed.
    answer = await data(
        client,
        full.token,
        ADD,
        {"input": {"tagId": gid("Tag", tags[0].id), "customerIds": _ids(roomy, full_up)}},
    )
    assert answer["addTagToCustomers"]["userErrors"] == []
    assert answer["addTagToCustomers"]["changedCount"] == 1


async def test_bad_input_roles_and_setup_are_refused_and_change_nothing(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    team = await factories.team(org)
    acme = await factories.customer(org, "Acme")
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    tag = gid("Tag", gold.id)
    token = team[FULL].token
    before = await everything()

    cases = [
        ({"tagId": tag}, ["input"], "INVALID"),
        ({"tagId": tag, "customerIds": _ids(acme), "filter": {"regions": ["US"]}}, ["input"], "INVALID"),
        ({"tagId": tag, "customerIds": []}, ["input", "customerIds"], "INVALID"),
        ({"tagId": tag, "customerIds": ["junk"] * 10_001}, ["input", "customerIds"], "LIMIT_EXCEEDED"),
        ({"tagId": tag, "filter": {"email": "not an email"}}, ["input", "filter"], "INVALID"),
    ]  # fmt: skip
    for query, name in ((ADD, "addTagToCustomers"), (REMOVE, "removeTagFromCustomers")):
        for variables, field, code in cases:
            answer = await data(client, token, query, {"input": variables})
            assert [(e["field"], e["code"]) for e in answer[name]["userErrors"]] == [(field, code)]
        for role in (READ_ONLY, SALES):
            answer = await data(
                client,
                team[role].token,
                query,
                {"input": {"tagId": tag, "customerIds": _ids(acme)}},
            )
            [error] = answer[name]["userErrors"]
            assert error["code"] == "FORBIDDEN"
            assert error["message"] == (
                "Tagging customers needs the ADMIN or FULL_ADMIN or SALES_FULL_ADMIN role "
                f"(you are {role.value})"
            )
    # A thousand unknown ids: the first hundred by index, the rest counted.
    answer = await data(
        client, token, ADD, {"input": {"tagId": tag, "customerIds": ["junk"] * 1000}}
    )
    errors = answer["addTagToCustomers"]["userErrors"]
    assert len(errors) == 101
    assert errors[99]["field"] == ["input", "customerIds", "99"]
    assert errors[100]["field"] == ["input", "customerIds"] and "900 more" in errors[100]["message"]
    assert await everything() == before

    pending = await factories.partner("Pending Partners", "pending.example", setup_completed=False)
    pending_full = await factories.admin(pending, FULL)
    theirs = await factories.customer(pending, "Pending customer")
    their_tag = await Tag.create(partner=pending, name="Gold", name_key="gold")
    before = await everything()
    for query, name in ((ADD, "addTagToCustomers"), (REMOVE, "removeTagFromCustomers")):
        variables = {"tagId": gid("Tag", their_tag.id), "customerIds": _ids(theirs)}
        [error] = (await data(client, pending_full.token, query, {"input": variables}))[name][
            "userErrors"
        ]
        assert error["code"] == "FORBIDDEN" and "setup is pending" in error["message"]
    assert await everything() == before


async def test_ten_thousand_customers_at_once_and_not_one_more(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, FULL)
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    tag = gid("Tag", gold.id)
    eu = await _many(org, 10_000, Region.EU)
    await factories.customer(org, "One in the US", Region.US)

    answer = await data(
        client,
        full.token,
        ADD,
        {"input": {"tagId": tag, "customerIds": [gid("Customer", i) for i in eu]}},
    )
    assert answer["addTagToCustomers"]["changedCount"] == 10_000
    assert await CustomerTag.filter(tag_id=gold.id).count() == 10_000
    answer = await data(
        client, full.token, REMOVE, {"input": {"tagId": tag, "filter": {"regions": ["EU"]}}}
    )
    assert answer["removeTagFromCustomers"]["changedCount"] == 10_000
    assert await CustomerTag.filter(tag_id=gold.id).count() == 0

    # Every customer now matches more than 10,000: refused, nothing changed.
    before = await everything()
    for query, name in ((ADD, "addTagToCustomers"), (REMOVE, "removeTagFromCustomers")):
        answer = await data(client, full.token, query, {"input": {"tagId": tag, "filter": {}}})
        [error] = answer[name]["userErrors"]
        assert (error["field"], error["code"]) == (["input", "filter"], "LIMIT_EXCEEDED")
        assert "more than 10000 customers" in error["message"]
    assert await everything() == before


async def test_the_statements_of_a_call_do_not_grow_with_its_customers(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, FULL)
    await data(
        client, full.token, "{ viewer { email } }"
    )  # the token's first use writes last_used_at
    gold = await Tag.create(partner=org, name="Gold", name_key="gold")
    few = await _many(org, 3, Region.US)
    many = await _many(org, 400, Region.EU)
    costs: dict[str, list[int]] = {"ids": [], "filter": []}
    for ids, region in ((few, "US"), (many, "EU")):
        for query in (ADD, REMOVE):
            with counting_statements() as statements:
                variables = {
                    "tagId": gid("Tag", gold.id),
                    "customerIds": [gid("Customer", i) for i in ids],
                }
                await data(client, full.token, query, {"input": variables})
            costs["ids"].append(len(statements))
            with counting_statements() as statements:
                variables = {"tagId": gid("Tag", gold.id), "filter": {"regions": [region]}}
                await data(client, full.token, query, {"input": variables})
            costs["filter"].append(len(statements))
    # [add, remove] for 3 customers == [add, remove] for 400, by ids and by filter
    for way, cost in costs.items():
        assert cost[:2] == cost[2:], (way, cost)
        assert max(cost) <= 10, (way, cost)
