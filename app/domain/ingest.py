"""Ingest: partner integrations push NDJSON batches of usage and inventory.

A batch is validated whole (every line, then every reference: customers by
org id, subscriptions by id, locations by id, all within the partner) and
written in one transaction, upserting on each kind's natural key, so
re-sending a batch changes nothing. A bad line rejects the batch with its
line number and reason; nothing of it is written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from tortoise.transactions import in_transaction

from app.bulk import upsert
from app.db import execute_many, fetch_all, unbounded_statements
from app.domain.access import ADMIN_MANAGEMENT_ROLES, Viewer
from app.domain.sql import in_list
from app.domain.text import text_fault
from app.models.enums import CallFeature, CallType, EndpointType, LicenseType, QueueOutcome

MAX_LINES = 50_000
MAX_ERRORS_REPORTED = 20
# Who may push data: a FULL_ADMIN's token (an integration acts for the partner).
INGEST_ROLES = ADMIN_MANAGEMENT_ROLES


class IngestRejected(Exception):
    """The batch is refused; `errors` name each bad line (1-based) and why."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "rejected")
        self.status = status
        self.errors = errors


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-16T09:30:00Z")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class Line(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", populate_by_name=False)

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, value: Any) -> Any:
        """Every string field is acceptable text (app/domain/text.py)."""
        if isinstance(value, str) and (fault := text_fault(value)):
            raise ValueError(fault)
        return value


class OrgLine(Line):
    org_id: uuid.UUID


class CallLegLine(OrgLine):
    leg_id: str = Field(min_length=1, max_length=64)
    call_id: str = Field(min_length=1, max_length=64)
    user_uuid: uuid.UUID | None = None
    location_id: uuid.UUID | None = None
    started_at: UtcDatetime
    duration_seconds: int = Field(ge=0, le=7 * 86400)
    video_seconds: int = Field(default=0, ge=0)
    has_audio: bool = True
    has_video: bool = False
    endpoint_type: EndpointType
    ip_version: int = 4
    jitter_ms: float | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)
    packet_loss_pct: float | None = Field(default=None, ge=0, le=100)
    call_type: CallType
    feature: CallFeature = CallFeature.NONE
    queue_outcome: QueueOutcome | None = None
    queue_wait_seconds: int | None = Field(default=None, ge=0)

    @field_validator("ip_version")
    @classmethod
    def _ip(cls, value: int) -> int:
        if value not in (4, 6):
            raise ValueError("is 4 or 6")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CallLegLine:
        if self.video_seconds > self.duration_seconds:
            raise ValueError("videoSeconds is more than durationSeconds")
        if (self.queue_outcome is not None) != (self.feature is CallFeature.CALL_QUEUE):
            raise ValueError("queueOutcome goes with feature CALL_QUEUE, and only with it")
        return self


class LicenseSnapshotLine(Line):
    subscription_id: str = Field(min_length=1, max_length=40)
    license_type: LicenseType
    week_start: date
    quantity: int = Field(ge=0)
    assigned: int = Field(ge=0)
    used7d: int = Field(ge=0, alias="used7d")
    used90d: int = Field(ge=0, alias="used90d")

    @field_validator("week_start")
    @classmethod
    def _monday(cls, value: date) -> date:
        if value.weekday() != 0:
            raise ValueError("is the Monday the week starts on")
        return value

    @model_validator(mode="after")
    def _usage(self) -> LicenseSnapshotLine:
        if self.used7d > self.used90d:
            raise ValueError("used7d is more than used90d")
        return self


MAC = re.compile(r"^[0-9A-F]{12}$")


class DeviceLine(OrgLine):
    device_id: uuid.UUID
    location_id: uuid.UUID | None = None
    product: str = Field(min_length=1, max_length=100)
    mac: str
    firmware: str | None = Field(default=None, max_length=100)
    phone_number: str | None = Field(default=None, max_length=20)
    extension: str | None = Field(default=None, max_length=10)
    user_id: str | None = Field(default=None, max_length=254)
    user_uuid: uuid.UUID | None = None

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        mac = re.sub(r"[:.-]", "", value).upper()
        if not MAC.match(mac):
            raise ValueError("is 12 hexadecimal digits, e.g. 00:1A:2B:3C:4D:5E")
        return mac


