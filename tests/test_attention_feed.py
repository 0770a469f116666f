"""Reading the attention feed (issue 16 items 2 and 5): `attentionEvents` (a
Relay connection, newest first, in the viewer's scope, filtered by type,
customer and time) and the `attentionEvents` subscription over
graphql-transport-ws on a real server.

Events are written as every writer writes them (app/domain/attention.py
`write_events`); what each viewer must see is worked out here from the scope
rules of SPEC.md (a table of customers per role, grants included), not from
app/domain/access.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from tortoise.transactions import in_transaction

from app.auth import hash_token
from app.config import Settings
from app.db import close_database, open_database
from app.domain.access import Viewer, holds_grant, viewer_of
from app.domain.attention import NewEvent, write_events
from app.domain.attention_feed import EventFollower, follow_events
from app.domain.ids import decode_global_id
from app.domain.ids import encode_global_id as gid
from app.domain.pagination import encode_cursor
from app.models.admins import Admin, ApiToken, CustomerAssignment, ExternalAdminGrant
from app.models.customers import Customer
from app.models.enums import AttentionEventType, CustomerStatus
from app.models.organization import PartnerOrganization
from app.outage import database_unreachable
from tests import factories
from tests.cli_process import cli_env, free_port, run_cli
from tests.conftest import empty_all_tables
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.fault_cluster import Postgres
from tests.graphql_client import data, gql
from tests.test_serve import running, wait_healthy

T = AttentionEventType
CONTOSO_FULL = "contoso FULL_ADMIN"
BASE = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

# Who sees which customer (SPEC.md roles; external-admin grants read-only).
OWN = {"another_admins", "assigned", "sales_created", "sales_assigned"}
SEES: dict[str, set[str]] = {
    FULL.value: OWN,
    READ_ONLY.value: OWN | {"granted"},  # an all-customer role holding a grant
    SALES_FULL.value: OWN,
    ADMIN.value: {"assigned", "granted"},
    SALES.value: {"sales_created", "sales_assigned"},
    CONTOSO_FULL: {"granted", "contoso_only"},
}

LIST = """
query($first: Int, $after: String, $types: [AttentionEventType!], $customerIds: [ID!],
      $since: DateTime) {
  attentionEvents(first: $first, after: $after, types: $types, customerIds: $customerIds,
                  since: $since) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges {
      cursor
      node {
        id type status occurredAt customer { id name }
        trialEndDate daysLeft family week poorCallSharePercent previousPoorCallSharePercent
      }
    }
  }
}
"""

# One detail per type, as the writers store them (plain values, camelCase keys).
DETAILS: dict[AttentionEventType, dict[str, Any]] = {
    T.STATUS_GAINED: {"status": "EXPIRING_SOON"},
    T.STATUS_LOST: {"status": "TRIAL"},
    T.TRIAL_ENDING: {"trialId": 7, "endDate": "2026-12-01", "daysLeft": 11},
    T.LOW_LICENSE_ASSIGNMENT: {"family": "CALLING"},
    T.CALL_QUALITY_DECLINING: {
        "week": "2026-11-16",
        "poorShare": 12.5,
        "previousPoorShare": 4.0,
        "risePoints": 8.5,
    },
}
STATUS_OF = {T.STATUS_GAINED: CustomerStatus.EXPIRING_SOON, T.STATUS_LOST: CustomerStatus.TRIAL}


def new_event(customer: Customer, kind: AttentionEventType, at: datetime) -> NewEvent:
    return NewEvent(
        partner_id=customer.partner_id,  # type: ignore[attr-defined]
        customer_id=customer.id,
        type=kind,
        occurred_at=at,
        status=STATUS_OF.get(kind),
        detail=DETAILS[kind],
    )


@dataclass
class Written:
    id: int
    customer: str
    type: AttentionEventType
    at: datetime


@dataclass
class FeedWorld:
    northwind: PartnerOrganization
    contoso: PartnerOrganization
    tokens: dict[str, str]  # viewer name (a role, or CONTOSO_FULL) -> API token
    customers: dict[str, Customer]
    written: list[Written] = field(default_factory=list)

    async def write(self, *events: tuple[str, AttentionEventType, datetime]) -> list[Written]:
        """Write events (customer key, type, time) in one call, as a writer does."""
        done = await write_events(
            [new_event(self.customers[key], kind, at) for key, kind, at in events]
        )
        assert len(done) == len(events)
        made = [
            Written(w.id, key, kind, at) for w, (key, kind, at) in zip(done, events, strict=True)
        ]
        self.written += made
        return made

    def expected(self, viewer: str, **filters: Any) -> list[Written]:
        """What `viewer` must read, newest first, worked out from the table."""
        types = filters.get("types")
        keys = filters.get("customers")
        since = filters.get("since")
        return sorted(
            (
                w
                for w in self.written
                if w.customer in SEES[viewer]
                and (types is None or w.type in types)
                and (keys is None or w.customer in keys)
                and (since is None or w.at >= since)
            ),
            key=lambda w: -w.id,
        )


async def build_world() -> FeedWorld:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    contoso_full = await factories.admin(contoso, FULL)
    other_admin = await factories.admin(northwind, ADMIN)
    customers = {
        "another_admins": await factories.customer(northwind, "Another Admin's Ltd"),
        "assigned": await factories.customer(northwind, "Assigned Ltd"),
        "sales_created": await factories.customer(
            northwind, "Sales Made Ltd", created_by=team[SALES].admin
        ),
        "sales_assigned": await factories.customer(northwind, "Sales Assigned Ltd"),
        "granted": await factories.customer(contoso, "Granted Co"),
        "contoso_only": await factories.customer(contoso, "Contoso Only Co"),
    }
    await factories.assign(team[ADMIN].admin, customers["assigned"])
    await factories.assign(other_admin.admin, customers["another_admins"])
    await factories.assign(team[SALES].admin, customers["sales_assigned"])
    for holder in (team[ADMIN], team[READ_ONLY]):
        await ExternalAdminGrant.create(
            customer=customers["granted"],
            admin=holder.admin,
            granted_by=contoso_full.admin,
            granted_at=factories.NOW,
        )
    tokens = {role.value: member.token for role, member in team.items()}
    tokens[CONTOSO_FULL] = contoso_full.token
    return FeedWorld(northwind, contoso, tokens, customers)


async def write_history(world: FeedWorld) -> None:
    """Three events per customer, the partners' ids interleaved, every type used,
    in two writes (so two transactions)."""
    keys = list(world.customers)
    types = list(AttentionEventType)
    events = [
        (key, types[(n + k) % len(types)], BASE + timedelta(minutes=10 * (3 * k + n)))
        for n in range(3)
        for k, key in enumerate(keys)
    ]
    await world.write(*events[:7])
    await world.write(*events[7:])


async def read_all(client: httpx.AsyncClient, token: str, **variables: Any) -> list[dict]:
    answer = await data(client, token, LIST, {"first": 100, **variables})
    connection = answer["attentionEvents"]
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["totalCount"] == len(connection["edges"])
    return [edge["node"] for edge in connection["edges"]]


def ids_of(nodes: list[dict]) -> list[int]:
    out = []
    for node in nodes:
        decoded = decode_global_id(node["id"])
        assert decoded is not None and decoded[0] == "AttentionEvent", node["id"]
        out.append(decoded[1])
    return out


# ------------------------------------------------------------------- the list


async def test_every_role_reads_the_events_of_its_customers_only(
    db: Settings, client: httpx.AsyncClient
) -> None:
    world = await build_world()
    await write_history(world)
    assert len(world.written) == 18
    for viewer, token in world.tokens.items():
        nodes = await read_all(client, token)
        expected = world.expected(viewer)
        assert ids_of(nodes) == [w.id for w in expected], viewer
        assert len(nodes) == 3 * len(SEES[viewer]), viewer  # the table, counted
        names = {node["customer"]["name"] for node in nodes}
        assert names == {world.customers[k].name for k in SEES[viewer]}, viewer
        for node, w in zip(nodes, expected, strict=True):
            assert node["customer"]["id"] == gid("Customer", world.customers[w.customer].id)
            assert node["type"] == w.type.value
            assert datetime.fromisoformat(node["occurredAt"]) == w.at

    # Naming every customer, every type and the earliest time changes nothing:
    # what is out of scope stays out, whatever the arguments.
    every = {
        "customerIds": [gid("Customer", c.id) for c in world.customers.values()],
        "types": [t.value for t in AttentionEventType],
        "since": BASE.isoformat(),
    }
    for viewer, token in world.tokens.items():
        nodes = await read_all(client, token, **every)
        assert ids_of(nodes) == [w.id for w in world.expected(viewer)], viewer

    # node(id:) answers an event in scope, null for one out of scope (another
    # partner's, or a customer the role does not reach), as for a missing id.
    one = {w.customer: w for w in world.written}
    query = "query($id: ID!) { node(id: $id) { id ... on AttentionEvent { type } } }"
    for viewer, token in world.tokens.items():
        for key, w in one.items():
            answer = await data(client, token, query, {"id": gid("AttentionEvent", w.id)})
            seen = answer["node"] is not None
            assert seen == (key in SEES[viewer]), (viewer, key)
    missing = await data(
        client, world.tokens[FULL.value], query, {"id": gid("AttentionEvent", 99999)}
    )
    assert missing["node"] is None


START_TRIAL = """
mutation($input: StartTrialInput!) {
  startTrial(input: $input) {
    trial { id endDate customer { id } }
    userErrors { field message code }
  }
}
"""


def start_trial_input(name: str) -> dict:
    return {
        "input": {
            "newCustomer": {"name": name, "adminEmail": "it@new.example", "region": "US"},
            "products": [{"product": "CALLING", "licenses": 10}],
            "durationDays": 10,
        }
    }


async def test_a_mutation_s_events_are_read_in_scope(
    db: Settings, client: httpx.AsyncClient
) -> None:
    """startTrial (a real mutation) writes its events in its transaction; the
    feed shows them to the roles that see the new customer, to no one else."""
    world = await build_world()
    started = await data(
        client, world.tokens[FULL.value], START_TRIAL, start_trial_input("Fresh Trial Ltd")
    )
    payload = started["startTrial"]
    assert payload["userErrors"] == []
    customer_id = payload["trial"]["customer"]["id"]
    nodes = await read_all(client, world.tokens[FULL.value])
    assert nodes and {n["customer"]["id"] for n in nodes} == {customer_id}
    gained = {n["status"] for n in nodes if n["type"] == "STATUS_GAINED"}
    assert "TRIAL" in gained
    for node in nodes:
        if node["type"] == "TRIAL_ENDING":  # a 10-day trial ends within 14 days
            assert node["trialEndDate"] == payload["trial"]["endDate"]
            end = datetime.fromisoformat(payload["trial"]["endDate"]).date()
            occurred = datetime.fromisoformat(node["occurredAt"]).date()
            assert node["daysLeft"] == (end - occurred).days
    same = await read_all(client, world.tokens[FULL.value], customerIds=[customer_id])
    assert ids_of(same) == ids_of(nodes)
    for viewer in (READ_ONLY.value, SALES_FULL.value):
        assert ids_of(await read_all(client, world.tokens[viewer])) == ids_of(nodes), viewer
    for viewer in (ADMIN.value, SALES.value, CONTOSO_FULL):
        assert await read_all(client, world.tokens[viewer]) == [], viewer
        assert await read_all(client, world.tokens[viewer], customerIds=[customer_id]) == []


async def test_the_detail_of_each_type_reads_as_typed_fields(
    db: Settings, client: httpx.AsyncClient
) -> None:
    world = await build_world()
    await world.write(*[("assigned", kind, BASE) for kind in AttentionEventType])
    nodes = {node["type"]: node for node in await read_all(client, world.tokens[ADMIN.value])}
    empty = {
        "status": None,
        "trialEndDate": None,
        "daysLeft": None,
        "family": None,
        "week": None,
        "poorCallSharePercent": None,
        "previousPoorCallSharePercent": None,
    }

    def typed(node: dict) -> dict:
        return {k: node[k] for k in empty}

    assert typed(nodes["STATUS_GAINED"]) == empty | {"status": "EXPIRING_SOON"}
    assert typed(nodes["STATUS_LOST"]) == empty | {"status": "TRIAL"}
    assert typed(nodes["TRIAL_ENDING"]) == empty | {"trialEndDate": "2026-12-01", "daysLeft": 11}
    assert typed(nodes["LOW_LICENSE_ASSIGNMENT"]) == empty | {"family": "CALLING"}
    assert typed(nodes["CALL_QUALITY_DECLINING"]) == empty | {
        "week": "2026-11-16",
        "poorCallSharePercent": 12.5,
        "previousPoorCallSharePercent": 4.0,
    }


async def test_filters_by_type_customer_and_time(db: Settings, client: httpx.AsyncClient) -> None:
    world = await build_world()
    await write_history(world)
    c = world.customers
    full, admin = world.tokens[FULL.value], world.tokens[ADMIN.value]
    cases: list[tuple[str, dict, dict]] = [
        (FULL.value, {"types": ["TRIAL_ENDING"]}, {"types": {T.TRIAL_ENDING}}),
        (
            FULL.value,
            {"types": ["STATUS_GAINED", "STATUS_LOST"]},
            {"types": {T.STATUS_GAINED, T.STATUS_LOST}},
        ),
        (FULL.value, {"types": []}, {"types": set()}),
        (
            FULL.value,
            {
                "customerIds": [
                    gid("Customer", c["assigned"].id),
                    gid("Customer", c["another_admins"].id),
                ]
            },
            {"customers": {"assigned", "another_admins"}},
        ),
        # A customer out of scope (another partner's) simply matches nothing.
        (
            FULL.value,
            {"customerIds": [gid("Customer", c["contoso_only"].id)]},
            {"customers": {"contoso_only"}},
        ),
        (
            FULL.value,
            {
                "customerIds": [
                    gid("Customer", c["contoso_only"].id),
                    gid("Customer", c["assigned"].id),
                ]
            },
            {"customers": {"contoso_only", "assigned"}},
        ),
        # A customer id that names no customer at all: nothing either.
        (FULL.value, {"customerIds": [gid("Customer", 987654)]}, {"customers": set()}),
        (FULL.value, {"customerIds": []}, {"customers": set()}),
        # The granted customer for the ADMIN holding the grant; not its partner's others.
        (
            ADMIN.value,
            {
                "customerIds": [
                    gid("Customer", c["granted"].id),
                    gid("Customer", c["contoso_only"].id),
                ]
            },
            {"customers": {"granted", "contoso_only"}},
        ),
        (
            ADMIN.value,
            {"customerIds": [gid("Customer", c["another_admins"].id)]},
            {"customers": {"another_admins"}},
        ),
    ]
    since = BASE + timedelta(minutes=95)
    early = BASE + timedelta(minutes=45)
    cases += [
        (FULL.value, {"since": since.isoformat()}, {"since": since}),
        (ADMIN.value, {"since": since.isoformat().replace("+00:00", "Z")}, {"since": since}),
        (
            FULL.value,
            {
                "since": early.isoformat(),
                "types": ["LOW_LICENSE_ASSIGNMENT", "CALL_QUALITY_DECLINING", "STATUS_GAINED"],
                "customerIds": [
                    gid("Customer", c["sales_created"].id),
                    gid("Customer", c["assigned"].id),
                ],
            },
            {
                "since": early,
                "types": {T.LOW_LICENSE_ASSIGNMENT, T.CALL_QUALITY_DECLINING, T.STATUS_GAINED},
                "customers": {"sales_created", "assigned"},
            },
        ),
    ]
    nonempty = 0
    for viewer, variables, expect in cases:
        token = full if viewer == FULL.value else admin
        got = ids_of(await read_all(client, token, **variables))
        want = [w.id for w in world.expected(viewer, **expect)]
        assert got == want, (viewer, variables)
        nonempty += bool(want)
    assert nonempty == 8  # the filters were tried on data they keep and drop
    # `since` is inclusive: the event at exactly that time is in.
    exact = world.written[3].at
    assert world.written[3].customer in SEES[FULL.value]
    got = ids_of(await read_all(client, full, since=exact.isoformat()))
    assert got == [w.id for w in world.expected(FULL.value, since=exact)]
    assert world.written[3].id in got


async def test_pages_follow_cursors_to_the_end(db: Settings, client: httpx.AsyncClient) -> None:
    world = await build_world()
    await write_history(world)
    await world.write(*[("assigned", T.TRIAL_ENDING, BASE + timedelta(hours=h)) for h in range(9)])
    token = world.tokens[READ_ONLY.value]
    expected = [w.id for w in world.expected(READ_ONLY.value)]
    assert len(expected) == 24
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        answer = await data(client, token, LIST, {"first": 5, "after": after})
        connection = answer["attentionEvents"]
        info = connection["pageInfo"]
        assert connection["totalCount"] == (24 if pages < 2 else 25)
        assert info["hasPreviousPage"] is (after is not None)
        edges = connection["edges"]
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
        seen += ids_of([e["node"] for e in edges])
        pages += 1
        if pages == 2:
            # A newer event written meanwhile does not shift the pages that follow.
            await world.write(("assigned", T.STATUS_GAINED, BASE))
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == 5
    assert seen == expected
    # An edge's cursor continues right after that edge; filtered pages page too.
    answer = await data(client, token, LIST, {"first": 3, "types": ["TRIAL_ENDING"]})
    edges = answer["attentionEvents"]["edges"]
    rest = await data(
        client, token, LIST, {"first": 100, "after": edges[1]["cursor"], "types": ["TRIAL_ENDING"]}
    )
    trial_ids = [w.id for w in world.expected(READ_ONLY.value, types={T.TRIAL_ENDING})]
    assert ids_of([e["node"] for e in rest["attentionEvents"]["edges"]]) == trial_ids[2:]
    # The default page is 50.
    default = await data(client, token, LIST, {})
    assert len(default["attentionEvents"]["edges"]) == 25


async def test_bad_arguments_get_a_clear_error_and_nothing_else(
    db: Settings, client: httpx.AsyncClient
) -> None:
    world = await build_world()
    await write_history(world)
    token = world.tokens[FULL.value]
    good = (await data(client, token, LIST, {"first": 1}))["attentionEvents"]["pageInfo"][
        "endCursor"
    ]
    tag = gid("Tag", world.customers["assigned"].id)
    future = datetime.now(UTC) + timedelta(hours=1)
    cases: list[tuple[dict, str]] = [
        ({"first": 0}, "`first` must be between 1 and 100"),
        ({"first": 101}, "`first` must be between 1 and 100"),
        ({"first": -3}, "`first` must be between 1 and 100"),
        ({"after": "not a cursor"}, "`after` is not a cursor of this list"),
        ({"after": good + "="}, "`after` is not a cursor of this list"),
        ({"after": good[:-1]}, "`after` is not a cursor of this list"),
        ({"after": encode_cursor(["audit", 5])}, "`after` is not a cursor of this list"),
        ({"after": encode_cursor(["attention", 0])}, "`after` is not a cursor of this list"),
        ({"after": encode_cursor(["attention", "5"])}, "`after` is not a cursor of this list"),
        ({"after": encode_cursor(["attention", 5, 6])}, "`after` is not a cursor of this list"),
        ({"after": encode_cursor(["attention", True])}, "`after` is not a cursor of this list"),
        ({"after": encode_cursor(["attention", 2**63])}, "`after` is not a cursor of this list"),
        ({"customerIds": [tag]}, "`customerIds` holds an id that is not a Customer's"),
        ({"customerIds": ["garbage"]}, "`customerIds` holds an id that is not a Customer's"),
        (
            {"customerIds": [gid("Customer", world.customers["assigned"].id), ""]},
            "`customerIds` holds an id that is not a Customer's",
        ),
        (
            {"customerIds": [gid("Customer", n) for n in range(1, 102)]},
            "`customerIds` names at most 100 customers",
        ),
        ({"since": future.isoformat()}, "`since` is in the future"),
        ({"since": "2026-11-20T08:00:00"}, "`since` must be a UTC time"),
        ({"since": "2026-11-20T10:00:00+02:00"}, "`since` must be a UTC time"),
    ]
    for variables, message in cases:
        response = await gql(client, token, LIST, variables)
        body = response.json()
        assert body.get("data") is None, (variables, body)
        errors = body["errors"]
        assert len(errors) == 1, (variables, errors)
        assert message in errors[0]["message"], (variables, errors)
        assert errors[0]["extensions"]["code"] == "INVALID", errors
        assert errors[0]["path"] == ["attentionEvents"]
    # A value that is no DateTime or no type at all is refused by GraphQL itself.
    for variables in ({"since": "yesterday"}, {"types": ["NOT_A_TYPE"]}):
        body = (await gql(client, token, LIST, variables)).json()
        assert body.get("data") is None and body["errors"], body
    # The good cursor still works.
    assert (await data(client, token, LIST, {"first": 1, "after": good}))["attentionEvents"]


# -------------------------------------------------------------- following


async def _viewer(world: FeedWorld, name: str) -> Viewer:
    """The viewer a sign-in with `name`'s token makes (grants included)."""
    token = await ApiToken.get(token_hash=hash_token(world.tokens[name]))
    admin = await Admin.get(id=token.admin_id)  # type: ignore[attr-defined]
    await admin.fetch_related("partner")
    return viewer_of(admin, await holds_grant(admin))


