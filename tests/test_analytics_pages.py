"""Paging the analytics row connections by keyset: every section of both
families (subscription and calling analytics), read 3 rows at a time with the
cursors it returns, gives exactly the rows of one unpaged read, in the same
order, on rows that tie on every value of the order but the id; a cursor of one
list is refused by every other, and so is a malformed one."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.domain.pagination import encode_cursor
from app.models.calling import CallingWeeklyCustomer, CallingWeeklyQueue
from app.models.customers import Customer
from app.models.enums import LICENSE_PRODUCT, AdminRole, LicenseType, Region
from app.models.subscriptions import LicenseLine, Subscription
from tests import factories
from tests.graphql_client import data, gql

CP, WC = LicenseType.CALLING_PROFESSIONAL, LicenseType.WEBEX_CALLING
SUBSCRIPTIONS = 18
PEERS = 25  # another partner's subscriptions, well assigned: the band's median is 0.8
WEEK = date(2026, 10, 26)  # a Monday

SECTION_ROWS = {
    "recentlyAdded": "customer { name } subscriptionId daysSinceAdded totalLicenses",
    "expiringSoon": "customer { name } subscriptionId daysRemaining totalLicenses",
    "renewingSoon": "customer { name } subscriptionId daysRemaining totalLicenses",
    "lowAssignment": "customer { name } subscriptionId assigned assignedPct totalLicenses",
    "overLicenseLimit": "customer { name } subscriptionId overageLicenses autoRenew",
}
# Each calling list: its field (BODY: the connection's selection) and its nodes.
CALLING_LISTS = {
    "customersUsage": (
        "customersUsage(first: $n, after: $a) { BODY }",
        "customer { name } totalCalls callMinutes",
    ),
    "customersQuality": (
        "customersQuality(first: $n, after: $a) { BODY }",
        "customer { name } totalLegs poorLegs poorPct",
    ),
    "callQueue": (
        "callQueue { customers(first: $n, after: $a) { BODY } }",
        "customer { name } totalCalls abandonedCalls",
    ),
}
NOT_A_CURSOR = "bm90IGEgY3Vyc29y"  # base64 of "not a cursor"


def subscription_query(section: str) -> str:
    return f"""query($n: Int, $a: String) {{ subscriptionAnalytics(product: CALLING) {{
      {section} {{ rows(first: $n, after: $a) {{ totalCount
        pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
        edges {{ cursor node {{ subscriptionId }} }} nodes {{ {SECTION_ROWS[section]} }} }} }} }} }}"""


def calling_query(name: str) -> str:
    field, nodes = CALLING_LISTS[name]
    body = f"""totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
        edges {{ cursor node {{ customer {{ name }} }} }} nodes {{ {nodes} }}"""
    return f"""query($n: Int, $a: String, $w: Date) {{
      callingAnalytics(region: US, weekStart: $w) {{ {field.replace("BODY", body)} }} }}"""


def connection_of(answer: dict, path: list[str]) -> dict:
    for key in path:
        answer = answer[key]
    return answer


async def read_all(
    client: httpx.AsyncClient, token: str, query: str, path: list[str], extra: dict
) -> tuple[dict, list[dict]]:
    """(one unpaged read, the nodes of reading 3 at a time), checking each page's
    edges, page info and count on the way."""
    whole = connection_of(await data(client, token, query, {"n": 100, **extra}), path)
    assert not whole["pageInfo"]["hasNextPage"]
    paged: list[dict] = []
    after = None
    while True:
        page = connection_of(await data(client, token, query, {"n": 3, "a": after, **extra}), path)
        assert page["totalCount"] == whole["totalCount"]
        assert len(page["nodes"]) <= 3
        assert len(page["edges"]) == len(page["nodes"])
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        cursors = [e["cursor"] for e in page["edges"]]
        assert page["pageInfo"]["startCursor"] == (cursors[0] if cursors else None)
        assert page["pageInfo"]["endCursor"] == (cursors[-1] if cursors else None)
        paged += page["nodes"]
        assert len(paged) <= whole["totalCount"], "a row came twice"
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert len(page["nodes"]) == 3
        after = page["pageInfo"]["endCursor"]
    return whole, paged


# ------------------------------------------------------ subscription analytics ----


async def subscriptions_world() -> dict[str, Any]:
    """18 subscriptions of CALLING licenses that tie, in groups, on the value of
    each section's order: added together (groups of 4), ending the same day
    (groups of 4), assigned alike (groups of 4 ratios), over by 1 or 2."""
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    customers = [await factories.customer(northwind, f"Customer {n}") for n in range(6)]
    subscriptions: dict[str, dict[str, Any]] = {}
    for n in range(SUBSCRIPTIONS):
        added = now - timedelta(days=31 + (n // 4) * 5)
        end = today + timedelta(days=5 + (n // 4) * 10)
        sub = await Subscription.create(
            customer=customers[n % 6], subscription_id=f"Sub-{n:02d}", kind="SUBSCRIPTION",
            status="ACTIVE", start_date=added.date(), end_date=end, auto_renew=n % 2 == 0,
            added_at=added,
        )  # fmt: skip
        lines = [(CP, 100, 10 + (n % 4) * 5)]
        if n % 3:
            lines.append((WC, 5, 5 + 1 + n % 2))  # over by 1 or 2
        for license_type, quantity, assigned in lines:
            await LicenseLine.create(subscription=sub, license_type=license_type,
                                     product=LICENSE_PRODUCT[license_type], quantity=quantity,
                                     assigned=assigned, used=0)  # fmt: skip
        total = sum(q for _, q, _ in lines)
        subscriptions[sub.subscription_id] = {
            "pk": sub.id,
            "added": added,
            "end": end,
            "auto_renew": n % 2 == 0,
            "ratio": sum(a for _, _, a in lines) / total,
            "overage": sum(max(a - q, 0) for _, q, a in lines),
        }
    peer = await factories.customer(contoso, "Contoso peer")
    for n in range(PEERS):
        sub = await Subscription.create(
            customer=peer, subscription_id=f"Peer-{n:02d}", kind="SUBSCRIPTION", status="ACTIVE",
            start_date=today - timedelta(days=300), end_date=today + timedelta(days=400),
            auto_renew=True, added_at=now - timedelta(days=300),
        )  # fmt: skip
        await LicenseLine.create(subscription=sub, license_type=CP, product="CALLING",
                                 quantity=100, assigned=80, used=0)  # fmt: skip
    return {"token": team[AdminRole.FULL_ADMIN].token, "subscriptions": subscriptions,
            "today": today}  # fmt: skip


def section_order(world: dict, section: str) -> list[str]:
    """The section's rows in its order, the subscription's id breaking ties,
    computed here from the fixture's own values."""
    subs, today = world["subscriptions"], world["today"]
    if section == "recentlyAdded":
        return sorted(subs, key=lambda c: (subs[c]["added"], subs[c]["pk"]), reverse=True)
    if section in ("expiringSoon", "renewingSoon"):
        renewing = section == "renewingSoon"
        chosen = [c for c in subs if subs[c]["auto_renew"] is renewing
                  and subs[c]["end"] <= today + timedelta(days=90)]  # fmt: skip
        return sorted(chosen, key=lambda c: (subs[c]["end"], subs[c]["pk"]))
    if section == "lowAssignment":
        return sorted(subs, key=lambda c: (subs[c]["ratio"], subs[c]["pk"]))
    chosen = [c for c in subs if subs[c]["overage"] > 0]
    return sorted(chosen, key=lambda c: (-subs[c]["overage"], subs[c]["pk"]))