class PhoneNumberLine(OrgLine):
    location_id: uuid.UUID | None = None
    phone_number: str | None = Field(default=None, pattern=r"^\+[0-9]{4,15}$")
    extension: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")
    pstn_connection: str | None = Field(default=None, max_length=100)
    active: bool = True
    user_type: str | None = Field(default=None, max_length=40)
    number_type: str | None = Field(default=None, pattern=r"^(Primary|Secondary)$")
    user_id: str | None = Field(default=None, max_length=254)
    user_uuid: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one(self) -> PhoneNumberLine:
        if (self.phone_number is None) == (self.extension is None):
            raise ValueError("give phoneNumber (E.164) or extension, one of them")
        return self

    @property
    def number_key(self) -> str:
        return self.phone_number or f"ext:{self.location_id}:{self.extension}"


class AppSessionLine(OrgLine):
    user_uuid: uuid.UUID
    client_type: str = Field(min_length=1, max_length=40)
    platform: str = Field(min_length=1, max_length=40)
    version: str = Field(min_length=1, max_length=40)
    os_version: str = Field(min_length=1, max_length=60)
    seen_on: date


class DailyUsageLine(OrgLine):
    day: date
    meeting_participants: int = Field(default=0, ge=0)
    calling_minutes: int = Field(default=0, ge=0)
    messages_sent: int = Field(default=0, ge=0)


class AdminSignInLine(OrgLine):
    user_email: str = Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254)
    signed_in_at: UtcDatetime


@dataclass(frozen=True)
class Kind:
    """One ingestible kind: its line model, target table, columns and natural key."""

    name: str
    line: type[Line]
    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    update: bool  # upsert the other columns (inventory) or keep the first (events)
    row: Callable[[Any, dict], tuple]  # line, resolved refs -> values in column order


def _loc(refs: dict, line: Any) -> int | None:
    return refs["locations"].get(line.location_id) if line.location_id else None


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
            ("customer_id", "leg_id"),
            False,
            lambda x, r: (
                r["customers"][x.org_id],
                _loc(r, x),
                x.leg_id,
                x.call_id,
                x.user_uuid,
                x.started_at,
                x.duration_seconds,
                x.video_seconds,
                x.has_audio,
                x.has_video,
                x.endpoint_type.value,
                x.ip_version,
                x.jitter_ms,
                x.latency_ms,
                x.packet_loss_pct,
                x.call_type.value,
                x.feature.value,
                x.queue_outcome.value if x.queue_outcome else None,
                x.queue_wait_seconds,
            ),
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
            lambda x, r: (
                r["subscriptions"][x.subscription_id],
                x.license_type.value,
                x.week_start,
                x.quantity,
                x.assigned,
                x.used7d,
                x.used90d,
            ),
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
            lambda x, r: (
                r["customers"][x.org_id],
                _loc(r, x),
                x.device_id,
                x.product,
                x.mac,
                x.firmware,
                x.phone_number,
                x.extension,
                x.user_id,
                x.user_uuid,
            ),
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
            lambda x, r: (
                r["customers"][x.org_id],
                _loc(r, x),
                x.number_key,
                x.phone_number,
                x.extension,
                x.pstn_connection,
                x.active,
                x.user_type,
                x.number_type,
                x.user_id,
                x.user_uuid,
            ),
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
            lambda x, r: (
                r["customers"][x.org_id],
                x.user_uuid,
                x.client_type,
                x.platform,
                x.version,
                x.os_version,
                x.seen_on,
            ),
        ),
        Kind(
            "daily-usage",
            DailyUsageLine,
            "daily_org_usage",
            ("customer_id", "day", "meeting_participants", "calling_minutes", "messages_sent"),
            ("customer_id", "day"),
            True,
            lambda x, r: (
                r["customers"][x.org_id],
                x.day,
                x.meeting_participants,
                x.calling_minutes,
                x.messages_sent,
            ),
        ),
        Kind(
            "admin-sign-ins",
            AdminSignInLine,
            "customer_admin_sign_in",
            ("customer_id", "user_email", "signed_in_at"),
            ("customer_id", "user_email", "signed_in_at"),
            False,
            lambda x, r: (r["customers"][x.org_id], x.user_email.lower(), x.signed_in_at),
        ),
    )
}


def _error(line: int, message: str) -> dict[str, Any]:
    return {"line": line, "message": message}


def parse(kind: Kind, body: bytes) -> list[tuple[int, Any]]:
    """(line number, validated line) for every non-blank line, or IngestRejected."""
    raw_lines = body.split(b"\n")
    numbered = [(n, raw) for n, raw in enumerate(raw_lines, start=1) if raw.strip()]
    if not numbered:
        raise IngestRejected(422, [_error(0, "The batch is empty: send one JSON object a line.")])
    if len(numbered) > MAX_LINES:
        raise IngestRejected(
            413, [_error(0, f"A batch is at most {MAX_LINES:,} lines (got {len(numbered):,}).")]
        )
    parsed, errors = [], []
    for n, raw in numbered:
        try:
            parsed.append((n, kind.line.model_validate(orjson.loads(raw))))
        except orjson.JSONDecodeError as exc:
            errors.append(_error(n, f"not JSON: {exc}"))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            errors.append(_error(n, f"{where}: {first['msg'].removeprefix('Value error, ')}"))
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    if errors:
        raise IngestRejected(422, errors)
    return parsed


