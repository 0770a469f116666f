"""Compiled page plans (schema/page_plan.py): every document answers, byte for
byte, what graphql-core's own completion answers, and the plan really ran.

Each document is sent through the HTTP app twice, with plans on and off
(`page_plan.enabled`); the bodies must be equal once `extensions.cost` (the
throttle's bucket, which changes between requests) is set aside, and the
plan's counters say whether it completed the page or gave it back.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema import page_plan
from tests.graphql_client import gql
from tests.test_boundary import SPA_PAGE
from tests.test_customer_page_passes import EVERY_FIELD, SPA_PAGE_FRAGMENTS

# bench/customer_list.py's PAGE_QUERY: the page of 100 with every nested field.
PAGE_QUERY = """{ customers(first: 100) { totalCount nodes {
  id name orgId statuses products managedBy launchUrl
  tags { name customerCount } licenseTotals { total assigned used available overage }
  subscriptions(first: 5) { nodes { subscriptionId status licenses { licenseType quantity }
    totals { total } invoice { number } orders { orderNumber } } }
  trials { trialId products { product licenses } } partnerAdmins { role admin { email } }
  locations { name } } } }"""


@pytest.fixture
async def demo_token(db: Any) -> str:
    from app.demo import demo_admins, load_demo

    await load_demo(120, seed=3, now=datetime.now(UTC))
    return demo_admins(3)[0].token  # full@northwind.example: half of them


@pytest.fixture
def http_settings(db: Any, redis_url: str) -> Any:
    """The throttle opened wide: each document runs twice, pages of every field."""
    return db.model_copy(
        update={
            "redis_url": redis_url,
            "throttle_capacity": 100_000_000,
            "throttle_restore_rate": 10_000_000.0,
        }
    )


def _without_cost(content: bytes) -> bytes:
    """The body with `extensions.cost` taken out (the only part that changes)."""
    body = orjson.loads(content)
    extensions = body.get("extensions") or {}
    extensions.pop("cost", None)
    if not extensions:
        body.pop("extensions", None)
    # The body kept its key order through loads; `data` is encoded as the app
    # encodes it, so equal bytes here are equal bytes there.
    return orjson.dumps(body)


class Counted:
    def __init__(self) -> None:
        self.before = dict(page_plan.STATS)

    def delta(self) -> dict[str, int]:
        return {k: page_plan.STATS[k] - self.before[k] for k in page_plan.STATS}


async def _both(
    client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> tuple[bytes, bytes, dict[str, int], int]:
    """(planned body, graphql-core body, plan counters of the planned request, status)."""
    page_plan.enabled = False
    try:
        plain = await gql(client, token, query, variables)
    finally:
        page_plan.enabled = True
    counted = Counted()
    planned = await gql(client, token, query, variables)
    assert planned.status_code == plain.status_code, (planned.text, plain.text)
    return (
        _without_cost(planned.content),
        _without_cost(plain.content),
        counted.delta(),
        (planned.status_code),
    )


async def assert_planned(
    client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> dict:
    planned, plain, delta, status = await _both(client, token, query, variables)
    assert planned == plain
    assert status == 200
    assert delta["planned"] >= 1 and delta["fallback"] == 0 and delta["unplanned"] == 0, delta
    return orjson.loads(planned)


async def assert_same_not_planned(
    client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> dict:
    planned, plain, delta, _ = await _both(client, token, query, variables)
    assert planned == plain
    assert delta["planned"] == 0, delta
    return orjson.loads(planned)


# Documents the plan completes, with their variables.
CORPUS: list[tuple[str, dict[str, Any]]] = [
    (SPA_PAGE, {}),
    (PAGE_QUERY, {}),
    (SPA_PAGE_FRAGMENTS, {"first": 20}),
    (
        """query($first: Int) { customers(first: $first) { totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id name orgId externalId region location createdAt
          lastAdminActivityAt statuses products managedBy launchUrl
          tags { id name description createdAt customerCount }
          licenseTotals { total assigned used available overage }
          subscriptions(first: 10) { totalCount pageInfo { hasNextPage endCursor }
            edges { cursor node { id subscriptionId kind status startDate endDate autoRenew
              addedAt daysSinceAdded daysUntilEnd products customer { id name statuses }
              licenses { licenseType product quantity assigned used available overage }
              totals { total assigned used available overage }
              invoice { number issuedOn amount currency paid }
              orders { orderNumber placedAt action description } } } }
          trials { id trialId status startDate endDate durationDays daysRemaining
            products { product licenses } customer { id products } }
          locations { id name country } externalAdmins { email grantedAt } } } } }""",
        {"first": 60},
    ),
    # Aliases, the same field twice under two names with other arguments, __typename.
    (
        """{ __typename list: customers(first: 7) { __typename count: totalCount
        rows: nodes { __typename key: id id title: name name
          few: subscriptions(first: 1) { nodes { id } }
          many: subscriptions(first: 3) { n: totalCount nodes { __typename status } } } } }""",
        {},
    ),
    # Named fragments nested in each other, inline fragments with and without a type.
    (
        """query { customers(first: 9) { ...Conn } }
        fragment Conn on CustomerConnection { totalCount nodes { ...Cust ... { region } } }
        fragment Cust on Customer { id ... on Node { id } ...Subs }
        fragment Subs on Customer { subscriptions { nodes { ... on Node { id }
          ... on CustomerSubscription { status totals { total } } } } }""",
        {},
    ),
    # @skip / @include by literals and by variables.
    (
        """query($yes: Boolean!, $no: Boolean!, $n: Int) { customers(first: 5) {
        totalCount @skip(if: $yes) nodes { id name @include(if: $no) region @include(if: $yes)
          subscriptions(first: $n) @skip(if: false) { nodes { id status @skip(if: true) } }
          ... on Customer @include(if: $yes) { statuses } ...F @skip(if: $no) } } }
        fragment F on Customer { products }""",
        {"yes": True, "no": False, "n": 2},
    ),
    (
        """query($yes: Boolean!, $no: Boolean!, $n: Int) { customers(first: 5) {
        totalCount @skip(if: $yes) nodes { id name @include(if: $no) region @include(if: $yes)
          subscriptions(first: $n) @skip(if: false) { nodes { id status @skip(if: true) } }
          ... on Customer @include(if: $yes) { statuses } ...F @skip(if: $no) } } }
        fragment F on Customer { products }""",
        {"yes": False, "no": True, "n": 4},
    ),
    # Filters and orderings.
    (
        """query($f: CustomerFilter, $o: CustomerOrder) { customers(first: 15, filter: $f,
        orderBy: $o) { totalCount nodes { name statuses products region } } }""",
        {"f": {"statuses": ["ACTIVE"]}, "o": {"field": "NAME", "direction": "DESC"}},
    ),
    (
        """{ customers(first: 10, filter: {search: "a", regions: [US, EU]}) {
        totalCount nodes { name region } } }""",
        {},
    ),
]


async def test_the_corpus_answers_as_graphql_core_does(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    for query, variables in CORPUS:
        await assert_planned(client, demo_token, query, variables)
    # The page was a real one: nested rows and subscriptions.
    body = await assert_planned(client, demo_token, SPA_PAGE)
    rows = body["data"]["customers"]["nodes"]
    assert len(rows) == 50 and sum(len(r["subscriptions"]["nodes"]) for r in rows) > 50


async def test_pages_after_a_cursor_and_a_customer_by_id(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    query = """query($after: String) { customers(first: 8, after: $after) { totalCount
      pageInfo { hasNextPage endCursor } nodes { id name statuses } } }"""
    after, ids = None, []
    while True:
        body = await assert_planned(client, demo_token, query, {"after": after})
        page = body["data"]["customers"]
        ids += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(ids) == len(set(ids)) == page["totalCount"] > 50
    by_id = f"query($id: ID!) {{ customer(id: $id) {{ {EVERY_FIELD} }} }}"
    for customer_id in ids[:5]:
        # createdBy / partnerAdmins reach Admin, planned too when its fields are sync.
        planned, plain, _, _ = await _both(client, demo_token, by_id, {"id": customer_id})
        assert planned == plain
        await assert_planned(
            client,
            demo_token,
            "query($id: ID!) { customer(id: $id) { id name statuses subscriptions { nodes { id } } } }",
            {"id": customer_id},
        )
    # Not in scope or not an id: null, planned too.
    await assert_planned(client, demo_token, '{ customer(id: "nope") { id } }')


async def test_errors_answer_as_today(client: httpx.AsyncClient, demo_token: str) -> None:
    # Bad cursor and `first` out of range at the root: the root resolver's errors.
    for query in (
        '{ customers(first: 5, after: "not-a-cursor") { nodes { id } } }',
        "{ customers(first: 100000) { nodes { id } } }",
        "{ customers(first: -1) { nodes { id } } }",
    ):
        planned, plain, _, _ = await _both(client, demo_token, query)
        assert planned == plain
        assert b'"errors"' in planned
    # An error inside the page (a nested `first` out of range): given back to
    # graphql-core, which answers the error at its path.
    planned, plain, delta, _ = await _both(
        client,
        demo_token,
        "{ customers(first: 5) { nodes { id subscriptions(first: 1000) { nodes { id } } } } }",
    )
    assert planned == plain and b'"errors"' in planned
    assert delta["fallback"] == 1, delta
    # A nested bad cursor, and a control character refused by the strict-text check.
    for after in ("junk", "a\u0001b"):
        planned, plain, delta, _ = await _both(
            client,
            demo_token,
            "query($a: String) { customers(first: 3) { nodes { subscriptions(after: $a) { nodes { id } } } } }",
            {"a": after},
        )
        assert planned == plain and b'"errors"' in planned, planned
        assert delta["fallback"] == 1
    # Strict text at the root: the root resolver's own check, planned or not.
    planned, plain, _, _ = await _both(
        client,
        demo_token,
        "query($s: String) { customers(filter: {search: $s}) { totalCount } }",
        {"s": "tab\there"},
    )
    assert planned == plain and b'"errors"' in planned


async def test_unsupported_documents_fall_back(client: httpx.AsyncClient, demo_token: str) -> None:
    for query in (
        # Another root field beside the page.
        "{ viewer { email } customers(first: 3) { nodes { id } } }",
        # An async resolver inside the page (ExternalAdmin.grantedBy, Trial.startedBy).
        "{ customers(first: 20) { nodes { externalAdmins { grantedBy { email } } } } }",
        "{ customers(first: 20) { nodes { trials { startedBy { email } } } } }",
        # node(id:) returns an interface.
        '{ node(id: "x") { id } }',
        # Introspection.
        "{ __schema { queryType { name } } }",
    ):
        await assert_same_not_planned(client, demo_token, query)
    # A mutation is never planned.
    counted = Counted()
    await gql(
        client,
        demo_token,
        'mutation { createTag(input: {name: "plan"}) { tag { name } userErrors { code } } }',
    )
    assert counted.delta()["planned"] == 0


# ------------------------------------------------------- generated documents

# Leaf fields of Customer, and object fields with the selections drawn under them.
CUSTOMER_LEAVES = [
    "id",
    "name",
    "orgId",
    "externalId",
    "region",
    "location",
    "createdAt",
    "lastAdminActivityAt",
    "statuses",
    "products",
    "managedBy",
    "launchUrl",
    "__typename",
]
SUB_LEAVES = [
    "id",
    "subscriptionId",
    "kind",
    "status",
    "startDate",
    "endDate",
    "autoRenew",
    "addedAt",
    "daysSinceAdded",
    "daysUntilEnd",
    "products",
    "__typename",
]
OBJECTS = {
    "licenseTotals": ["total", "assigned", "used", "available", "overage"],
    "tags": ["id", "name", "description", "createdAt", "customerCount"],
    "trials": ["id", "trialId", "status", "startDate", "endDate", "durationDays", "daysRemaining"],
    "locations": ["id", "name", "country"],
    "externalAdmins": ["email", "grantedAt"],
}
ALIASES = st.sampled_from(["", "a: ", "b: "])


@st.composite
def _pick(draw: st.DrawFn, names: list[str], at_least: int = 1) -> str:
    chosen = draw(st.lists(st.sampled_from(names), min_size=at_least, max_size=6))
    parts = []
    for name in chosen:
        alias = draw(ALIASES)
        # An alias may not name two different fields.
        parts.append(f"{alias}{name}" if not alias else f"{alias.strip(': ')}_{name}: {name}")
    return " ".join(parts)


@st.composite
def customer_selections(draw: st.DrawFn) -> str:
    parts = [draw(_pick(CUSTOMER_LEAVES))]
    for name, leaves in OBJECTS.items():
        if draw(st.booleans()):
            parts.append(f"{name} {{ {draw(_pick(leaves))} }}")
    if draw(st.booleans()):
        first = draw(st.sampled_from(["", "(first: 2)", "(first: 0)", "(first: 50)"]))
        inner = draw(_pick(SUB_LEAVES))
        if draw(st.booleans()):
            inner += (
                f" licenses {{ {draw(_pick(['licenseType', 'product', 'quantity', 'used']))} }}"
            )
        if draw(st.booleans()):
            inner += " customer { id name }"
        parts.append(f"subscriptions{first} {{ totalCount nodes {{ {inner} }} }}")
    if draw(st.booleans()):
        parts.append(f"... on Customer {{ {draw(_pick(CUSTOMER_LEAVES))} }}")
    if draw(st.booleans()):
        parts.append("...F")
    return " ".join(parts)


@st.composite
def documents(draw: st.DrawFn) -> str:
    selection = draw(customer_selections())
    fragment = f"fragment F on Customer {{ {draw(_pick(CUSTOMER_LEAVES))} }}"
    if "...F" not in selection:
        fragment = ""
    first = draw(st.integers(min_value=0, max_value=30))
    shape = draw(st.sampled_from(["nodes", "edges"]))
    inner = (
        f"nodes {{ {selection} }}"
        if shape == "nodes"
        else f"edges {{ cursor node {{ {selection} }} }}"
    )
    return f"{{ customers(first: {first}) {{ totalCount {inner} }} }} {fragment}"


async def test_generated_documents_answer_as_graphql_core_does(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    """Documents drawn from Customer's fields (hypothesis), each answered both ways."""
    drawn: list[str] = []

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(documents())
    def collect(document: str) -> None:
        drawn.append(document)

    collect()
    assert len(drawn) >= 20
    for document in drawn:
        planned, plain, delta, status = await _both(client, demo_token, document)
        assert planned == plain, document
        if status == 200 and b'"errors"' not in planned:
            assert delta["planned"] == 1 and delta["fallback"] == 0, (document, delta)