@pytest.fixture
async def subs_world(db) -> dict[str, Any]:
    return await subscriptions_world()


@pytest.mark.parametrize("section", list(SECTION_ROWS))
async def test_paging_a_section_3_rows_at_a_time_gives_the_unpaged_rows_in_order(
    client: httpx.AsyncClient, subs_world: dict, section: str
) -> None:
    path = ["subscriptionAnalytics", section, "rows"]
    whole, paged = await read_all(
        client, subs_world["token"], subscription_query(section), path, {}
    )
    expected = section_order(subs_world, section)
    assert len(expected) >= 9, expected  # several pages
    assert [n["subscriptionId"] for n in whole["nodes"]] == expected
    assert [e["node"]["subscriptionId"] for e in whole["edges"]] == expected
    assert paged == whole["nodes"]
    assert whole["totalCount"] == len(expected)
    # Rows tie on the order's value: the id decides between them, across pages too.
    values = [tuple(v for k, v in n.items() if k not in ("customer", "subscriptionId"))
              for n in whole["nodes"]]  # fmt: skip
    assert len(set(values)) < len(values), values


async def test_a_cursor_of_one_section_is_refused_by_the_others(
    client: httpx.AsyncClient, subs_world: dict
) -> None:
    token = subs_world["token"]
    cursors = {}
    for section in SECTION_ROWS:
        answer = await data(client, token, subscription_query(section), {"n": 2})
        cursors[section] = answer["subscriptionAnalytics"][section]["rows"]["pageInfo"]["endCursor"]
    for section in SECTION_ROWS:
        for other, cursor in cursors.items():
            response = await gql(client, token, subscription_query(section), {"n": 2, "a": cursor})
            body = response.json()
            if other == section:
                assert "errors" not in body, body
                continue
            [error] = body["errors"]
            assert error["message"].startswith("`after` is not a cursor of this list"), error
            assert error["path"] == ["subscriptionAnalytics", section, "rows"]