async def _resolve(viewer: Viewer, lines: Sequence[tuple[int, Any]]) -> dict[str, dict]:
    """Customers, subscriptions and locations the lines name, within the partner."""
    refs: dict[str, dict] = {"customers": {}, "subscriptions": {}, "locations": {}}
    orgs = list({x.org_id for _, x in lines if hasattr(x, "org_id")})
    for chunk in _chunks(orgs, 5000):
        where = in_list("c.org_id", chunk)
        rows = await fetch_all(
            f"SELECT c.id, c.org_id FROM customer c WHERE c.partner_id = ? AND {where.text}",
            [viewer.partner_id, *where.params],
        )
        refs["customers"].update({uuid.UUID(str(r["org_id"])): r["id"] for r in rows})
    subs = list({x.subscription_id for _, x in lines if hasattr(x, "subscription_id")})
    for chunk in _chunks(subs, 5000):
        where = in_list("s.subscription_id", chunk)
        rows = await fetch_all(
            "SELECT s.id, s.subscription_id FROM subscription s"
            " JOIN customer c ON c.id = s.customer_id"
            f" WHERE c.partner_id = ? AND {where.text}",
            [viewer.partner_id, *where.params],
        )
        refs["subscriptions"].update({r["subscription_id"]: r["id"] for r in rows})
    locations = list({x.location_id for _, x in lines if getattr(x, "location_id", None)})
    for chunk in _chunks(locations, 5000):
        where = in_list("l.uuid", chunk)
        rows = await fetch_all(
            "SELECT l.id, l.uuid, l.customer_id FROM location l"
            " JOIN customer c ON c.id = l.customer_id"
            f" WHERE c.partner_id = ? AND {where.text}",
            [viewer.partner_id, *where.params],
        )
        refs["locations"].update({uuid.UUID(str(r["uuid"])): r["id"] for r in rows})
        refs.setdefault("location_owner", {}).update({r["id"]: r["customer_id"] for r in rows})
    return refs


def _check_refs(lines: Sequence[tuple[int, Any]], refs: dict[str, dict]) -> None:
    errors = []
    for n, x in lines:
        if hasattr(x, "org_id") and x.org_id not in refs["customers"]:
            errors.append(_error(n, f"orgId {x.org_id} is not a customer of your organization"))
        elif hasattr(x, "subscription_id") and x.subscription_id not in refs["subscriptions"]:
            errors.append(
                _error(
                    n,
                    f"subscriptionId {x.subscription_id!r} is not a subscription of your customers",
                )
            )
        elif getattr(x, "location_id", None):
            location = refs["locations"].get(x.location_id)
            owner = refs.get("location_owner", {}).get(location)
            if location is None or owner != refs["customers"].get(x.org_id):
                errors.append(
                    _error(n, f"locationId {x.location_id} is not a location of that customer")
                )
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    if errors:
        raise IngestRejected(422, errors)


async def ingest(viewer: Viewer, kind_name: str, body: bytes) -> int:
    """Validate and write one batch; returns the number of lines accepted."""
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
    lines = parse(kind, body)
    refs = await _resolve(viewer, lines)
    _check_refs(lines, refs)
    rows = [kind.row(x, refs) for _, x in lines]
    async with in_transaction() as conn:
        await unbounded_statements(conn)  # a bulk batch, bounded by its size instead
        await upsert(conn, kind.table, kind.columns, kind.key, kind.update, rows)
        if kind.name == "admin-sign-ins":
            await _note_admin_activity(conn, rows)
    return len(rows)


async def _note_admin_activity(conn: Any, rows: list[tuple]) -> None:
    """A customer's last admin activity is its newest sign-in."""
    latest: dict[int, datetime] = {}
    for customer_id, _, at in rows:
        latest[customer_id] = max(at, latest.get(customer_id, at))
    await execute_many(
        "UPDATE customer SET last_admin_activity_at = ? WHERE id = ?"
        " AND (last_admin_activity_at IS NULL OR last_admin_activity_at < ?)",
        [(at, cid, at) for cid, at in latest.items()],
        conn,
    )


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]
