"""Ingest: partner integrations push NDJSON batches of usage and inventory.

A batch is validated whole (every line, then every reference: customers by
org id, subscriptions by id, locations by id, all within the partner) and
written in one transaction, upserting on each kind's natural key, so
re-sending a batch changes nothing. A bad line rejects the batch with its
line number and reason; nothing of it is written.

Lines are parsed and validated by msgspec (one compiled decoder a kind: types,
bounds, lengths, patterns, enums, unknown fields refused) with the cross-field
rules in each line's `__post_init__`. A batch first goes through the fast path
(every line decoded, one text check over all its strings); only when that fails
is it walked line by line to name each bad line, its field and why.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
import orjson
from msgspec import Meta
from tortoise.transactions import in_transaction

from app.bulk import upsert
from app.clock import utcnow
from app.db import execute_many, fetch_all, unbounded_statements
from app.domain.access import ADMIN_MANAGEMENT_ROLES, Viewer
from app.domain.attention_states import record_changes
from app.domain.call_leg_partitions import ensure_partitions_for_rows
from app.domain.sql import one_of
from app.domain.text import text_fault
from app.models.enums import CallFeature, CallType, EndpointType, LicenseType, QueueOutcome

MAX_LINES = 50_000
MAX_ERRORS_REPORTED = 20
# Who may push data: a FULL_ADMIN's token (an integration acts for the partner).
INGEST_ROLES = ADMIN_MANAGEMENT_ROLES
# The largest value of an INTEGER column: a count above it is refused, not overflowed.
INT_MAX = 2_147_483_647


class IngestRejected(Exception):
    """The batch is refused; `errors` name each bad line (1-based) and why."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "rejected")
        self.status = status
        self.errors = errors


def _one_of(enum: type) -> Any:
    """A Literal of an enum's values: decoded as plain text, refused when not one of them."""
    return Literal[tuple(member.value for member in enum)]


def Text(max_length: int, min_length: int = 0, pattern: str | None = None) -> Any:
    """A text field's type: its length bounds in characters, and a pattern if any."""
    return Annotated[str, Meta(min_length=min_length, max_length=max_length, pattern=pattern)]


Count = Annotated[int, Meta(ge=0, le=INT_MAX)]
NonNegative = Annotated[float, Meta(ge=0)]
# RFC 3339 with its offset (`Z` or `±hh:mm`); converted to UTC by the line.
Instant = Annotated[datetime, Meta(tz=True)]


class Line(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True, gc=False):
    """One NDJSON line: fields in camelCase as the client sends them, nothing else.
    (gc=False: a line holds only scalars, so it can be in no reference cycle, and
    50,000 of them need not be tracked by the cycle collector.)"""


class OrgLine(Line, kw_only=True):
    org_id: uuid.UUID


class CallLegLine(OrgLine, kw_only=True):
    location_id: uuid.UUID | None = None
    leg_id: Text(64, 1)
    call_id: Text(64, 1)
    user_uuid: uuid.UUID | None = None
    started_at: Instant
    duration_seconds: Annotated[int, Meta(ge=0, le=7 * 86400)]
    video_seconds: Count = 0
    has_audio: bool = True
    has_video: bool = False
    endpoint_type: _one_of(EndpointType)
    ip_version: int = 4
    jitter_ms: NonNegative | None = None
    latency_ms: NonNegative | None = None
    packet_loss_pct: Annotated[float, Meta(ge=0, le=100)] | None = None
    call_type: _one_of(CallType)
    feature: _one_of(CallFeature) = CallFeature.NONE.value
    queue_outcome: _one_of(QueueOutcome) | None = None
    queue_wait_seconds: Count | None = None

    def __post_init__(self) -> None:
        if self.ip_version != 4 and self.ip_version != 6:
            raise ValueError("ipVersion: is 4 or 6")
        if self.video_seconds > self.duration_seconds:
            raise ValueError("videoSeconds is more than durationSeconds")
        if (self.queue_outcome is None) == (self.feature == "CALL_QUEUE"):
            raise ValueError("queueOutcome goes with feature CALL_QUEUE, and only with it")
        if self.started_at.tzinfo is not UTC:
            self.started_at = self.started_at.astimezone(UTC)


