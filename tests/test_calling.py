"""Weekly calling rollups and the calling sections, on hand-made call legs at
every threshold. Expected figures are computed here from the legs."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from app.models.customers import CustomerUser
from app.models.enums import AdminRole, Region
from tests import factories
from tests.graphql_client import data, gql
from tests.test_ingest import ndjson, post

WEEK = date(2026, 10, 26)  # a Monday in the past
REFRESH = datetime(2026, 11, 8, 0, 0, tzinfo=UTC)  # the Sunday 00:00 that rolls WEEK up
U = [uuid.UUID(int=n) for n in range(1, 12)]


def at(day: int, hour: int = 9, minute: int = 0, second: int = 0) -> str:
    moment = datetime(WEEK.year, WEEK.month, WEEK.day, tzinfo=UTC) + timedelta(
        days=day, hours=hour, minutes=minute, seconds=second
    )
    return moment.isoformat().replace("+00:00", "Z")


def legs_for(org: str, customer: str) -> list[dict]:
    """Legs of one customer; `customer` prefixes the ids so they stay unique."""

    def leg(
        n: str, call: str, user: uuid.UUID, when: str, endpoint: str = "APP", **extra: object
    ) -> dict:
        base = {
            "orgId": org,
            "legId": f"{customer}-{n}",
            "callId": f"{customer}-{call}",
            "userUuid": str(user),
            "startedAt": when,
            "durationSeconds": 90,
            "endpointType": endpoint,
            "callType": "NATIONAL",
            "jitterMs": 10,
            "latencyMs": 100,
            "packetLossPct": 1,
        }
        return {**base, **extra}

    return [
        leg(
            "1", "c1", U[0], at(0), jitterMs=150, latencyMs=400, packetLossPct=5.0
        ),  # on every threshold: fine
        leg("2", "c2", U[0], at(0, 10), "DESK_PHONE", jitterMs=151),  # poor
        leg("3", "c3", U[1], at(1), "ROOM_DEVICE", latencyMs=401),  # poor
        leg("4", "c4", U[1], at(2), "OTHER_DEVICE", packetLossPct=5.1),  # poor
        leg("5", "c5", U[2], at(3), "ANALOG", jitterMs=900),  # no metrics counted: analog
        leg("6", "c6", U[2], at(3), "THIRD_PARTY", jitterMs=900),  # third party
        leg("7", "c7", U[2], at(3), "APP", ipVersion=6, jitterMs=900),  # IPv6
        leg(
            "8", "c8", U[0], at(6, 23, 59, 59), "DESK_PHONE", durationSeconds=29
        ),  # Sunday 23:59:59: in
        leg("9", "c9", U[0], at(7, 0, 0, 0), "DESK_PHONE"),  # next Monday 00:00:00: out
        leg("10a", "c10", U[3], at(4), "APP", feature="HUNT_GROUP", videoSeconds=60, hasVideo=True),
        leg("10b", "c10", U[4], at(4), "DESK_PHONE", feature="HUNT_GROUP"),  # second leg, same call
        leg(
            "q1",
            "q1",
            U[5],
            at(5),
            feature="CALL_QUEUE",
            queueOutcome="ANSWERED",
            queueWaitSeconds=30,
        ),
        leg(
            "q2",
            "q2",
            U[5],
            at(5),
            feature="CALL_QUEUE",
            queueOutcome="ABANDONED",
            queueWaitSeconds=50,
        ),
        leg(
            "q3a",
            "q3",
            U[5],
            at(5),
            feature="CALL_QUEUE",
            queueOutcome="ANSWERED",
            queueWaitSeconds=10,
        ),
        leg(
            "q3b",
            "q3",
            U[6],
            at(5),
            feature="CALL_QUEUE",
            queueOutcome="ANSWERED",
            queueWaitSeconds=10,
        ),
        leg("aa", "aa", U[7], at(5), feature="AUTO_ATTENDANT"),
    ] + [
        leg(f"many{n}", f"many{n}", U[8], at(2, 8, n), "APP") for n in range(7)
    ]  # U9: 7 calls = MEDIUM


def measured(leg: dict) -> bool:
    return leg["endpointType"] not in ("ANALOG", "THIRD_PARTY") and leg.get("ipVersion", 4) == 4


def poor(leg: dict) -> bool:
    return measured(leg) and (
        leg["jitterMs"] > 150 or leg["latencyMs"] > 400 or leg["packetLossPct"] > 5
    )


def in_week(leg: dict) -> bool:
    start = datetime(WEEK.year, WEEK.month, WEEK.day, tzinfo=UTC)
    return (
        start
        <= datetime.fromisoformat(leg["startedAt"].replace("Z", "+00:00"))
        < start + timedelta(weeks=1)
    )


def expected_customer(legs: list[dict], users: int) -> dict:
    week = [leg for leg in legs if in_week(leg)]
    per_user: dict[str, set] = defaultdict(set)
    for leg in week:
        per_user[leg["userUuid"]].add(leg["callId"])
    counts = [len(c) for c in per_user.values()]
    return {
        "calls": len({leg["callId"] for leg in week}),
        "minutes": (sum(leg["durationSeconds"] for leg in week) + 30) // 60,
        "active": len(per_user),
        "buckets": {
            "NONE": max(users - len(per_user), 0),
            "LOW": sum(1 for c in counts if c <= 5),
            "MEDIUM": sum(1 for c in counts if 5 < c <= 20),
            "HIGH": sum(1 for c in counts if c > 20),
        },
        "legs": sum(1 for leg in week if measured(leg)),
        "poor": sum(1 for leg in week if poor(leg)),
        "endpoints": _endpoints(week),
        "features": _features(week),
        "queue": _queue(week),
    }


def _endpoints(week: list[dict]) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for leg in week:
        if measured(leg):
            out[leg["endpointType"]][0] += 1
            out[leg["endpointType"]][1] += poor(leg)
    return {k: tuple(v) for k, v in out.items()}


def _features(week: list[dict]) -> dict[str, int]:
    calls: dict[str, set] = defaultdict(set)
    for leg in week:
        if leg.get("feature", "NONE") != "NONE":
            calls[leg["feature"]].add(leg["callId"])
    return {k: len(v) for k, v in calls.items()}


def _queue(week: list[dict]) -> dict[str, int]:
    calls = {leg["callId"]: leg for leg in week if leg.get("queueOutcome")}
    answered = [c for c in calls.values() if c["queueOutcome"] == "ANSWERED"]
    abandoned = [c for c in calls.values() if c["queueOutcome"] == "ABANDONED"]
    return {
        "total": len(calls),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "answer_wait": sum(c["queueWaitSeconds"] for c in answered),
        "abandon_wait": sum(c["queueWaitSeconds"] for c in abandoned),
    }


@pytest.fixture
async def world(db, client: httpx.AsyncClient):
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    contoso_full = await factories.admin(contoso, AdminRole.FULL_ADMIN)
    acme = await factories.customer(northwind, "Acme", Region.US)
    bolt = await factories.customer(northwind, "Bolt", Region.US)
    euro = await factories.customer(northwind, "Euro", Region.EU)
    other = await factories.customer(contoso, "Contoso US", Region.US)
    for n in range(12):  # Acme has 12 users, 9 of whom call in the week
        await CustomerUser.create(
            customer=acme,
            uuid=uuid.uuid4(),
            email=f"u{n}@acme.example",
            display_name=f"U{n}",
            created_at=datetime.now(UTC),
        )
    await factories.assign(team[AdminRole.ADMIN].admin, bolt)
    legs = {
        "Acme": legs_for(str(acme.org_id), "a"),
        "Bolt": legs_for(str(bolt.org_id), "b")[:4],
        "Euro": legs_for(str(euro.org_id), "e")[:2],
    }
    full = team[AdminRole.FULL_ADMIN].token
    for lines in legs.values():
        response = await post(client, full, "call-legs", ndjson(lines))
        assert response.status_code == 200, response.text
    assert (
        await post(
            client, contoso_full.token, "call-legs", ndjson(legs_for(str(other.org_id), "o"))
        )
    ).status_code == 200
    users = {"Acme": 12, "Bolt": 0, "Euro": 0}
    return {"team": team, "legs": legs, "users": users, "contoso_full": contoso_full}


async def refresh(now: datetime) -> str:
    from workers.calling import refresh_calling_week

    return await refresh_calling_week({}, now.isoformat())


TREE = """query($r: Region!, $w: Date) { callingAnalytics(region: $r, weekStart: $w) {
  region week { start end } refreshedAt
  usageTrend(weeks: 2) { week { start end } activeUsers usersByVolume { bucket users } }
  customersUsage(first: 10) { totalCount nodes { customer { name } totalCalls callMinutes activeUsers callsChangePct } }
  qualityTrend(weeks: 2) { week { start } totalLegs poorLegs poorPct }
  qualityByEndpointType { endpointType totalLegs poorLegs poorPct }
  customersQuality(first: 10) { totalCount nodes { customer { name } totalLegs poorLegs poorPct } }
  featureUse { feature calls }
  callQueue { kpis { avgTimeToAnswerSeconds avgWaitBeforeAbandonSeconds avgAbandonedRatePct }
              customers(first: 10) { totalCount nodes { customer { name } totalCalls answeredCalls abandonedCalls
                abandonedRatePct avgTimeToAnswerSeconds avgWaitBeforeAbandonSeconds } } } } }"""


def pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def expected_tree(world: dict, names: list[str]) -> dict:
    figures = {n: expected_customer(world["legs"][n], world["users"][n]) for n in names}
    legs = sum(f["legs"] for f in figures.values())
    poor_legs = sum(f["poor"] for f in figures.values())
    endpoints: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    features: dict[str, int] = defaultdict(int)
    queue = defaultdict(int)
    for f in figures.values():
        for k, (n, p) in f["endpoints"].items():
            endpoints[k][0] += n
            endpoints[k][1] += p
        for k, n in f["features"].items():
            features[k] += n
        for k, n in f["queue"].items():
            queue[k] += n
    with_queue = [n for n in names if figures[n]["queue"]["total"]]
    order = ("DESK_PHONE", "ROOM_DEVICE", "APP", "OTHER_DEVICE")
    return {
        "customersUsage": sorted(
            (
                {
                    "customer": {"name": n},
                    "totalCalls": f["calls"],
                    "callMinutes": f["minutes"],
                    "activeUsers": f["active"],
                    "callsChangePct": None,
                }
                for n, f in figures.items()
            ),
            key=lambda r: -r["totalCalls"],
        ),
        "usagePoint": {
            "activeUsers": sum(f["active"] for f in figures.values()),
            "usersByVolume": [
                {"bucket": b, "users": sum(f["buckets"][b] for f in figures.values())}
                for b in ("NONE", "LOW", "MEDIUM", "HIGH")
            ],
        },
        "qualityPoint": {"totalLegs": legs, "poorLegs": poor_legs, "poorPct": pct(poor_legs, legs)},
        "qualityByEndpointType": [
            {
                "endpointType": e,
                "totalLegs": endpoints[e][0],
                "poorLegs": endpoints[e][1],
                "poorPct": pct(endpoints[e][1], endpoints[e][0]),
            }
            for e in order
            if e in endpoints
        ],
        "customersQuality": sorted(
            (
                {
                    "customer": {"name": n},
                    "totalLegs": f["legs"],
                    "poorLegs": f["poor"],
                    "poorPct": pct(f["poor"], f["legs"]),
                }
                for n, f in figures.items()
                if f["legs"]
            ),
            key=lambda r: (-r["poorLegs"] / r["totalLegs"], -r["poorLegs"]),
        ),
        "featureUse": sorted(
            ({"feature": k, "calls": v} for k, v in features.items()),
            key=lambda r: (-r["calls"], r["feature"]),
        ),
        "queueKpis": {
            "avgTimeToAnswerSeconds": round(queue["answer_wait"] / queue["answered"], 1)
            if queue["answered"]
            else 0.0,
            "avgWaitBeforeAbandonSeconds": round(queue["abandon_wait"] / queue["abandoned"], 1)
            if queue["abandoned"]
            else 0.0,
            "avgAbandonedRatePct": pct(queue["abandoned"], queue["total"]),
        },
        "queueCustomers": len(with_queue),
    }


@pytest.mark.parametrize(
    ("role", "region", "names"),
    [
        (AdminRole.FULL_ADMIN, "US", ["Acme", "Bolt"]),
        (AdminRole.ADMIN, "US", ["Bolt"]),
        (AdminRole.READ_ONLY_ADMIN, "EU", ["Euro"]),
    ],
)
async def test_every_section_matches_the_legs(
    client: httpx.AsyncClient, world: dict, role: AdminRole, region: str, names: list[str]
) -> None:
    assert await refresh(REFRESH) == WEEK.isoformat()
    answer = (
        await data(client, world["team"][role].token, TREE, {"r": region, "w": WEEK.isoformat()})
    )["callingAnalytics"]
    expected = expected_tree(world, names)
    assert answer["week"] == {"start": "2026-10-26", "end": "2026-11-01"}
    assert answer["refreshedAt"] == REFRESH.isoformat()
    assert answer["customersUsage"]["nodes"] == expected["customersUsage"]
    assert answer["usageTrend"][1]["week"]["start"] == WEEK.isoformat()
    assert {k: answer["usageTrend"][1][k] for k in ("activeUsers", "usersByVolume")} == expected[
        "usagePoint"
    ]
    assert answer["usageTrend"][0]["activeUsers"] == 0  # the week before: no legs
    assert {
        k: answer["qualityTrend"][1][k] for k in ("totalLegs", "poorLegs", "poorPct")
    } == expected["qualityPoint"]
    assert answer["qualityByEndpointType"] == expected["qualityByEndpointType"]
    assert answer["customersQuality"]["nodes"] == expected["customersQuality"]
    assert answer["featureUse"] == expected["featureUse"]
    assert answer["callQueue"]["kpis"] == expected["queueKpis"]
    assert answer["callQueue"]["customers"]["totalCount"] == expected["queueCustomers"]


async def test_the_thresholds_fall_where_the_spec_says(
    client: httpx.AsyncClient, world: dict
) -> None:
    acme = expected_customer(world["legs"]["Acme"], 12)
    # c1 sits on every threshold and is fine; c2, c3, c4 and c8? c8 is fine.
    assert acme["poor"] == 3
    # analog, third-party and IPv6 legs count in usage, not in quality; Monday 00:00 is next week.
    assert (
        acme["calls"] == 20  # c1-c8, c10 (two legs), q1-q3, aa and seven "many" calls
        and acme["legs"] == len([leg for leg in world["legs"]["Acme"] if in_week(leg)]) - 3
    )
    assert await refresh(REFRESH) == WEEK.isoformat()
    answer = await data(
        client, world["team"][AdminRole.FULL_ADMIN].token, TREE, {"r": "US", "w": WEEK.isoformat()}
    )
    usage = {
        n["customer"]["name"]: n for n in answer["callingAnalytics"]["customersUsage"]["nodes"]
    }
    assert usage["Acme"]["totalCalls"] == 20
    queue = answer["callingAnalytics"]["callQueue"]["kpis"]
    assert queue == {
        "avgTimeToAnswerSeconds": 20.0,
        "avgWaitBeforeAbandonSeconds": 50.0,
        "avgAbandonedRatePct": 33.3,
    }


async def test_rollup_is_idempotent_and_the_next_week_sees_the_monday_leg(
    client: httpx.AsyncClient, world: dict
) -> None:
    from app.db import fetch_all
    from app.domain.calling_rollup import rollup_week

    await refresh(REFRESH)
    tables = (
        "calling_weekly_customer",
        "calling_weekly_endpoint",
        "calling_weekly_feature",
        "calling_weekly_queue",
    )

    async def rows() -> dict:
        return {
            t: await fetch_all(
                f"SELECT customer_id, week_start, {'*'} FROM {t} ORDER BY customer_id, id"
            )
            for t in tables
        }

    first = await rows()
    await rollup_week(WEEK)
    again = await rows()

    def without_ids(d: dict) -> dict:
        return {t: [{k: v for k, v in r.items() if k != "id"} for r in rs] for t, rs in d.items()}

    assert without_ids(again) == without_ids(first)
    await rollup_week(WEEK + timedelta(weeks=1))
    next_week = await data(
        client,
        world["team"][AdminRole.FULL_ADMIN].token,
        TREE,
        {"r": "US", "w": (WEEK + timedelta(weeks=1)).isoformat()},
    )
    usage = next_week["callingAnalytics"]["customersUsage"]["nodes"]
    assert [(n["customer"]["name"], n["totalCalls"], n["callsChangePct"]) for n in usage] == [
        ("Acme", 1, -95.0)
    ]


async def test_a_week_not_rolled_up_answers_empty_sections(
    client: httpx.AsyncClient, world: dict
) -> None:
    answer = (
        await data(
            client,
            world["team"][AdminRole.FULL_ADMIN].token,
            TREE,
            {"r": "US", "w": WEEK.isoformat()},
        )
    )["callingAnalytics"]
    assert answer["refreshedAt"] is None
    assert answer["customersUsage"] == {"totalCount": 0, "nodes": []}
    assert answer["qualityByEndpointType"] == [] and answer["featureUse"] == []
    assert answer["callQueue"]["kpis"] == {
        "avgTimeToAnswerSeconds": 0.0,
        "avgWaitBeforeAbandonSeconds": 0.0,
        "avgAbandonedRatePct": 0.0,
    }


async def test_default_week_is_the_one_the_last_sunday_refresh_covers(
    client: httpx.AsyncClient, world: dict
) -> None:
    from app.domain.calling_rollup import refreshed_week

    assert refreshed_week(datetime(2026, 11, 8, 0, 0, tzinfo=UTC)) == WEEK  # at the refresh itself
    assert refreshed_week(datetime(2026, 11, 14, 23, 59, tzinfo=UTC)) == WEEK  # all that week long
    assert refreshed_week(datetime(2026, 11, 15, 0, 0, tzinfo=UTC)) == WEEK + timedelta(weeks=1)
    answer = await data(
        client,
        world["team"][AdminRole.FULL_ADMIN].token,
        "{ callingAnalytics(region: US) { week { start } } }",
    )
    assert (
        answer["callingAnalytics"]["week"]["start"] == refreshed_week(datetime.now(UTC)).isoformat()
    )


async def test_bad_weeks_are_errors(client: httpx.AsyncClient, world: dict) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    tuesday = await gql(
        client,
        token,
        '{ callingAnalytics(region: US, weekStart: "2026-10-27") { week { start } } }',
    )
    assert (
        "is a Tuesday: weeks start on Monday (e.g. 2026-10-26)"
        in tuesday.json()["errors"][0]["message"]
    )
    for weeks in (0, 53):
        bad = await gql(
            client,
            token,
            f"{{ callingAnalytics(region: US) {{ usageTrend(weeks: {weeks}) {{ activeUsers }} }} }}",
        )
        assert "`weeks` must be between 1 and 52" in bad.json()["errors"][0]["message"]
    missing = await gql(client, token, "{ callingAnalytics { week { start } } }")
    assert "region" in missing.json()["errors"][0]["message"]


async def test_another_partner_sees_only_its_own_calls(
    client: httpx.AsyncClient, world: dict
) -> None:
    await refresh(REFRESH)
    answer = await data(
        client, world["contoso_full"].token, TREE, {"r": "US", "w": WEEK.isoformat()}
    )
    names = [n["customer"]["name"] for n in answer["callingAnalytics"]["customersUsage"]["nodes"]]
    assert names == ["Contoso US"]


async def test_the_cron_job_runs_on_a_worker_with_a_chosen_clock(
    db, redis_url: str, world: dict
) -> None:
    from arq.connections import create_pool

    from app.db import fetch_all
    from app.queue import QUEUE_NAME, redis_settings
    from workers.settings import build_worker

    queue = await create_pool(redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:
        await queue.delete(QUEUE_NAME)
        job = await queue.enqueue_job("refresh_calling_week", REFRESH.isoformat())
        worker = build_worker(redis_url, in_process=True, burst=True)
        await worker.async_run()
        await worker.close()
        assert await job.result(timeout=5) == WEEK.isoformat()
    finally:
        await queue.aclose()
    rows = await fetch_all("SELECT week_start FROM calling_week")
    assert [str(r["week_start"])[:10] for r in rows] == [WEEK.isoformat()]


def test_the_rollup_command_checks_its_week(tmp_path) -> None:
    from tests.cli_process import cli_env, run_cli

    env = cli_env(f"sqlite://{tmp_path / 'db.sqlite3'}", tmp_path)
    assert run_cli(["migrate"], env).returncode == 0
    tuesday = run_cli(["rollup", "--week", "2026-11-10"], env)
    assert tuesday.returncode == 1 and "is a Tuesday" in tuesday.stderr
    ok = run_cli(["rollup", "--week", "2026-11-09"], env)
    assert ok.returncode == 0 and "rolled up the calling week of 2026-11-09" in ok.stdout


async def test_the_demo_shows_calling_analytics_in_every_region_with_calling_customers(
    client: httpx.AsyncClient, db
) -> None:
    from app.db import fetch_all
    from app.demo import demo_admins, load_demo

    await load_demo(80, seed=9, now=datetime.now(UTC))
    admin = demo_admins(9)[0]  # full@northwind.example
    rows = await fetch_all(
        "SELECT DISTINCT c.region FROM customer c JOIN partner_organization p ON p.id = c.partner_id"
        " JOIN call_leg l ON l.customer_id = c.id WHERE p.domain = ?",
        ["northwind.example"],
    )
    regions = sorted(r["region"] for r in rows)
    assert regions, "the demo has calling customers"
    for region in regions:
        answer = await data(client, admin.token, TREE, {"r": region, "w": None})
        calling = answer["callingAnalytics"]
        assert calling["refreshedAt"] is not None, region
        assert calling["customersUsage"]["totalCount"] > 0, region
        assert sum(p["totalLegs"] for p in calling["qualityTrend"]) > 0, region
