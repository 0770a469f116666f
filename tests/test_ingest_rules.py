"""Every rule of every ingest kind, one bad line at a time: the batch is refused
with the bad line's number (blank lines counted), the field as the client sent
it and why, and nothing of it is written. Then the batch-level behaviour of the
validator: a bad line among many good ones, several bad lines, the error cap,
text checked across the whole batch, and how upserts treat repeated keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from app.domain.ingest import KINDS, MAX_ERRORS_REPORTED
from app.models.enums import AdminRole
from tests.test_ingest import leg, ndjson, post, samples, world  # noqa: F401
from tests.test_mutation_matrix import everything

INT_MAX = 2**31 - 1
MISSING = object()  # the field is left out of the line

# kind -> (field as sent, its bad value, what the message must say). The field's
# name opens the message ("legId: ..."), except for rules across fields, whose
# message names both ("videoSeconds is more than durationSeconds").
RULES: dict[str, list[tuple[str, object, str]]] = {
    "call-legs": [
        ("orgId", "not-a-uuid", "orgId: Input should be a valid UUID"),
        ("orgId", MISSING, "orgId: Field required"),
        ("orgId", 7, "orgId: Input should be a UUID, not an integer"),
        ("locationId", "HQ", "locationId: Input should be a valid UUID"),
        ("legId", "", "legId: String should have at least 1 character"),
        ("legId", "l" * 65, "legId: String should have at most 64 characters"),
        ("legId", 12, "legId: Input should be a string, not an integer"),
        ("legId", MISSING, "legId: Field required"),
        ("callId", "", "callId: String should have at least 1 character"),
        ("callId", "c" * 65, "callId: String should have at most 64 characters"),
        ("userUuid", "someone", "userUuid: Input should be a valid UUID"),
        ("startedAt", "2026-11-10T09:00:00", "startedAt: needs a UTC offset"),
        ("startedAt", "2026-11-10 09:00:00.5", "startedAt: needs a UTC offset"),
        ("startedAt", "Tuesday 9am", "startedAt: Input should be a valid datetime"),
        ("startedAt", MISSING, "startedAt: Field required"),
        ("durationSeconds", -1, "durationSeconds: Input should be greater than or equal to 0"),
        (
            "durationSeconds",
            604_801,
            "durationSeconds: Input should be less than or equal to 604800",
        ),
        ("durationSeconds", 1.5, "durationSeconds: Input should be an integer, not a number"),
        ("durationSeconds", "two", "durationSeconds: Input should be an integer, not a string"),
        ("videoSeconds", -1, "videoSeconds: Input should be greater than or equal to 0"),
        ("videoSeconds", 121, "videoSeconds is more than durationSeconds"),
        ("hasAudio", "maybe", "hasAudio: Input should be a boolean, not a string"),
        ("hasVideo", None, "hasVideo: Input should be a boolean, not null"),
        ("endpointType", "FAX", "endpointType: Input should be 'DESK_PHONE', 'ROOM_DEVICE',"),
        ("endpointType", MISSING, "endpointType: Field required"),
        ("ipVersion", 5, "ipVersion: is 4 or 6"),
        ("jitterMs", -1, "jitterMs: Input should be greater than or equal to 0"),
        ("latencyMs", -0.5, "latencyMs: Input should be greater than or equal to 0"),
        ("packetLossPct", 100.5, "packetLossPct: Input should be less than or equal to 100"),
        ("packetLossPct", -1, "packetLossPct: Input should be greater than or equal to 0"),
        ("callType", "LOCAL", "callType: Input should be 'INTERNAL',"),
        ("feature", "PAGING", "feature: Input should be 'NONE', 'HUNT_GROUP',"),
        ("queueOutcome", "ANSWERED", "queueOutcome goes with feature CALL_QUEUE, and only with it"),
        ("feature", "CALL_QUEUE", "queueOutcome goes with feature CALL_QUEUE, and only with it"),
        ("queueWaitSeconds", -1, "queueWaitSeconds: Input should be greater than or equal to 0"),
        (
            "queueWaitSeconds",
            INT_MAX + 1,
            f"queueWaitSeconds: Input should be less than or equal to {INT_MAX}",
        ),
        ("surprise", 1, "surprise: Extra inputs are not permitted"),
        ("org_id", "x", "org_id: Extra inputs are not permitted"),
        ("legId", "l\x00x", "legId: holds a control character (U+0000)"),
        ("callId", "c\x9f", "callId: holds a control character (U+009F)"),
        ("legId", "l\ufdd0", "legId: holds a noncharacter (U+FDD0)"),
        ("legId", "l\U0010ffff", "legId: holds a noncharacter (U+10FFFF)"),
        ("callId", "two\tcolumns", "callId: holds a line break or tab (U+0009)"),
        ("callId", "two\u2029paragraphs", "callId: holds a line break or tab (U+2029)"),
    ],
    "license-snapshots": [
        ("subscriptionId", "", "subscriptionId: String should have at least 1 character"),
        ("subscriptionId", "S" * 41, "subscriptionId: String should have at most 40 characters"),
        ("subscriptionId", "Sub\x1b", "subscriptionId: holds a control character (U+001B)"),
        ("licenseType", "GOLD", "licenseType: Input should be 'MEETINGS', 'CALLING_PROFESSIONAL',"),
        ("weekStart", "2026-11-10", "weekStart: is the Monday the week starts on"),
        ("weekStart", "2026-11-31", "weekStart: Input should be a valid date"),
        ("weekStart", MISSING, "weekStart: Field required"),
        ("quantity", -1, "quantity: Input should be greater than or equal to 0"),
        ("quantity", INT_MAX + 1, f"quantity: Input should be less than or equal to {INT_MAX}"),
        ("assigned", -1, "assigned: Input should be greater than or equal to 0"),
        ("used7d", 1.5, "used7d: Input should be an integer, not a number"),
        ("used7d", 6, "used7d is more than used90d"),
        ("used90d", "many", "used90d: Input should be an integer, not a string"),
        ("orgId", "not-a-field-here", "orgId: Extra inputs are not permitted"),
    ],
    "devices": [
        ("deviceId", "phone-1", "deviceId: Input should be a valid UUID"),
        ("deviceId", MISSING, "deviceId: Field required"),
        ("product", "", "product: String should have at least 1 character"),
        ("product", "p" * 101, "product: String should have at most 100 characters"),
        ("product", "Cisco\n8865", "product: holds a line break or tab (U+000A)"),
        ("mac", "00:1a:2b:3c:4d", "mac: is 12 hexadecimal digits, e.g. 00:1A:2B:3C:4D:5E"),
        ("mac", "00:1a:2b:3c:4d:5g", "mac: is 12 hexadecimal digits"),
        ("firmware", "f" * 101, "firmware: String should have at most 100 characters"),
        ("firmware", "sip\x7f", "firmware: holds a control character (U+007F)"),
        ("phoneNumber", "+" + "1" * 20, "phoneNumber: String should have at most 20 characters"),
        ("extension", "1" * 11, "extension: String should have at most 10 characters"),
        ("userId", "u" * 255, "userId: String should have at most 254 characters"),
        ("userUuid", "nobody", "userUuid: Input should be a valid UUID"),
        ("locationId", "HQ", "locationId: Input should be a valid UUID"),
    ],
    "phone-numbers": [
        ("phoneNumber", MISSING, "give phoneNumber (E.164) or extension, one of them"),
        ("extension", "2001", "give phoneNumber (E.164) or extension, one of them"),
        ("extension", "20a1", "extension: String should match pattern '^[0-9]{1,10}$'"),
        ("locationId", "HQ", "locationId: Input should be a valid UUID"),
        (
            "phoneNumber",
            "303-555-0100",
            "phoneNumber: String should match pattern '^\\+[0-9]{4,15}$'",
        ),
        ("phoneNumber", "+1", "phoneNumber: String should match pattern"),
        ("phoneNumber", "+13035550100\u2028", "phoneNumber: "),
        ("pstnConnection", "p" * 101, "pstnConnection: String should have at most 100 characters"),
        ("active", "maybe", "active: Input should be a boolean, not a string"),
        ("userType", "u" * 41, "userType: String should have at most 40 characters"),
        ("userType", "user\ttype", "userType: holds a line break or tab (U+0009)"),
        (
            "numberType",
            "primary",
            "numberType: String should match pattern '^(Primary|Secondary)$'",
        ),
        ("userId", "u" * 255, "userId: String should have at most 254 characters"),
        ("userUuid", "nobody", "userUuid: Input should be a valid UUID"),
    ],
    "app-sessions": [
        ("userUuid", MISSING, "userUuid: Field required"),
        ("clientType", "", "clientType: String should have at least 1 character"),
        ("clientType", "c" * 41, "clientType: String should have at most 40 characters"),
        ("platform", "p" * 41, "platform: String should have at most 40 characters"),
        ("version", "", "version: String should have at least 1 character"),
        ("osVersion", "o" * 61, "osVersion: String should have at most 60 characters"),
        ("osVersion", "15\x001", "osVersion: holds a control character (U+0000)"),
        ("seenOn", "2026-11-31", "seenOn: Input should be a valid date"),
        ("seenOn", 12, "seenOn: Input should be a date, not an integer"),
    ],
    "daily-usage": [
        ("day", "today", "day: Input should be a valid date"),
        ("day", MISSING, "day: Field required"),
        (
            "meetingParticipants",
            -1,
            "meetingParticipants: Input should be greater than or equal to 0",
        ),
        ("callingMinutes", 1.5, "callingMinutes: Input should be an integer, not a number"),
        (
            "messagesSent",
            INT_MAX + 1,
            f"messagesSent: Input should be less than or equal to {INT_MAX}",
        ),
    ],
    "admin-sign-ins": [
        ("userEmail", "boss.acme.example", "userEmail: String should match pattern"),
        ("userEmail", "a" * 65 + "@acme.example", "userEmail: String should match pattern"),
        ("userEmail", "a@" + "b" * 250 + ".example", "userEmail: String should have at most 254"),
        ("userEmail", "boss\u0085@acme.example", "userEmail: "),
        ("signedInAt", "2026-11-12T08:00:00", "signedInAt: needs a UTC offset"),
        ("signedInAt", "noon", "signedInAt: Input should be a valid datetime"),
        ("signedInAt", MISSING, "signedInAt: Field required"),
    ],
}
# Whole lines that are not one JSON object, for every kind.
NOT_A_LINE = [
    (b'{"orgId": ', "not JSON: "),
    (b"[1, 2]", "A line should be one JSON object, not an array"),
    (b'"call"', "A line should be one JSON object, not a string"),
    (b'{"legId": "l\\ud800"}', "not JSON: "),  # a lone surrogate
    (b"\xef\xbb\xbf{}", "not JSON: "),  # a byte order mark
    (b'{"a": 1} {"b": 2}', "not JSON: "),  # two objects on one line
]


def bad_line(good: dict, field: str, value: object) -> bytes:
    line = {k: v for k, v in good.items() if k != field}
    if value is not MISSING:
        line[field] = value
    return orjson.dumps(line)


@pytest.mark.parametrize("kind", list(RULES))
async def test_each_rule_refuses_its_bad_line_by_number_and_field(
    client: httpx.AsyncClient, world: dict, kind: str
) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    good = samples(world)[kind][0]
    assert (await post(client, token, kind, ndjson([good]))).status_code == 200
    before = await everything()
    cases = [(bad_line(good, f, v), why) for f, v, why in RULES[kind]] + NOT_A_LINE
    for bad, why in cases:
        # line 1 good, line 2 blank (counted), line 3 bad, line 4 good
        body = orjson.dumps(good) + b"\n\n" + bad + b"\n" + orjson.dumps(good) + b"\n"
        response = await post(client, token, kind, body)
        assert response.status_code == 422, (bad, response.text)
        [error] = response.json()["errors"]
        assert error["line"] == 3, (bad, error)
        assert error["message"].startswith(why), (bad, error["message"], why)
    assert await everything() == before


def test_the_rules_table_covers_every_field_of_every_kind() -> None:
    import msgspec

    for name, kind in KINDS.items():
        sent = {f.encode_name for f in msgspec.structs.fields(kind.line)}
        tested = {field for field, _, _ in RULES[name]}
        untested = sent - tested - {"orgId"}  # orgId: one rule for all, tested on call legs
        assert not untested, f"{name}: no bad-line case for {sorted(untested)}"


async def test_a_bad_line_among_many_good_ones_is_named_and_nothing_is_written(
    client: httpx.AsyncClient, world: dict
) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    lines = [orjson.dumps(leg(world["customer"], n)) for n in range(3_000)]
    lines[2_500] = orjson.dumps({**leg(world["customer"], 2_500), "durationSeconds": -5})
    # blank lines before it count: 3 of them, so the bad line is line 2,504
    body = b"\n".join([*lines[:10], b"", b"  ", b"", *lines[10:]])
    before = await everything()
    response = await post(client, token, "call-legs", body)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"line": 2_504, "message": "durationSeconds: Input should be greater than or equal to 0"}
    ]
    assert await everything() == before
    # the same batch with that line fixed is taken whole
    lines[2_500] = orjson.dumps(leg(world["customer"], 2_500))
    body = b"\n".join([*lines[:10], b"", b"  ", b"", *lines[10:]])
    accepted = await post(client, token, "call-legs", body)
    assert accepted.json() == {"kind": "call-legs", "accepted": 3_000}


async def test_several_bad_lines_are_reported_in_order_up_to_the_cap(
    client: httpx.AsyncClient, world: dict
) -> None:
    token = world["team"][AdminRole.FULL_ADMIN].token
    customer = world["customer"]
    lines = [orjson.dumps(leg(customer, n)) for n in range(100)]
    # a text fault (found by the whole-batch text check) before decoding faults
    lines[4] = orjson.dumps(leg(customer, 4, legId="l\x01"))
    lines[9] = b"{"
    lines[19] = orjson.dumps(leg(customer, 19, ipVersion=7))
    before = await everything()
    response = await post(client, token, "call-legs", b"\n".join(lines))
    assert response.json()["errors"] == [
        {"line": 5, "message": "legId: holds a control character (U+0001)"},
        {"line": 10, "message": response.json()["errors"][1]["message"]},
        {"line": 20, "message": "ipVersion: is 4 or 6"},
    ]
    assert response.json()["errors"][1]["message"].startswith("not JSON: ")
    # only text faults: the batch decodes, the text check names each line
    lines = [orjson.dumps(leg(customer, n)) for n in range(100)]
    for n in (30, 60):
        lines[n] = orjson.dumps(leg(customer, n, callId="c\u2028"))
    response = await post(client, token, "call-legs", b"\n".join(lines))
    assert [e["line"] for e in response.json()["errors"]] == [31, 61]
    # more bad lines than reported: the first MAX_ERRORS_REPORTED, in order
    lines = [orjson.dumps(leg(customer, n, durationSeconds=-n)) for n in range(1, 40)]
    response = await post(client, token, "call-legs", b"\n".join(lines))
    errors = response.json()["errors"]
    assert [e["line"] for e in errors] == list(range(1, MAX_ERRORS_REPORTED + 1))
    assert await everything() == before


async def test_numbers_and_booleans_sent_as_text_are_taken_and_times_stored_in_utc(
    client: httpx.AsyncClient, world: dict
) -> None:
    from app.models.calling import CallLeg

    token = world["team"][AdminRole.FULL_ADMIN].token
    line = leg(
        world["customer"],
        1,
        durationSeconds="120",
        hasVideo="true",
        jitterMs="1.5",
        startedAt="2026-11-10T10:00:00+01:00",
        orgId=str(world["customer"].org_id).replace("-", "").upper(),
    )
    response = await post(client, token, "call-legs", ndjson([line]))
    assert response.status_code == 200, response.text
    stored = await CallLeg.get(customer_id=world["customer"].id)
    assert (stored.duration_seconds, stored.has_video, stored.jitter_ms) == (120, True, 1.5)
    assert stored.started_at == datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


async def test_a_batch_overlapping_stored_rows_and_repeating_keys_upserts_by_key(
    client: httpx.AsyncClient, world: dict
) -> None:
    from app.models.calling import CallLeg
    from app.models.inventory import Device

    token = world["team"][AdminRole.FULL_ADMIN].token
    customer = world["customer"]
    first = [leg(customer, n) for n in range(3)]
    assert (await post(client, token, "call-legs", ndjson(first))).status_code == 200
    # legs 1-2 again (changed: the stored event is kept), 3-4 new, 4 twice (the last wins)
    again = [leg(customer, n, callId=f"changed-{n}") for n in range(1, 5)]
    again.append(leg(customer, 4, callId="last-4"))
    response = await post(client, token, "call-legs", ndjson(again))
    assert response.status_code == 200, response.text
    stored = {x.leg_id: x.call_id for x in await CallLeg.filter(customer_id=customer.id)}
    assert stored == {
        "leg-0": "call-0",
        "leg-1": "call-1",
        "leg-2": "call-2",
        "leg-3": "changed-3",
        "leg-4": "last-4",
    }
    # a key repeated within a batch of new legs: the last one wins
    twice = [leg(customer, 7, callId="first-7"), leg(customer, 7, callId="last-7")]
    assert (await post(client, token, "call-legs", ndjson(twice))).status_code == 200
    assert (await CallLeg.get(customer_id=customer.id, leg_id="leg-7")).call_id == "last-7"
    # the key holds the start time (call legs are partitioned by it on PostgreSQL):
    # the same leg id at another time is another leg
    moved = leg(customer, 0, startedAt="2026-11-11T09:00:00Z")
    assert (await post(client, token, "call-legs", ndjson([moved]))).status_code == 200
    assert await CallLeg.filter(customer_id=customer.id, leg_id="leg-0").count() == 2
    # inventory takes the newest values of a stored key, and of a key repeated in the batch
    device = samples(world)["devices"][0]
    other = {**device, "deviceId": str(uuid.UUID(int=8)), "mac": "00:1a:2b:3c:4d:5f"}
    assert (await post(client, token, "devices", ndjson([device]))).status_code == 200
    batch = [{**device, "firmware": "one"}, other, {**device, "firmware": "two"}]
    assert (await post(client, token, "devices", ndjson(batch))).status_code == 200
    assert (await Device.get(device_uuid=uuid.UUID(int=7))).firmware == "two"
    assert await Device.filter(customer_id=customer.id).count() == 2