class LicenseSnapshotLine(Line, kw_only=True):
    subscription_id: Text(40, 1)
    license_type: _one_of(LicenseType)
    week_start: date
    quantity: Count
    assigned: Count
    used7d: Count
    used90d: Count

    def __post_init__(self) -> None:
        if self.week_start.weekday() != 0:
            raise ValueError("weekStart: is the Monday the week starts on")
        if self.used7d > self.used90d:
            raise ValueError("used7d is more than used90d")


MAC = re.compile(r"[0-9A-F]{12}")
MAC_SEPARATORS = re.compile(r"[:.-]")


class DeviceLine(OrgLine, kw_only=True):
    device_id: uuid.UUID
    location_id: uuid.UUID | None = None
    product: Text(100, 1)
    mac: str
    firmware: Text(100) | None = None
    phone_number: Text(20) | None = None
    extension: Text(10) | None = None
    user_id: Text(254) | None = None
    user_uuid: uuid.UUID | None = None

    def __post_init__(self) -> None:
        mac = MAC_SEPARATORS.sub("", self.mac).upper()
        if not MAC.fullmatch(mac):
            raise ValueError("mac: is 12 hexadecimal digits, e.g. 00:1A:2B:3C:4D:5E")
        self.mac = mac


class PhoneNumberLine(OrgLine, kw_only=True):
    location_id: uuid.UUID | None = None
    phone_number: Text(20, pattern=r"^\+[0-9]{4,15}$") | None = None
    extension: Text(10, pattern=r"^[0-9]{1,10}$") | None = None
    pstn_connection: Text(100) | None = None
    active: bool = True
    user_type: Text(40) | None = None
    number_type: Text(10, pattern=r"^(Primary|Secondary)$") | None = None
    user_id: Text(254) | None = None
    user_uuid: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if (self.phone_number is None) == (self.extension is None):
            raise ValueError("give phoneNumber (E.164) or extension, one of them")

    @property
    def number_key(self) -> str:
        return self.phone_number or f"ext:{self.location_id}:{self.extension}"


class AppSessionLine(OrgLine, kw_only=True):
    user_uuid: uuid.UUID
    client_type: Text(40, 1)
    platform: Text(40, 1)
    version: Text(40, 1)
    os_version: Text(60, 1)
    seen_on: date


class DailyUsageLine(OrgLine, kw_only=True):
    day: date
    meeting_participants: Count = 0
    calling_minutes: Count = 0
    messages_sent: Count = 0