async def test_a_follower_sends_new_events_once_in_id_order_through_bursts(db: Settings) -> None:
    """The follower's window on both engines: what was there before is not sent;
    a burst larger than the window comes through whole, once, in id order."""
    world = await build_world()
    await write_history(world)
    viewer = await _viewer(world, ADMIN.value)
    follower = EventFollower(viewer, [T.STATUS_GAINED, T.TRIAL_ENDING], window=4, batch=3)
    await follower.start()
    assert await follower.poll() == ([], False)
    burst = await world.write(
        *[
            (key, kind, BASE)
            for key in ("assigned", "granted", "another_admins", "contoso_only")
            for kind in (T.STATUS_GAINED, T.TRIAL_ENDING, T.STATUS_LOST)
        ]
        * 3
    )
    want = [w.id for w in burst if w.customer in SEES[ADMIN.value] and w.type is not T.STATUS_LOST]
    assert len(want) == 12
    got: list[int] = []
    for _ in range(20):
        events, more = await follower.poll()
        got += [e.id for e in events]
        if not more and len(got) >= len(want):
            break
    assert got == want
    assert len(follower.known) <= 4
    assert await follower.poll() == ([], False)


async def test_a_follower_reads_the_scope_afresh_at_each_look(db: Settings) -> None:
    """An ADMIN's stream: unassigned from its customer, or its grant revoked, it
    gets no more of that customer's events; assigned another one, it gets its
    new ones."""
    world = await build_world()
    viewer = await _viewer(world, ADMIN.value)
    follower = EventFollower(viewer, None)
    await follower.start()
    # With no grace, each look's newest id is done at once: what a customer brings
    # along when it comes into scope is bounded by the grace.
    graceless = EventFollower(viewer, None, grace_seconds=0.0)
    await graceless.start()
    first = await world.write(
        ("assigned", T.STATUS_GAINED, BASE),
        ("granted", T.STATUS_GAINED, BASE),
        ("another_admins", T.STATUS_GAINED, BASE),
    )
    assert [e.id for e in (await follower.poll())[0]] == [first[0].id, first[1].id]
    assert [e.id for e in (await graceless.poll())[0]] == [first[0].id, first[1].id]
    await CustomerAssignment.filter(
        admin_id=viewer.admin.id, customer_id=world.customers["assigned"].id
    ).delete()
    await ExternalAdminGrant.filter(admin_id=viewer.admin.id).delete()
    await factories.assign(viewer.admin, world.customers["another_admins"])
    then = await world.write(
        ("assigned", T.TRIAL_ENDING, BASE),
        ("granted", T.TRIAL_ENDING, BASE),
        ("another_admins", T.TRIAL_ENDING, BASE),
    )
    events, _ = await follower.poll()
    # The earlier event of the newly assigned customer is still within the
    # window's reach: it comes too, once; the others' events never.
    assert [e.id for e in events] == [first[2].id, then[2].id]
    assert await follower.poll() == ([], False)
    assert [e.id for e in (await graceless.poll())[0]] == [then[2].id]
    assert graceless.floor == then[2].id and graceless.known == {}