# ---------------------------------------------------------- calling analytics ----


async def calling_world() -> dict[str, Any]:
    """12 US customers with the week's rollup rows, tying on calls (groups of 3),
    on the share of poor legs (1/4 = 2/8: then poor legs decide, then the id) and
    on the share of abandoned queue calls."""
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    team = await factories.team(northwind)
    figures: dict[str, dict[str, int]] = {}
    for n in range(12):
        customer = await Customer.create(partner=northwind, name=f"Caller {n:02d}",
                                         org_id=uuid.uuid4(), region=Region.US,
                                         created_at=datetime.now(UTC))  # fmt: skip
        calls = 10 * (1 + n // 3)
        quality, poor = (4, 1) if n % 3 == 0 else (8, 2) if n % 3 == 1 else (10, n % 4)
        await CallingWeeklyCustomer.create(
            customer=customer, week_start=WEEK, total_calls=calls, total_legs=calls * 2,
            call_minutes=n, video_minutes=0, active_users=1, users_low=1, users_medium=0,
            users_high=0, quality_legs=quality, poor_legs=poor,
        )  # fmt: skip
        queue_calls, abandoned = (10, n % 2) if n % 4 else (20, 2)
        if n != 5:  # a customer without a queue
            await CallingWeeklyQueue.create(
                customer=customer, week_start=WEEK, total_calls=queue_calls,
                answered_calls=queue_calls - abandoned, abandoned_calls=abandoned,
                timed_out_calls=0, overflowed_calls=0, transferred_calls=0,
                answer_wait_seconds=30, abandon_wait_seconds=5,
            )  # fmt: skip
        figures[customer.name] = {"pk": customer.id, "calls": calls, "quality": quality,
                                  "poor": poor, "queue": queue_calls if n != 5 else 0,
                                  "abandoned": abandoned}  # fmt: skip
    return {"token": team[AdminRole.FULL_ADMIN].token, "figures": figures}


def calling_order(world: dict, name: str) -> list[str]:
    f = world["figures"]
    if name == "customersUsage":
        return sorted(f, key=lambda c: (-f[c]["calls"], f[c]["pk"]))
    if name == "customersQuality":
        return sorted(f, key=lambda c: (-f[c]["poor"] / f[c]["quality"], -f[c]["poor"], f[c]["pk"]))
    with_queue = [c for c in f if f[c]["queue"]]
    return sorted(with_queue, key=lambda c: (-f[c]["abandoned"] / f[c]["queue"], f[c]["pk"]))


@pytest.fixture
async def calls_world(db) -> dict[str, Any]:
    return await calling_world()


def calling_path(name: str) -> list[str]:
    if name == "callQueue":
        return ["callingAnalytics", "callQueue", "customers"]
    return ["callingAnalytics", name]


@pytest.mark.parametrize("name", list(CALLING_LISTS))
async def test_paging_a_calling_list_3_rows_at_a_time_gives_the_unpaged_rows_in_order(
    client: httpx.AsyncClient, calls_world: dict, name: str
) -> None:
    whole, paged = await read_all(client, calls_world["token"], calling_query(name),
                                  calling_path(name), {"w": WEEK.isoformat()})  # fmt: skip
    expected = calling_order(calls_world, name)
    assert len(expected) >= 9, expected
    assert [n["customer"]["name"] for n in whole["nodes"]] == expected
    assert [e["node"]["customer"]["name"] for e in whole["edges"]] == expected
    assert paged == whole["nodes"]
    values = [tuple(v for k, v in n.items() if k not in ("customer", "callMinutes"))
              for n in whole["nodes"]]  # fmt: skip
    assert len(set(values)) < len(values), values


async def test_a_cursor_of_one_calling_list_is_refused_by_the_others(
    client: httpx.AsyncClient, calls_world: dict
) -> None:
    token, week = calls_world["token"], {"w": WEEK.isoformat()}
    cursors = {}
    for name in CALLING_LISTS:
        answer = await data(client, token, calling_query(name), {"n": 2, **week})
        cursors[name] = connection_of(answer, calling_path(name))["pageInfo"]["endCursor"]
    for name in CALLING_LISTS:
        for other, cursor in cursors.items():
            answer = (await gql(client, token, calling_query(name),
                                {"n": 2, "a": cursor, **week})).json()  # fmt: skip
            if other == name:
                assert "errors" not in answer, answer
                continue
            [error] = answer["errors"]
            assert error["message"].startswith("`after` is not a cursor of this list"), error
            assert error["path"] == calling_path(name)


# ---------------------------------------------------------- malformed cursors ----

# Well-formed payloads of each list's kind whose values are not of the list: a
# wrong length, an id or count past a PostgreSQL INTEGER, a time not in UTC, a
# number that is no number, the offset cursors these lists used to hand out.
MALFORMED = {
    ("subscriptionAnalytics", "recentlyAdded"): [
        ["recently_added", 5],
        ["recently_added", "2026-11-21T12:00:00+00:00"],
        ["recently_added", "2026-11-21T12:00:00+00:00", 2**31],
        ["recently_added", "2026-11-21T12:00:00+00:00", 0],
        ["recently_added", "2026-11-21T12:00:00+05:00", 1],
        ["recently_added", "0001-01-01T00:00:00+05:00", 1],
        ["recently_added", "2026-11-21", 1],
        ["recently_added", "2026-11-21T12:00:00+00:00", 1, 1],
    ],
    ("subscriptionAnalytics", "expiringSoon"): [
        ["expiring", 3],
        ["expiring", "2026-02-30", 1],
        ["expiring", "2026-11-21", 2**63],
        ["expiring", "2026-11-21", True],
    ],
    ("subscriptionAnalytics", "lowAssignment"): [
        ["low_assignment", "0.5", 1],
        ["low_assignment", None, 1],
        ["low_assignment", 0.5, -1],
    ],
    ("subscriptionAnalytics", "overLicenseLimit"): [
        ["over_limit", 2**63, 1],
        ["over_limit", 1.5, 1],
        ["over_limit", -1, 2**31],
    ],
    ("callingAnalytics", "customersUsage"): [
        ["calling-usage", 4],
        ["calling-usage", 10, 1],
        ["calling-usage", -(2**31), 1],
        ["calling-usage", -10, 2**31],
    ],
    ("callingAnalytics", "customersQuality"): [
        ["calling-quality", -0.5, 1],
        ["calling-quality", -0.5, 1, 1],
        ["calling-quality", "x", -1, 1],
    ],
    ("callingAnalytics", "callQueue"): [
        ["calling-queue", -0.5],
        ["calling-queue", -0.5, 0],
        ["calling-queue", -0.5, "1"],
    ],
}


@pytest.mark.parametrize(("tree", "name"), list(MALFORMED))
async def test_a_malformed_cursor_is_a_clear_error_of_its_field(
    client: httpx.AsyncClient, db, tree: str, name: str
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    if tree == "subscriptionAnalytics":
        query, path = subscription_query(name), ["subscriptionAnalytics", name, "rows"]
        extra: dict = {}
    else:
        query, path, extra = calling_query(name), calling_path(name), {"w": WEEK.isoformat()}
    for payload in [*MALFORMED[(tree, name)], NOT_A_CURSOR]:
        cursor = payload if isinstance(payload, str) else encode_cursor(payload)
        response = await gql(client, token, query, {"n": 2, "a": cursor, **extra})
        assert response.status_code == 200, (payload, response.text)
        [error] = response.json()["errors"]
        assert error["message"].startswith("`after` is not a cursor of this list"), (payload, error)
        assert error["path"] == path, payload