class AdminSignInLine(OrgLine, kw_only=True):
    user_email: Text(254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
    signed_in_at: Instant

    def __post_init__(self) -> None:
        if self.signed_in_at.tzinfo is not UTC:
            self.signed_in_at = self.signed_in_at.astimezone(UTC)


@dataclass
class Refs:
    """What a batch's lines name, resolved within the partner: org id -> customer
    id, subscription id -> subscription id, location uuid -> location id (and
    location id -> its customer id)."""

    customers: dict[uuid.UUID, int] = field(default_factory=dict)
    subscriptions: dict[str, int] = field(default_factory=dict)
    locations: dict[uuid.UUID, int] = field(default_factory=dict)
    location_owner: dict[int, int] = field(default_factory=dict)
    complete: bool = True  # every line's references resolved (else some line is refused)


@dataclass(frozen=True)
class Kind:
    """One ingestible kind: its line type, target table, columns and natural key."""

    name: str
    line: type[Line]
    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    update: bool  # upsert the other columns (inventory) or keep the first (events)
    rows: Callable[[list[Any], Refs], list[tuple]]  # lines, resolved refs -> column values


def _call_leg_rows(lines: list[CallLegLine], refs: Refs) -> list[tuple]:
    customer, location = refs.customers, refs.locations.get
    return [
        (
            customer[x.org_id],
            location(x.location_id),
            x.leg_id,
            x.call_id,
            x.user_uuid,
            x.started_at,
            x.duration_seconds,
            x.video_seconds,
            x.has_audio,
            x.has_video,
            x.endpoint_type,
            x.ip_version,
            x.jitter_ms,
            x.latency_ms,
            x.packet_loss_pct,
            x.call_type,
            x.feature,
            x.queue_outcome,
            x.queue_wait_seconds,
        )
        for x in lines
    ]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "call-legs",
            CallLegLine,
            "call_leg",
            (
                "customer_id",
                "location_id",
                "leg_id",
                "call_id",
                "user_uuid",
                "started_at",
                "duration_seconds",
                "video_seconds",
                "has_audio",
                "has_video",
                "endpoint_type",
                "ip_version",
                "jitter_ms",
                "latency_ms",
                "packet_loss_pct",
                "call_type",
                "feature",
                "queue_outcome",
                "queue_wait_seconds",
            ),
            # started_at is in the key: on PostgreSQL call_leg is partitioned by week of it.
            ("customer_id", "leg_id", "started_at"),
            False,
            _call_leg_rows,
        ),
        Kind(
            "license-snapshots",
            LicenseSnapshotLine,
            "license_snapshot",
            (
                "subscription_id",
                "license_type",
                "week_start",
                "quantity",
                "assigned",
                "used_7d",
                "used_90d",
            ),
            ("subscription_id", "license_type", "week_start"),
            True,
            lambda lines, r: [
                (
                    r.subscriptions[x.subscription_id],
                    x.license_type,
                    x.week_start,
                    x.quantity,
                    x.assigned,
                    x.used7d,
                    x.used90d,
                )
                for x in lines
            ],
        ),
        Kind(
            "devices",
            DeviceLine,
            "device",
            (
                "customer_id",
                "location_id",
                "device_uuid",
                "product",
                "mac",
                "firmware",
                "phone_number",
                "extension",
                "user_id",
                "user_uuid",
            ),
            ("device_uuid",),
            True,
            lambda lines, r: [
                (
                    r.customers[x.org_id],
                    r.locations.get(x.location_id),
                    x.device_id,
                    x.product,
                    x.mac,
                    x.firmware,
                    x.phone_number,
                    x.extension,
                    x.user_id,
                    x.user_uuid,
                )
                for x in lines
            ],
        ),
        Kind(
            "phone-numbers",
            PhoneNumberLine,
            "phone_number",
            (
                "customer_id",
                "location_id",
                "number_key",
                "phone_number",
                "extension",
                "pstn_connection",
                "active",
                "user_type",
                "number_type",
                "user_id",
                "user_uuid",
            ),
            ("customer_id", "number_key"),
            True,
            lambda lines, r: [
                (
                    r.customers[x.org_id],
                    r.locations.get(x.location_id),
                    x.number_key,
                    x.phone_number,
                    x.extension,
                    x.pstn_connection,
                    x.active,
                    x.user_type,
                    x.number_type,
                    x.user_id,
                    x.user_uuid,
                )
                for x in lines
            ],
        ),
        Kind(
            "app-sessions",
            AppSessionLine,
            "app_session",
            (
                "customer_id",
                "user_uuid",
                "client_type",
                "platform",
                "version",
                "os_version",
                "seen_on",
            ),
            ("customer_id", "user_uuid", "client_type", "platform", "seen_on"),
            True,
            lambda lines, r: [
                (
                    r.customers[x.org_id],
                    x.user_uuid,
                    x.client_type,
                    x.platform,
                    x.version,
                    x.os_version,
                    x.seen_on,
                )
                for x in lines
            ],
        ),
        Kind(
            "daily-usage",
            DailyUsageLine,
            "daily_org_usage",
            ("customer_id", "day", "meeting_participants", "calling_minutes", "messages_sent"),
            ("customer_id", "day"),
            True,
            lambda lines, r: [
                (
                    r.customers[x.org_id],
                    x.day,
                    x.meeting_participants,
                    x.calling_minutes,
                    x.messages_sent,
                )
                for x in lines
            ],
        ),
        Kind(
            "admin-sign-ins",
            AdminSignInLine,
            "customer_admin_sign_in",
            ("customer_id", "user_email", "signed_in_at"),
            ("customer_id", "user_email", "signed_in_at"),
            False,
            lambda lines, r: [
                (r.customers[x.org_id], x.user_email.lower(), x.signed_in_at) for x in lines
            ],
        ),
    )
}


