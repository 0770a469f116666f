"""The customers page resolved in a few passes: its relations are read level by
level before any field resolves, and the fields then answer from memory, so
the asyncio tasks and resolver coroutines of a page do not grow with its rows;
and what the passes answer is what the per-field DataLoaders answer."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from tests.graphql_client import data
from tests.test_customer_detail import counting_statements

SCHEMA_DIR = str(Path(__file__).resolve().parent.parent / "schema")
CO_COROUTINE = 0x80

# The SPA list view (tests/test_boundary.py SPA_PAGE), sized by $first.
SPA_PAGE = """query($first: Int) { customers(first: $first) { totalCount
  pageInfo { hasNextPage endCursor }
  nodes { id name orgId region statuses products
    licenseTotals { total assigned available overage } tags { id name }
    subscriptions(first: 10) { nodes { id subscriptionId status endDate
      licenses { product quantity assigned } } } } } }"""

# The same selection through a named fragment, an inline fragment and `edges`.
SPA_PAGE_FRAGMENTS = """query($first: Int) { customers(first: $first) { totalCount
  pageInfo { hasNextPage endCursor }
  edges { node { ...Row } } } }
fragment Row on Customer { id name orgId region statuses
  ... on Customer { products licenseTotals { total assigned available overage } }
  ... on Node { id } tags { id name }
  subscriptions(first: 10) { nodes { ...Sub } } }
fragment Sub on CustomerSubscription { id subscriptionId status endDate
  ... on CustomerSubscription { licenses { product quantity assigned } } }"""

# Every field of a customer whose resolvers the page reader serves, nested ones too.
EVERY_FIELD = """id name orgId externalId region location createdAt lastAdminActivityAt
  statuses products managedBy launchUrl
  tags { id name description createdAt customerCount createdBy { id email role } }
  licenseTotals { total assigned used available overage }
  subscriptions(first: 10) { totalCount pageInfo { hasNextPage endCursor }
    nodes { id subscriptionId kind status startDate endDate autoRenew addedAt
      daysSinceAdded daysUntilEnd products customer { id name statuses }
      licenses { licenseType product quantity assigned used available overage }
      totals { total assigned used available overage }
      invoice { number issuedOn amount currency paid }
      orders { orderNumber placedAt action description } } }
  trials { id trialId status startDate endDate durationDays daysRemaining
    products { product licenses } customer { id products } }
  partnerAdmins { role assignedAt admin { id email role displayName lastLoginAt createdAt removedAt } }
  externalAdmins { email grantedAt }
  locations { id name country }"""

PAGE_EVERY_FIELD = f"""query($first: Int, $after: String) {{
  customers(first: $first, after: $after) {{ pageInfo {{ endCursor }}
  nodes {{ {EVERY_FIELD} }} }} }}"""
# A customer reached from a subscription: its fields all go through the DataLoaders.
REACHED = f"""query($id: ID!) {{ node(id: $id) {{ ... on CustomerSubscription {{
  customer {{ {EVERY_FIELD} }} }} }} }}"""
# The object types of schema/ a customer's fields reach.
TYPES = ("Customer.", "CustomerSubscription.", "Trial.", "Tag.", "Admin.", "ExternalAdmin.")
BY_ID = f"query($id: ID!) {{ customer(id: $id) {{ {EVERY_FIELD} }} }}"


@contextmanager
def counting_async_work() -> Iterator[dict[str, list[str]]]:
    """The asyncio tasks created and the coroutines of schema/ (resolvers and
    their helpers) started while the block runs, on this thread's loop."""
    loop = asyncio.get_running_loop()
    seen: dict[str, list[str]] = {"tasks": [], "coroutines": []}
    frames: dict[int, FrameType] = {}  # held, so that no two coroutines share an id
    previous_factory = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task:
        seen["tasks"].append(getattr(coro, "__qualname__", repr(coro)))
        if previous_factory is not None:
            return previous_factory(loop, coro, **kwargs)  # type: ignore[return-value]
        return asyncio.Task(coro, loop=loop, **kwargs)

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        code = frame.f_code
        # Each coroutine once (its frame is entered again at every resumption).
        if (
            event == "call"
            and code.co_flags & CO_COROUTINE
            and code.co_filename.startswith(SCHEMA_DIR)
            and id(frame) not in frames
        ):
            frames[id(frame)] = frame
            seen["coroutines"].append(code.co_qualname)

    loop.set_task_factory(factory)
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        loop.set_task_factory(previous_factory)
        frames.clear()


@pytest.fixture
async def demo_token(db) -> str:
    from app.demo import demo_admins, load_demo

    await load_demo(240, seed=2, now=datetime.now(UTC))
    return demo_admins(2)[0].token  # full@northwind.example: 120 customers


async def _page_work(
    client: httpx.AsyncClient, token: str, query: str, first: int
) -> tuple[Any, dict[str, list[str]], int]:
    with counting_statements() as statements, counting_async_work() as work:
        answer = await data(client, token, query, {"first": first})
    return answer, work, len(statements)