async def test_a_follower_gets_an_event_whose_transaction_commits_after_a_later_one(
    postgres_db: Settings,
) -> None:
    """PostgreSQL commits out of id order: a transaction that took an id first
    and commits last still has its event sent (a bare `id > last` would skip it)."""
    world = await build_world()
    viewer = await _viewer(world, FULL.value)
    follower = EventFollower(viewer, None)
    await follower.start()
    took_id = asyncio.Event()
    may_commit = asyncio.Event()
    slow_ids: list[int] = []

    async def slow_writer() -> None:
        async with in_transaction():
            written = await write_events(
                [new_event(world.customers["assigned"], T.STATUS_GAINED, BASE)]
            )
            slow_ids.append(written[0].id)
            took_id.set()
            await may_commit.wait()

    task = asyncio.create_task(slow_writer())
    await asyncio.wait_for(took_id.wait(), 10)
    fast = await world.write(("another_admins", T.TRIAL_ENDING, BASE))
    assert fast[0].id > slow_ids[0]
    events, _ = await follower.poll()
    assert [e.id for e in events] == [fast[0].id]
    may_commit.set()
    await asyncio.wait_for(task, 10)
    events, _ = await follower.poll()
    assert [e.id for e in events] == slow_ids
    assert await follower.poll() == ([], False)