@dataclass(frozen=True)
class _Schema:
    """A kind's compiled decoder and what its error messages need to know."""

    decode: Callable[[bytes], Any]
    texts: tuple[tuple[str, str], ...]  # (attribute, name as sent) of every text field
    patterns: dict[str, str]  # name as sent -> the pattern its text must match
    choices: dict[str, str]  # name as sent -> "'A', 'B' or 'C'" for enumerated fields


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    """The values of the Literal inside a field's annotation (in declared order), if any."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    for inner in get_args(annotation):
        if values := _literal_values(inner):
            return values
    return ()


def _schema(line: type[Line]) -> _Schema:
    texts, patterns, choices = [], {}, {}
    for f in msgspec.inspect.type_info(line).fields:
        types = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        for t in types:
            if isinstance(t, msgspec.inspect.StrType):
                texts.append((f.name, f.encode_name))
                if t.pattern:
                    patterns[f.encode_name] = t.pattern
    for f in msgspec.structs.fields(line):
        if values := _literal_values(f.type):
            quoted = [repr(v) for v in values]
            choices[f.encode_name] = ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
    # strict=False: numbers and booleans sent as strings ("120", "true") are taken, as before.
    decoder = msgspec.json.Decoder(line, strict=False)
    return _Schema(decoder.decode, tuple(texts), patterns, choices)


SCHEMAS: dict[str, _Schema] = {name: _schema(kind.line) for name, kind in KINDS.items()}


def _error(line: int, message: str) -> dict[str, Any]:
    return {"line": line, "message": message}


@dataclass
class Batch:
    """A batch's validated lines and, at the same index, their 1-based line numbers."""

    numbers: list[int]
    lines: list[Any]


def parse(kind: Kind, body: bytes) -> Batch:
    """Every non-blank line decoded and validated, or IngestRejected naming the bad ones."""
    numbers, raws = [], []
    for n, raw in enumerate(body.split(b"\n"), start=1):
        if raw.strip():
            numbers.append(n)
            raws.append(raw)
    if not raws:
        raise IngestRejected(422, [_error(0, "The batch is empty: send one JSON object a line.")])
    if len(raws) > MAX_LINES:
        raise IngestRejected(
            413, [_error(0, f"A batch is at most {MAX_LINES:,} lines (got {len(raws):,}).")]
        )
    schema = SCHEMAS[kind.name]
    decode = schema.decode
    try:
        lines = [decode(raw) for raw in raws]
    except (msgspec.MsgspecError, UnicodeDecodeError):
        raise IngestRejected(422, _line_errors(schema, numbers, raws)) from None
    if _has_text_fault(schema, lines):
        raise IngestRejected(422, _line_errors(schema, numbers, raws))
    return Batch(numbers, lines)


def _has_text_fault(schema: _Schema, lines: list[Any]) -> bool:
    """Whether any text field of any line is unacceptable text: one scan of them all."""
    for attribute, _ in schema.texts:
        text = "".join(v for v in map(attrgetter(attribute), lines) if v)
        # ASCII text is acceptable exactly when it holds no control character (the
        # printable test, in C); other text gets the full check.
        if not (text.isascii() and text.isprintable()) and text_fault(text):
            return True
    return False


def _line_errors(schema: _Schema, numbers: list[int], raws: list[bytes]) -> list[dict[str, Any]]:
    """The slow path: each line on its own, up to MAX_ERRORS_REPORTED errors."""
    errors = []
    for n, raw in zip(numbers, raws, strict=True):
        try:
            line = schema.decode(raw)
        except msgspec.ValidationError as exc:
            # msgspec validates as it parses: a line may fail a rule before its JSON breaks.
            fault = _json_fault(raw)
            message = f"not JSON: {fault}" if fault else _describe(schema, exc)
            errors.append(_error(n, message))
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            errors.append(_error(n, f"not JSON: {_json_fault(raw) or exc}"))
        else:
            for attribute, name in schema.texts:
                value = getattr(line, attribute)
                if value and (fault := text_fault(value)):
                    errors.append(_error(n, f"{name}: {fault}"))
                    break
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    return errors