async def test_documents_from_the_schema_answer_as_graphql_core_does(
    client: httpx.AsyncClient, demo_token: str
) -> None:
    """Documents hypothesis-graphql draws from the served schema under `customers`
    and `customer(id:)` (any nested field, any argument): both ways, the same
    bytes, whether the plan completes them, gives them back or is not used."""
    import hypothesis_graphql

    from schema.root import schema

    drawn: list[str] = []

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(hypothesis_graphql.queries(str(schema), fields=["customers", "customer"]))
    def collect(document: str) -> None:
        drawn.append(document)

    collect()
    assert len(drawn) >= 20
    outcomes = {"planned": 0, "fallback": 0, "unplanned": 0}
    for document in drawn:
        planned, plain, delta, _ = await _both(client, demo_token, document)
        assert planned == plain, document
        for name, count in delta.items():
            outcomes[name] += count
    # The drawn documents reach the plan, and not only its refusals.
    assert outcomes["planned"] > 0, outcomes


async def test_plans_are_kept_per_document_and_variables_within_the_bound(
    client: httpx.AsyncClient, demo_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan depends on the variables of nested arguments and directives: each
    value answers its own page; the cache never holds more than its bound."""
    monkeypatch.setattr(page_plan, "PLAN_CACHE_SIZE", 3)
    monkeypatch.setattr(page_plan, "_PLANS", OrderedDict())  # earlier tests' plans aside
    query = """query($n: Int, $names: Boolean!) { customers(first: 4) { nodes {
      name @include(if: $names) subscriptions(first: $n) { nodes { id } } } } }"""
    for n in (1, 2, 3, 4, 2, 1):
        for names in (True, False):
            body = await assert_planned(client, demo_token, query, {"n": n, "names": names})
            for node in body["data"]["customers"]["nodes"]:
                assert len(node["subscriptions"]["nodes"]) <= n
                assert ("name" in node) is names
            assert len(page_plan._PLANS) <= 3