SUBSCRIBE = """
subscription($types: [AttentionEventType!]) {
  attentionEvents(types: $types) { id type status customer { id name statuses } }
}
"""


async def _subscribe(port: int, token: str, types: list[str] | None) -> Any:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
    )
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    payload = {"query": SUBSCRIBE, "variables": {"types": types}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def _next_event(ws: Any, seconds: float) -> dict:
    message = json.loads(await asyncio.wait_for(ws.recv(), seconds))
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]["attentionEvents"]


async def _drain(ws: Any) -> None:
    while True:
        try:
            await asyncio.wait_for(ws.recv(), 1.0)
        except TimeoutError:
            return


async def test_the_subscription_streams_new_events_in_scope_over_a_websocket(
    db: Settings, redis_url: str, tmp_path: Path
) -> None:
    """A real `partnerhub serve`: each socket receives the new events of its types
    and scope, once, in order; not other types, not other customers, not another
    partner's; closing the sockets leaves the server clean."""
    world = await build_world()
    await write_history(world)  # there before: never streamed
    env = cli_env(db.database_url, tmp_path / "var", redis_url=redis_url)
    env["PARTNERHUB_ATTENTION_STREAM_POLL_SECONDS"] = "0.2"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    socket_types = {
        ADMIN.value: ["STATUS_GAINED", "TRIAL_ENDING"],
        FULL.value: None,
        CONTOSO_FULL: None,
    }
    with running(["serve", "--port", str(port)], env, log) as server:
        await asyncio.to_thread(wait_healthy, base, server, log)
        sockets = {v: await _subscribe(port, world.tokens[v], t) for v, t in socket_types.items()}
        # Each socket is live once it receives a probe written after it subscribed.
        probes = {ADMIN.value: "assigned", FULL.value: "assigned", CONTOSO_FULL: "contoso_only"}
        for viewer, ws in sockets.items():
            for _ in range(20):
                await world.write((probes[viewer], T.STATUS_GAINED, BASE))
                try:
                    await _next_event(ws, 1.0)
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail(f"the {viewer} subscription never started")
        for ws in sockets.values():
            await _drain(ws)
        world.written.clear()

        at = datetime.now(UTC).replace(microsecond=0)
        await world.write(("assigned", T.STATUS_GAINED, at))
        await world.write(("assigned", T.LOW_LICENSE_ASSIGNMENT, at))
        await world.write(("another_admins", T.TRIAL_ENDING, at), ("granted", T.STATUS_LOST, at))
        await world.write(("granted", T.TRIAL_ENDING, at))
        await world.write(("contoso_only", T.CALL_QUALITY_DECLINING, at))
        await world.write(
            ("sales_created", T.STATUS_GAINED, at), ("contoso_only", T.STATUS_GAINED, at)
        )
        last = await world.write(("assigned", T.TRIAL_ENDING, at), ("granted", T.STATUS_GAINED, at))
        final = {ADMIN.value: last[1].id, FULL.value: last[0].id, CONTOSO_FULL: last[1].id}
        counts = {}
        for viewer, ws in sockets.items():
            types = socket_types[viewer]
            want = [
                w
                for w in sorted(world.expected(viewer), key=lambda w: w.id)
                if types is None or w.type.value in types
            ]
            got: list[dict] = []
            while not got or decode_global_id(got[-1]["id"])[1] != final[viewer]:  # type: ignore[index]
                got.append(await _next_event(ws, 15))
            assert ids_of(got) == [w.id for w in want], viewer
            counts[viewer] = len(want)
            for node, w in zip(got, want, strict=True):
                customer = world.customers[w.customer]
                assert node["type"] == w.type.value
                assert node["customer"] == {
                    "id": gid("Customer", customer.id),
                    "name": customer.name,
                    "statuses": node["customer"]["statuses"],
                }
            # Nothing more comes (no repeat, nothing out of scope).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.0)
        # Worked out by hand from the table: types and scope both left events out.
        assert counts == {ADMIN.value: 4, FULL.value: 5, CONTOSO_FULL: 5}
        # A real mutation on the server: its events reach the sockets that see
        # the new customer (FULL_ADMIN), exactly those the list shows.
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            answer = await gql(
                http, world.tokens[FULL.value], START_TRIAL, start_trial_input("Live Trial Ltd")
            )
            payload = answer.json()["data"]["startTrial"]
            assert payload["userErrors"] == [], payload
            customer_id = payload["trial"]["customer"]["id"]
            listed = (
                await gql(http, world.tokens[FULL.value], LIST, {"customerIds": [customer_id]})
            ).json()["data"]["attentionEvents"]
            answer_ids = sorted(ids_of([e["node"] for e in listed["edges"]]))
        assert answer_ids
        streamed = [await _next_event(sockets[FULL.value], 15) for _ in answer_ids]
        assert ids_of(streamed) == answer_ids
        assert {n["customer"]["id"] for n in streamed} == {customer_id}
        for viewer in (ADMIN.value, CONTOSO_FULL, FULL.value):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(sockets[viewer].recv(), 1.0)
        # A bad `types` value is refused; the socket stays usable.
        ws = sockets[FULL.value]
        await ws.send(
            json.dumps(
                {
                    "id": "2",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIBE, "variables": {"types": ["NOPE"]}},
                }
            )
        )
        refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert refused["type"] == "error" and refused["id"] == "2", refused
        for ws in sockets.values():
            await ws.close()
        await asyncio.sleep(1.0)  # the server ends the subscriptions' polling
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text[-3000:]


