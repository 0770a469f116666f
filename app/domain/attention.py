"""The attention feed's outbox: `write_events` writes attention events (a
customer gaining or losing a status, a trial about to end, a customer entering
the low-assignment section, its call quality declining) in the caller's
transaction, together with one PENDING delivery per enabled webhook of the
partner subscribed to the event's type. The change, its events and their
deliveries commit or roll back together; the workers send the deliveries
(app/domain/attention_webhooks.py), the API reads the events
(app/domain/attention_feed.py).

An event with a `once_key` is written at most once per customer and key (a
second writer of the same one, say a re-run of a rollup week, writes nothing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from app.db import execute, fetch_all, is_postgres
from app.domain.sql import one_of
from app.models.enums import AttentionDeliveryStatus, AttentionEventType, CustomerStatus

# The most rows one INSERT statement carries (SQLite's limit of 32766 parameters).
_ROWS_PER_STATEMENT = 1000
_EVENT_COLUMNS = (
    "partner_id",
    "customer_id",
    "type",
    "status",
    "detail",
    "occurred_at",
    "once_key",
)


@dataclass(frozen=True)
class NewEvent:
    """An attention event about to be written."""

    partner_id: int
    customer_id: int
    type: AttentionEventType
    occurred_at: datetime
    status: CustomerStatus | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    once_key: str | None = None


@dataclass(frozen=True)
class WrittenEvent:
    """An event as written: its id, with what it was written from."""

    id: int
    event: NewEvent


async def write_events(events: Sequence[NewEvent]) -> list[WrittenEvent]:
    """Write `events` (in order: their ids grow in it) and their webhook
    deliveries, inside the caller's transaction when there is one; returns the
    events written (an event whose customer already has its `once_key` is not)."""
    written: list[WrittenEvent] = []
    for start in range(0, len(events), _ROWS_PER_STATEMENT):
        written.extend(await _insert(events[start : start + _ROWS_PER_STATEMENT]))
    await _fan_out(written)
    return written


async def _insert(events: Sequence[NewEvent]) -> list[WrittenEvent]:
    if not events:
        return []
    detail = "CAST(? AS JSONB)" if is_postgres() else "?"
    row = f"(?, ?, ?, ?, {detail}, ?, ?)"
    params: list[Any] = []
    for e in events:
        params += [
            e.partner_id,
            e.customer_id,
            e.type.value,
            e.status.value if e.status else None,
            orjson.dumps(e.detail).decode(),
            e.occurred_at,
            e.once_key,
        ]
    rows = await fetch_all(
        f"INSERT INTO attention_event ({', '.join(_EVENT_COLUMNS)})"
        f" VALUES {', '.join([row] * len(events))}"
        " ON CONFLICT (customer_id, once_key) DO NOTHING"
        " RETURNING id, customer_id, once_key",
        params,
    )
    # RETURNING lists the rows inserted, in no promised order: match them back by
    # (customer, once_key) for keyed events, and by order for the others.
    by_key = {(r["customer_id"], r["once_key"]): int(r["id"]) for r in rows if r["once_key"]}
    unkeyed = sorted(int(r["id"]) for r in rows if not r["once_key"])
    written: list[WrittenEvent] = []
    plain = iter(unkeyed)
    for e in events:
        if e.once_key is None:
            written.append(WrittenEvent(next(plain), e))
        elif (e.customer_id, e.once_key) in by_key:
            written.append(WrittenEvent(by_key.pop((e.customer_id, e.once_key)), e))
    return sorted(written, key=lambda w: w.id)


async def _fan_out(written: Sequence[WrittenEvent]) -> None:
    """One PENDING delivery per written event and enabled webhook of its partner
    that subscribes to its type."""
    if not written:
        return
    partners = sorted({w.event.partner_id for w in written})
    where = one_of("partner_id", partners)
    hooks = await fetch_all(
        f"SELECT id, partner_id, topics FROM attention_webhook WHERE enabled AND {where.text}",
        where.params,
    )
    if not hooks:
        return
    topics_of: dict[int, list[tuple[int, set[str]]]] = defaultdict(list)
    for hook in hooks:
        topics = hook["topics"]
        if isinstance(topics, str | bytes):
            topics = orjson.loads(topics)
        topics_of[hook["partner_id"]].append((int(hook["id"]), set(topics or ())))
    rows: list[tuple[Any, ...]] = []
    for w in written:
        for hook_id, topics in topics_of.get(w.event.partner_id, ()):
            if w.event.type.value in topics:
                rows.append(
                    (
                        hook_id,
                        w.id,
                        w.event.customer_id,
                        AttentionDeliveryStatus.PENDING.value,
                        w.event.occurred_at,
                        w.event.occurred_at,
                    )
                )
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        await execute(
            "INSERT INTO attention_delivery"
            " (webhook_id, event_id, customer_id, status, next_attempt_at, created_at, attempts)"
            f" VALUES {', '.join(['(?, ?, ?, ?, ?, ?, 0)'] * len(chunk))}"
            " ON CONFLICT (webhook_id, event_id) DO NOTHING",
            [v for r in chunk for v in r],
        )