def _json_fault(raw: bytes) -> str | None:
    """Why a line is not JSON, in orjson's words (they say line and column), or None."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as fault:
        return str(fault)
    return None


_AT = re.compile(r"(?s)(?P<message>.*?)(?: - at `\$(?:\.(?P<field>\w+))?`)?")
_TYPE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean",
    "null": "null",
    "object": "an object",
    "array": "an array",
    "datetime": "a datetime",
    "date": "a date",
    "uuid": "a UUID",
}
_BOUNDS = {
    ">=": "greater than or equal to",
    ">": "greater than",
    "<=": "less than or equal to",
    "<": "less than",
}


def _describe(schema: _Schema, exc: msgspec.ValidationError) -> str:
    """msgspec's reason for refusing a line, said as `field: why` with the field as sent."""
    found = _AT.fullmatch(str(exc))
    assert found is not None  # the pattern matches any text
    message, name = found["message"], found["field"]
    if m := re.fullmatch(r"Object contains unknown field `(.*)`", message, re.S):
        name, why = m[1], "Extra inputs are not permitted"
    elif m := re.fullmatch(r"Object missing required field `(.*)`", message, re.S):
        name, why = m[1], "Field required"
    elif m := re.fullmatch(r"Expected `(?:int|float)` (>=|>|<=|<) (\S+)", message):
        bound = m[2].removesuffix(".0")
        why = f"Input should be {_BOUNDS[m[1]]} {bound}"
    elif m := re.fullmatch(r"Expected `str` of length >= (\d+)", message):
        why = f"String should have at least {m[1]} character{'s' if m[1] != '1' else ''}"
    elif m := re.fullmatch(r"Expected `str` of length <= (\d+)", message):
        why = f"String should have at most {m[1]} characters"
    elif message.startswith("Expected `str` matching regex"):
        why = f"String should match pattern '{schema.patterns.get(name or '')}'"
    elif m := re.fullmatch(r"Invalid enum value (.*)", message, re.S):
        why = f"Input should be {schema.choices.get(name or '', 'one of the listed values')}"
        why += f" (got {m[1]})"
    elif message == "Expected `datetime` with a timezone component":
        why = "needs a UTC offset, e.g. 2026-11-16T09:30:00Z"
    elif message == "Invalid RFC3339 encoded datetime":
        why = "Input should be a valid datetime, e.g. 2026-11-16T09:30:00Z"
    elif message == "Invalid RFC3339 encoded date":
        why = "Input should be a valid date, e.g. 2026-11-16"
    elif message == "Invalid UUID":
        why = "Input should be a valid UUID"
    elif m := re.fullmatch(r"Expected `(\w+)(?: \| \w+)*`, got `(\w+)`", message):
        expected = _TYPE_NAMES.get(m[1], m[1])
        got = _TYPE_NAMES.get(m[2], m[2])
        if name is None:
            return f"A line should be one JSON object, not {got}"
        why = f"Input should be {schema.choices.get(name or '') or expected}, not {got}"
    else:
        why = message.strip()
    return f"{name}: {why}" if name else why


async def _resolve(viewer: Viewer, kind: Kind, lines: Sequence[Any]) -> Refs:
    """Customers, subscriptions and locations the lines name, within the partner
    (each distinct value looked up once); `complete` says whether all resolved."""
    refs = Refs()
    fields = kind.line.__struct_fields__
    orgs = set(map(attrgetter("org_id"), lines)) if "org_id" in fields else set()
    if orgs:
        where = one_of("c.org_id", list(orgs), "UUID")
        rows = await fetch_all(
            f"SELECT c.id, c.org_id FROM customer c WHERE c.partner_id = ? AND {where.text}",
            [viewer.partner_id, *where.params],
        )
        refs.customers.update({uuid.UUID(str(r["org_id"])): r["id"] for r in rows})
    subs = set(map(attrgetter("subscription_id"), lines)) if "subscription_id" in fields else set()
    if subs:
        where = one_of("s.subscription_id", list(subs), "TEXT")
        rows = await fetch_all(
            "SELECT s.id, s.subscription_id FROM subscription s"
            " JOIN customer c ON c.id = s.customer_id"
            f" WHERE c.partner_id = ? AND {where.text}",
            [viewer.partner_id, *where.params],
        )
        refs.subscriptions.update({r["subscription_id"]: r["id"] for r in rows})
    located = set(map(attrgetter("location_id"), lines)) if "location_id" in fields else set()
    located.discard(None)
    if located:
        where = one_of("l.uuid", list(located), "UUID")
        rows = await fetch_all(
            "SELECT l.id, l.uuid, l.customer_id FROM location l"
            " JOIN customer c ON c.id = l.customer_id"
            f" WHERE c.partner_id = ? AND {where.text}",
            [viewer.partner_id, *where.params],
        )
        refs.locations.update({uuid.UUID(str(r["uuid"])): r["id"] for r in rows})
        refs.location_owner.update({r["id"]: r["customer_id"] for r in rows})
    refs.complete = orgs <= refs.customers.keys() and subs <= refs.subscriptions.keys()
    if refs.complete and located:
        pairs = {(x.org_id, x.location_id) for x in lines if x.location_id is not None}
        refs.complete = all(
            refs.location_owner.get(refs.locations.get(location, -1)) == refs.customers[org]
            for org, location in pairs
        )
    return refs


