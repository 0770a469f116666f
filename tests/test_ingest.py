"""POST /ingest/{kind}: NDJSON batches, validated whole, written in one
transaction, idempotent on natural keys, only for the partner's customers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import httpx
import orjson
import pytest

from app.models.customers import Customer, Location
from app.models.enums import AdminRole, LicenseType
from app.models.subscriptions import LicenseLine, Subscription
from tests import factories
from tests.test_mutation_matrix import everything

MONDAY = date(2026, 11, 9)


def ndjson(lines: list[dict]) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


async def post(client: httpx.AsyncClient, token: str, kind: str, body: bytes) -> httpx.Response:
    return await client.post(
        f"/ingest/{kind}", content=body, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
async def world(db):
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    customer = await factories.customer(northwind, "Acme")
    foreign = await factories.customer(contoso, "Contoso customer")
    location = await Location.create(customer=customer, uuid=uuid.uuid4(), name="HQ", country="US")
    foreign_location = await Location.create(
        customer=foreign, uuid=uuid.uuid4(), name="X", country="US"
    )
    sub = await Subscription.create(
        customer=customer,
        subscription_id="Sub-100",
        kind="SUBSCRIPTION",
        status="ACTIVE",
        start_date=MONDAY,
        added_at=datetime.now(UTC),
    )
    await LicenseLine.create(
        subscription=sub, license_type=LicenseType.MEETINGS, product="MEETINGS", quantity=10
    )
    return {
        "team": team,
        "customer": customer,
        "foreign": foreign,
        "location": location,
        "foreign_location": foreign_location,
    }


def leg(org: Customer, n: int, **extra: object) -> dict:
    return {
        "orgId": str(org.org_id),
        "legId": f"leg-{n}",
        "callId": f"call-{n}",
        "startedAt": f"2026-11-10T09:{n % 60:02d}:00Z",
        "durationSeconds": 120,
        "endpointType": "APP",
        "callType": "INTERNAL",
        "jitterMs": 10,
        "latencyMs": 50,
        "packetLossPct": 0.5,
        **extra,
    }


def samples(w: dict) -> dict[str, list[dict]]:
    org = str(w["customer"].org_id)
    return {
        "call-legs": [leg(w["customer"], n, locationId=str(w["location"].uuid)) for n in range(3)],
        "license-snapshots": [
            {
                "subscriptionId": "Sub-100",
                "licenseType": "MEETINGS",
                "weekStart": "2026-11-09",
                "quantity": 10,
                "assigned": 6,
                "used7d": 4,
                "used90d": 5,
            }
        ],
        "devices": [
            {
                "orgId": org,
                "deviceId": str(uuid.UUID(int=7)),
                "product": "Cisco 8865",
                "mac": "00:1a:2b:3c:4d:5e",
                "locationId": str(w["location"].uuid),
            }
        ],
        "phone-numbers": [
            {"orgId": org, "phoneNumber": "+13035550100", "active": True},
            {"orgId": org, "extension": "2001", "locationId": str(w["location"].uuid)},
        ],
        "app-sessions": [
            {
                "orgId": org,
                "userUuid": str(uuid.UUID(int=9)),
                "clientType": "Webex App",
                "platform": "macOS",
                "version": "45.10.0",
                "osVersion": "15.1",
                "seenOn": "2026-11-12",
            }
        ],
        "daily-usage": [
            {
                "orgId": org,
                "day": "2026-11-12",
                "meetingParticipants": 4,
                "callingMinutes": 30,
                "messagesSent": 12,
            }
        ],
        "admin-sign-ins": [
            {
                "orgId": org,
                "userEmail": "Boss@Acme.example",
                "signedInAt": "2026-11-12T08:00:00+01:00",
            }
        ],
    }


TABLES = {
    "call-legs": "call_leg",
    "license-snapshots": "license_snapshot",
    "devices": "device",
    "phone-numbers": "phone_number",
    "app-sessions": "app_session",
    "daily-usage": "daily_org_usage",
    "admin-sign-ins": "customer_admin_sign_in",
}


@pytest.mark.parametrize("kind", list(TABLES))
async def test_each_kind_is_written_once_and_a_resent_batch_changes_nothing(
    client: httpx.AsyncClient, world: dict, kind: str
) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    body = ndjson(samples(world)[kind])
    before = await everything()
    first = await post(client, token, kind, body)
    assert first.status_code == 200, first.text
    assert first.json() == {"kind": kind, "accepted": len(samples(world)[kind])}
    after_first = await everything()
    table = TABLES[kind]
    assert len(after_first[table]) == len(before[table]) + len(samples(world)[kind])
    again = await post(client, token, kind, body)
    assert again.status_code == 200
    assert await everything() == after_first


async def test_values_arrive_as_sent(client: httpx.AsyncClient, world: dict) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    for kind, lines in samples(world).items():
        assert (await post(client, token, kind, ndjson(lines))).status_code == 200
    from app.models.calling import CallLeg
    from app.models.customers import CustomerAdminSignIn
    from app.models.inventory import Device

    legs = await CallLeg.filter(customer_id=world["customer"].id).order_by("leg_id")
    assert [leg.leg_id for leg in legs] == ["leg-0", "leg-1", "leg-2"]
    assert legs[0].location_id == world["location"].id
    assert legs[0].started_at == datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    assert (await Device.get(device_uuid=uuid.UUID(int=7))).mac == "001A2B3C4D5E"
    sign_in = await CustomerAdminSignIn.get(customer_id=world["customer"].id)
    assert sign_in.user_email == "boss@acme.example"
    assert sign_in.signed_in_at == datetime(2026, 11, 12, 7, 0, tzinfo=UTC)  # stored in UTC
    customer = await Customer.get(id=world["customer"].id)
    assert customer.last_admin_activity_at == datetime(2026, 11, 12, 7, 0, tzinfo=UTC)
    # An upsert of inventory takes the new values.
    changed = samples(world)["devices"]
    changed[0]["firmware"] = "sip12-1"
    assert (await post(client, token, "devices", ndjson(changed))).status_code == 200
    assert (await Device.get(device_uuid=uuid.UUID(int=7))).firmware == "sip12-1"


async def test_a_bad_last_line_of_10000_rejects_the_whole_batch(
    client: httpx.AsyncClient, world: dict
) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    lines = [leg(world["customer"], n) for n in range(9_999)]
    lines.append({**leg(world["customer"], 10_000), "packetLossPct": 101})
    before = await everything()
    response = await post(client, token, "call-legs", ndjson(lines))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"line": 10_000, "message": "packetLossPct: Input should be less than or equal to 100"}
    ]
    assert await everything() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"orgId": "not-a-uuid"}, "orgId"),
        ({"startedAt": "2026-11-10T09:00:00"}, "needs a UTC offset"),
        ({"endpointType": "FAX"}, "endpointType"),
        ({"ipVersion": 5}, "is 4 or 6"),
        ({"videoSeconds": 999}, "videoSeconds is more than durationSeconds"),
        ({"queueOutcome": "ANSWERED"}, "queueOutcome goes with feature CALL_QUEUE"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"legId": ""}, "legId"),
        ({"legId": "l\x00x"}, "legId: holds a control character (U+0000)"),
        ({"callId": "c\x1b[2J"}, "callId: holds a control character (U+001B)"),
        ({"legId": "l\x7f"}, "legId: holds a control character (U+007F)"),
        ({"callId": "c\x85"}, "callId: holds a control character (U+0085)"),
        ({"legId": "l\ufffe"}, "legId: holds a noncharacter (U+FFFE)"),
        ({"callId": "two\nlines"}, "callId: holds a line break or tab (U+000A)"),
    ],
)
async def test_a_bad_line_says_where_and_why(
    client: httpx.AsyncClient, world: dict, change: dict, message: str
) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    lines = [leg(world["customer"], 1), {**leg(world["customer"], 2), **change}]
    before = await everything()
    response = await post(client, token, "call-legs", ndjson(lines))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["line"] == 2 and message in error["message"]
    assert await everything() == before


async def test_a_lone_surrogate_in_a_line_is_refused_with_its_line_number(
    client: httpx.AsyncClient, world: dict
) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    good = orjson.dumps(leg(world["customer"], 1))
    bad = orjson.dumps(leg(world["customer"], 2)).replace(b'"legId":"', b'"legId":"\\ud800', 1)
    before = await everything()
    response = await post(client, token, "call-legs", good + b"\n" + bad + b"\n")
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["line"] == 2 and "not JSON" in error["message"]
    assert await everything() == before


async def test_references_must_be_the_partners_own(client: httpx.AsyncClient, world: dict) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    before = await everything()
    foreign = await post(
        client, token, "call-legs", ndjson([leg(world["customer"], 1), leg(world["foreign"], 2)])
    )
    assert foreign.status_code == 422
    assert foreign.json()["errors"] == [
        {
            "line": 2,
            "message": f"orgId {world['foreign'].org_id} is not a customer of your organization",
        }
    ]
    other_location = leg(world["customer"], 3, locationId=str(world["foreign_location"].uuid))
    assert (await post(client, token, "call-legs", ndjson([other_location]))).status_code == 422
    snapshot = samples(world)["license-snapshots"][0]
    unknown = await post(
        client, token, "license-snapshots", ndjson([{**snapshot, "subscriptionId": "Sub-404"}])
    )
    assert unknown.status_code == 422 and "Sub-404" in unknown.json()["errors"][0]["message"]
    tuesday = await post(
        client, token, "license-snapshots", ndjson([{**snapshot, "weekStart": "2026-11-10"}])
    )
    assert "Monday" in tuesday.json()["errors"][0]["message"]
    assert await everything() == before


async def test_who_may_push_and_what_is_refused_as_a_whole(
    client: httpx.AsyncClient, world: dict
) -> None:
    body = ndjson([leg(world["customer"], 1)])
    pending = await factories.partner("Pending", "pending.example", setup_completed=False)
    pending_full = await factories.admin(pending, AdminRole.FULL_ADMIN)
    before = await everything()
    for role in (
        AdminRole.ADMIN,
        AdminRole.READ_ONLY_ADMIN,
        AdminRole.SALES_FULL_ADMIN,
        AdminRole.SALES_ADMIN,
    ):
        response = await post(client, world["team"][role].token, "call-legs", body)
        assert (
            response.status_code == 403 and "FULL_ADMIN" in response.json()["errors"][0]["message"]
        )
    assert (await client.post("/ingest/call-legs", content=body)).status_code == 401
    full = world["team"][AdminRole.FULL_ADMIN].token
    assert (await post(client, full, "faxes", body)).status_code == 404
    assert (await post(client, full, "call-legs", b"\n\n")).status_code == 422
    assert (await post(client, full, "call-legs", b'{"orgId": ')).status_code == 422
    too_many = ndjson([leg(world["customer"], n) for n in range(50_001)])
    response = await post(client, full, "call-legs", too_many)
    assert response.status_code == 413 and "50,000" in response.json()["errors"][0]["message"]
    assert (await post(client, pending_full.token, "call-legs", body)).status_code == 403
    assert await everything() == before


async def test_the_cli_ingests_a_file_in_batches(world: dict, tmp_path, database_url: str) -> None:
    from tests.cli_process import cli_env, run_cli

    path = tmp_path / "legs.ndjson"
    path.write_bytes(ndjson([leg(world["customer"], n) for n in range(120)]))
    env = cli_env(database_url, tmp_path)
    email = world["team"][AdminRole.FULL_ADMIN].admin.email
    result = run_cli(["ingest", "call-legs", str(path), "--email", email], env)
    assert result.returncode == 0, result.stderr
    assert "ingested 120 call-legs lines" in result.stdout
    from app.models.calling import CallLeg

    assert await CallLeg.filter(customer_id=world["customer"].id).count() == 120
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(ndjson([leg(world["customer"], 500), {"orgId": "x"}]))
    result = run_cli(["ingest", "call-legs", str(bad), "--email", email], env)
    assert result.returncode == 1 and "line 2: orgId" in result.stderr
    assert await CallLeg.filter(customer_id=world["customer"].id).count() == 120


async def test_the_cli_streams_batches_and_numbers_lines_across_them(
    world: dict, tmp_path, database_url: str
) -> None:
    from app.models.calling import CallLeg
    from tests.cli_process import cli_env, run_cli

    lines = [leg(world["customer"], n) for n in range(50_005)]
    lines[50_002] = {
        **lines[50_002],
        "durationSeconds": -1,
    }  # file line 50,003, in the second batch
    path = tmp_path / "many.ndjson"
    path.write_bytes(ndjson(lines))
    env = cli_env(database_url, tmp_path)
    email = world["team"][AdminRole.FULL_ADMIN].admin.email
    result = run_cli(["ingest", "call-legs", str(path), "--email", email], env, timeout=300)
    assert result.returncode == 1
    assert "line 50003: durationSeconds" in result.stderr
    assert "(50,000 lines of earlier batches were written)" in result.stderr
    assert await CallLeg.filter(customer_id=world["customer"].id).count() == 50_000
    missing = run_cli(["ingest", "call-legs", str(tmp_path / "nope.ndjson"), "--email", email], env)
    assert missing.returncode == 1 and "no file at" in missing.stderr