# ------------------------------------------------------- a database outage


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A migrated PostgreSQL of this module's own, that a test may stop."""
    server = Postgres(free_port())
    try:
        server.init()
        server.start()
        server.create_database()
        env = cli_env(server.url(), tmp_path_factory.mktemp("feed-migrate"))
        migrated = run_cli(["migrate"], env)
        assert migrated.returncode == 0, migrated.stderr
        yield server
    finally:
        server.teardown()


async def _retrying(write: Callable[[], Awaitable[list[Written]]]) -> list[Written]:
    """A write, tried again while the database is still coming back."""
    for _ in range(60):
        try:
            return await write()
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("the database did not come back")


async def test_a_subscription_rides_out_a_database_outage(
    own_postgres: Postgres, tmp_path: Path
) -> None:
    """PostgreSQL stopped under an open stream: the stream does not end; once the
    database is back, the events written then come through."""
    settings = Settings(DATABASE_URL=own_postgres.url(), var_dir=tmp_path / "var")
    await open_database(settings)
    await empty_all_tables()
    try:
        world = await build_world()
        viewer = await _viewer(world, FULL.value)
        got: list[int] = []
        arrived = asyncio.Event()

        async def follow() -> None:
            async for event in follow_events(viewer, None, 0.1):
                got.append(event.id)
                arrived.set()

        task = asyncio.create_task(follow())
        for _ in range(20):  # live once a probe written after it started arrives
            await world.write(("assigned", T.STATUS_GAINED, BASE))
            try:
                await asyncio.wait_for(arrived.wait(), 1.0)
                break
            except TimeoutError:
                continue
        assert got
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.sleep(2.0)  # several looks fail meanwhile
        assert not task.done()
        await asyncio.to_thread(own_postgres.start)
        after = await _retrying(lambda: world.write(("another_admins", T.TRIAL_ENDING, BASE)))
        for _ in range(100):
            if after[0].id in got:
                break
            await asyncio.sleep(0.2)
        assert got[-1] == after[0].id
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        if not own_postgres.running:
            own_postgres.start()
        await close_database()