def _rows(answer: Any) -> list[dict]:
    customers = answer["customers"]
    return customers["nodes"] if "nodes" in customers else [e["node"] for e in customers["edges"]]


async def test_a_page_creates_the_same_tasks_and_coroutines_for_5_and_50_rows(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    await data(client, demo_token, "{ viewer { email } }")  # first use writes last_used_at
    for query in (SPA_PAGE, SPA_PAGE_FRAGMENTS):
        small, small_work, small_statements = await _page_work(client, demo_token, query, 5)
        large, large_work, large_statements = await _page_work(client, demo_token, query, 50)
        rows = _rows(large)
        assert len(_rows(small)) == 5 and len(rows) == 50
        assert sum(len(r["subscriptions"]["nodes"]) for r in rows) > 50  # a real nested page
        assert large_work["tasks"] == small_work["tasks"], (small_work, large_work)
        assert large_work["coroutines"] == small_work["coroutines"], (small_work, large_work)
        assert small_statements == large_statements
        # The page's only resolver coroutine is the connection's own.
        assert large_work["coroutines"].count("resolve_customers") == 1
        assert not [c for c in large_work["coroutines"] if c.startswith(TYPES)]


# The page of 100 with every nested field (bench/customer_list.py), its tags'
# customer counts and creators too, sized by $first.
PAGE_OF_100 = """query($first: Int) { customers(first: $first) { totalCount nodes {
  id name orgId statuses products managedBy launchUrl
  tags { name customerCount createdBy { email } }
  licenseTotals { total assigned used available overage }
  subscriptions(first: 5) { nodes { subscriptionId status licenses { licenseType quantity }
    totals { total } invoice { number } orders { orderNumber } } }
  trials { trialId products { product licenses } } partnerAdmins { role admin { email } }
  locations { name } } } }"""

# Every customer the viewer sees, a page at a time, with its tags' names.
TAG_NAMES = """query($after: String) { customers(first: 100, after: $after) { totalCount
  pageInfo { hasNextPage endCursor } nodes { tags { name } } } }"""


def _not_pool(tasks: list[str]) -> list[str]:
    return [t for t in tasks if t != "PoolConnectionHolder.release"]


async def test_tag_counts_and_creators_add_no_task_per_row(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    """Tags' customerCount and createdBy answer from the page reader's passes: the
    page of 100 starts the same tasks and coroutines as a page of 5, two
    statements more than without them, and the counts are those of the tags'
    customers the viewer sees."""
    await data(client, demo_token, "{ viewer { email } }")  # first use writes last_used_at
    small, small_work, _ = await _page_work(client, demo_token, PAGE_OF_100, 5)
    large, large_work, large_statements = await _page_work(client, demo_token, PAGE_OF_100, 100)
    rows = _rows(large)
    assert len(_rows(small)) == 5 and len(rows) == 100
    tags = [t for r in rows for t in r["tags"]]
    assert len(tags) > 50 and all(t["createdBy"] for t in tags)  # a real page of tags
    # The 5 rows may have no trial, hence no trial_product statement, and
    # asyncpg's pool starts a task for each statement's connection release.
    assert _not_pool(large_work["tasks"]) == _not_pool(small_work["tasks"]), (
        small_work,
        large_work,
    )
    assert large_work["coroutines"] == small_work["coroutines"], (small_work, large_work)
    assert not [c for c in large_work["coroutines"] if c.startswith(TYPES)]
    # Two statements for them whatever the page's size: the counts, and the admins.
    plain_query = PAGE_OF_100.replace("customerCount createdBy { email }", "")
    plain, _, plain_statements = await _page_work(client, demo_token, plain_query, 100)
    assert large_statements == plain_statements + 2
    assert [t["name"] for r in _rows(plain) for t in r["tags"]] == [t["name"] for t in tags]
    # Each count, computed independently: the viewer's customers carrying the tag.
    carried: dict[str, int] = {}
    seen, after = 0, None
    while True:
        page = await data(client, demo_token, TAG_NAMES, {"after": after})
        for node in page["customers"]["nodes"]:
            seen += 1
            for tag in node["tags"]:
                carried[tag["name"]] = carried.get(tag["name"], 0) + 1
        if not page["customers"]["pageInfo"]["hasNextPage"]:
            break
        after = page["customers"]["pageInfo"]["endCursor"]
    assert seen == page["customers"]["totalCount"] > 100
    assert {t["name"]: t["customerCount"] for t in tags} == {
        t["name"]: carried[t["name"]] for t in tags
    }
    # A tag asked on its own answers through its DataLoaders, the same values.
    alone = await data(client, demo_token, "{ tags { name customerCount createdBy { email } } }")
    by_name = {t["name"]: t for t in alone["tags"]}
    assert all(by_name[t["name"]] == t for t in tags)


async def test_the_fragment_page_answers_exactly_the_plain_page(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    plain = await data(client, demo_token, SPA_PAGE, {"first": 50})
    through_fragments = await data(client, demo_token, SPA_PAGE_FRAGMENTS, {"first": 50})
    edges = through_fragments["customers"].pop("edges")
    assert plain["customers"].pop("nodes") == [e["node"] for e in edges]
    assert plain == through_fragments


async def test_the_passes_answer_what_the_dataloaders_answer(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    """Every field of every customer of a page, and of the same customer asked by
    id, equals the answer for that customer reached from one of its
    subscriptions, where each field reads through its DataLoader."""
    nodes: list[dict] = []
    after = None
    for _ in range(2):
        variables = {"first": 40, "after": after}
        page = await data(client, demo_token, PAGE_EVERY_FIELD, variables)
        nodes += page["customers"]["nodes"]
        after = page["customers"]["pageInfo"]["endCursor"]
    assert len(nodes) == 80
    with_subs = [n for n in nodes if n["subscriptions"]["nodes"]]
    assert len(with_subs) > 20
    checked = 0
    for node in with_subs[:25]:
        sub_id = node["subscriptions"]["nodes"][0]["id"]
        reached = await data(client, demo_token, REACHED, {"id": sub_id})
        assert reached["node"]["customer"] == node
        by_id = await data(client, demo_token, BY_ID, {"id": node["id"]})
        assert by_id["customer"] == node
        checked += 1
    assert checked == 25
    # The demo's page covers what the comparison is about.
    assert any(n["trials"] for n in nodes) and any(n["tags"] for n in nodes)
    assert any(n["partnerAdmins"] for n in nodes) and any(n["locations"] for n in nodes)
    assert any(s["invoice"] for n in nodes for s in n["subscriptions"]["nodes"])
    assert any(s["orders"] for n in nodes for s in n["subscriptions"]["nodes"])


async def test_a_customer_by_id_or_node_resolves_every_field_from_memory(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    """`customer(id:)` and `node(id:)` read what their selection asks in one pass
    too: the only resolver coroutines are the lookup's own."""
    page = await data(client, demo_token, PAGE_EVERY_FIELD, {"first": 40})
    node = next(n for n in page["customers"]["nodes"] if n["trials"] and n["subscriptions"])
    as_node = f"""query($id: ID!) {{ node(id: $id) {{ ... on Customer {{ {EVERY_FIELD} }} }} }}"""
    for query, key, lookup in (
        (BY_ID, "customer", ["resolve_customer", "load_customer"]),
        (as_node, "node", ["resolve_node", "load_customer"]),
    ):
        with counting_async_work() as work:
            answer = await data(client, demo_token, query, {"id": node["id"]})
        assert answer[key] == node
        resolvers = [c for c in work["coroutines"] if c.startswith(TYPES) or c in lookup]
        assert resolvers == lookup, work


async def test_the_spa_page_reads_in_five_statements(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    """The viewer's token; the total, the page's customers and their statuses
    (one statement); their subscriptions; the subscriptions' license lines;
    their tags. Without statuses asked, the page's statement does not compute them."""
    await data(client, demo_token, "{ viewer { email } }")  # first use writes last_used_at
    with counting_statements() as statements:
        answer = await data(client, demo_token, SPA_PAGE, {"first": 50})
    assert len(_rows(answer)) == 50
    assert len(statements) == 5, statements
    page = next(s for s in statements if "total_count" in s)
    assert "CASE WHEN" in page
    without = SPA_PAGE.replace(" statuses ", " ")
    with counting_statements() as statements:
        plain = await data(client, demo_token, without, {"first": 50})
    assert len(statements) == 5, statements
    assert "CASE WHEN" not in next(s for s in statements if "total_count" in s)
    assert plain["customers"]["totalCount"] == answer["customers"]["totalCount"]
    for row, other in zip(_rows(plain), _rows(answer), strict=True):
        assert row == {k: v for k, v in other.items() if k != "statuses"}


@pytest.mark.parametrize("statuses", [" statuses", ""])
async def test_pages_past_the_end_and_empty_lists_keep_their_total(
    client: httpx.AsyncClient, demo_token: str, statuses: str
) -> None:
    """The page's statement answers the total even where no customer is on the
    page: past the last page, and for a filter nothing matches."""
    query = f"""query($first: Int, $after: String, $filter: CustomerFilter) {{
      customers(first: $first, after: $after, filter: $filter) {{ totalCount
        pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
        nodes {{ id name{statuses} }} }} }}"""
    seen: list[dict] = []
    after = None
    total = (await data(client, demo_token, query, {"first": 1}))["customers"]["totalCount"]
    assert total > 100  # the demo partner's 120 customers, and a granted one
    for _ in range(5):
        page = (await data(client, demo_token, query, {"first": 100, "after": after}))["customers"]
        assert page["totalCount"] == total
        seen += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == total and len({n["id"] for n in seen}) == total
    past = (
        await data(
            client, demo_token, query, {"first": 100, "after": page["pageInfo"]["endCursor"]}
        )
    )["customers"]
    assert past == {
        "totalCount": total,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": True,
            "startCursor": None,
            "endCursor": None,
        },
        "nodes": [],
    }
    nothing = (
        await data(client, demo_token, query, {"filter": {"search": "no such customer at all"}})
    )["customers"]
    assert nothing == {
        "totalCount": 0,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "nodes": [],
    }