def _check_refs(batch: Batch, refs: Refs) -> None:
    """IngestRejected naming each line whose reference is not the partner's own."""
    if refs.complete:
        return
    errors = []
    for n, x in zip(batch.numbers, batch.lines, strict=True):
        if hasattr(x, "org_id") and x.org_id not in refs.customers:
            errors.append(_error(n, f"orgId {x.org_id} is not a customer of your organization"))
        elif hasattr(x, "subscription_id") and x.subscription_id not in refs.subscriptions:
            errors.append(
                _error(
                    n,
                    f"subscriptionId {x.subscription_id!r} is not a subscription of your customers",
                )
            )
        elif getattr(x, "location_id", None):
            location = refs.locations.get(x.location_id)
            owner = refs.location_owner.get(location) if location is not None else None
            if location is None or owner != refs.customers.get(x.org_id):
                errors.append(
                    _error(n, f"locationId {x.location_id} is not a location of that customer")
                )
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    if errors:
        raise IngestRejected(422, errors)


async def ingest(
    viewer: Viewer, kind_name: str, body: bytes, *, now: datetime | None = None
) -> int:
    """Validate and write one batch; returns the number of lines accepted. `now`
    (the clock; jobs and tests choose it) is when attention changes happen."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise IngestRejected(
            404, [_error(0, f"Unknown kind {kind_name!r}: one of {', '.join(KINDS)}.")]
        )
    if viewer.role not in INGEST_ROLES:
        raise IngestRejected(
            403, [_error(0, f"Ingest needs a FULL_ADMIN token (this one is {viewer.role.value}).")]
        )
    if not viewer.partner.setup_completed:
        raise IngestRejected(
            403, [_error(0, "The organization setup is pending: complete it first.")]
        )
    batch = parse(kind, body)
    refs = await _resolve(viewer, kind, batch.lines)
    _check_refs(batch, refs)
    rows = kind.rows(batch.lines, refs)
    # Call legs: their weeks' partitions first (PostgreSQL), in short transactions of their own.
    await ensure_partitions_for_rows(kind.table, kind.columns, rows)
    async with in_transaction() as conn:
        await unbounded_statements(conn)  # a bulk batch, bounded by its size instead
        await upsert(conn, kind.table, kind.columns, kind.key, kind.update, rows)
        if kind.name == "admin-sign-ins":
            await _note_admin_activity(conn, rows, now or utcnow())
    return len(rows)


async def _note_admin_activity(conn: Any, rows: list[tuple], now: datetime) -> None:
    """A customer's last admin activity is its newest sign-in; what that changes
    of the customers' attention states (NO_RECENT_ACTIVITY) is announced in the
    same transaction."""
    latest: dict[int, datetime] = {}
    for customer_id, _, at in rows:
        latest[customer_id] = max(at, latest.get(customer_id, at))
    await execute_many(
        "UPDATE customer SET last_admin_activity_at = ? WHERE id = ?"
        " AND (last_admin_activity_at IS NULL OR last_admin_activity_at < ?)",
        [(at, cid, at) for cid, at in latest.items()],
        conn,
    )
    await record_changes(sorted(latest), now)
