"""Reading the attention feed: the events app/domain/attention.py writes, as the
viewer may see them (app/domain/access.py `attention_event_scope`: the events of
the customers its role reaches, and read-only those of its external-admin
grants; never another partner's).

- `list_events`: a keyset page, newest first, filtered by type, customer and time.
- `get_event`: one event by id (`node(id:)`), None when out of scope.
- `follow_events`: the events written from now on, as they are committed (the
  `attentionEvents` subscription): the outbox is polled by id.

Following by id must not trust a bare `id > last`: a transaction that took an
id earlier may commit later than one that took a larger id. The follower reads
from a floor that trails by `FOLLOW_GRACE_SECONDS`: ids at or below it are done
(the table's newest id as a look saw it, once that look is older than the
grace); above it, the window of ids it already knows (present when it started,
or sent; at most `FOLLOW_WINDOW`, the oldest leaving first in a burst) is not
sent again. An event whose writing transaction outlives the grace (or sits
behind a burst larger than the window) may so be missed by a follower;
`list_events` always has it. A customer that comes into the viewer's scope
brings along its events of the last grace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from app.db import as_datetime, fetch_all
from app.domain.access import Viewer, attention_event_scope
from app.domain.errors import InvalidArgument
from app.domain.pagination import MAX_PAGE_SIZE, KeyPart, Keyset, Page, cursor_int, page_size
from app.domain.sql import FALSE, TRUE, Sql, all_of, in_list, one_of
from app.models.enums import AttentionEventType, CustomerStatus, ProductFamily
from app.outage import Outage, database_unreachable

# The keys of `detail`, by type (camelCase, plain values: app/domain/attention.py).
TRIAL_ID, END_DATE, DAYS_LEFT = "trialId", "endDate", "daysLeft"
FAMILY = "family"
WEEK, POOR_SHARE, PREVIOUS_POOR_SHARE, RISE_POINTS = (
    "week",
    "poorShare",
    "previousPoorShare",
    "risePoints",
)

# An attention event's id is a bigint: a cursor carries any positive one.
EVENT_ID = KeyPart(int, lambda v: cursor_int(v, 1))
KEYSET = Keyset("attention", (EVENT_ID,), descending=True)
# The most customers one `customerIds` filter names.
MAX_CUSTOMER_IDS = MAX_PAGE_SIZE

_COLUMNS = "e.id, e.customer_id, e.type, e.status, e.detail, e.occurred_at"
_FROM = "attention_event e JOIN customer c ON c.id = e.customer_id"


@dataclass(frozen=True, slots=True)
class AttentionEventValue:
    """One attention event as the feed shows it; the typed readings of `detail`
    are None where the event's type carries no such value."""

    id: int
    customer_id: int
    type: AttentionEventType
    status: CustomerStatus | None
    detail: Mapping[str, Any]
    occurred_at: datetime

    def _of(self, kind: AttentionEventType, key: str) -> Any:
        return self.detail.get(key) if self.type is kind else None

    @property
    def trial_id(self) -> int | None:
        value = self._of(AttentionEventType.TRIAL_ENDING, TRIAL_ID)
        return value if type(value) is int else None

    @property
    def trial_end_date(self) -> date | None:
        return _date(self._of(AttentionEventType.TRIAL_ENDING, END_DATE))

    @property
    def days_left(self) -> int | None:
        value = self._of(AttentionEventType.TRIAL_ENDING, DAYS_LEFT)
        return value if type(value) is int else None

    @property
    def family(self) -> ProductFamily | None:
        value = self._of(AttentionEventType.LOW_LICENSE_ASSIGNMENT, FAMILY)
        return ProductFamily(value) if value in ProductFamily.__members__ else None

    @property
    def week(self) -> date | None:
        return _date(self._of(AttentionEventType.CALL_QUALITY_DECLINING, WEEK))

    @property
    def poor_share(self) -> float | None:
        return _number(self._of(AttentionEventType.CALL_QUALITY_DECLINING, POOR_SHARE))

    @property
    def previous_poor_share(self) -> float | None:
        return _number(self._of(AttentionEventType.CALL_QUALITY_DECLINING, PREVIOUS_POOR_SHARE))

    @property
    def rise_points(self) -> float | None:
        return _number(self._of(AttentionEventType.CALL_QUALITY_DECLINING, RISE_POINTS))


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def _value(row: Mapping[str, Any]) -> AttentionEventValue:
    detail = row["detail"]
    if isinstance(detail, str | bytes):
        detail = orjson.loads(detail)
    return AttentionEventValue(
        id=int(row["id"]),
        customer_id=int(row["customer_id"]),
        type=AttentionEventType(row["type"]),
        status=CustomerStatus(row["status"]) if row["status"] else None,
        detail=detail if isinstance(detail, dict) else {},
        occurred_at=as_datetime(row["occurred_at"]),
    )


@dataclass(frozen=True)
class EventFilter:
    """What `list_events` and `follow_events` narrow the feed to. `customer_ids`
    holds None for an id that names no customer (the schema decodes global ids);
    None for a whole filter: no narrowing."""

    types: Sequence[AttentionEventType] | None = None
    customer_ids: Sequence[int | None] | None = None
    since: datetime | None = None

    def checked(self, now: datetime) -> EventFilter:
        """The filter, or InvalidArgument naming the argument at fault."""
        if self.customer_ids is not None:
            if len(self.customer_ids) > MAX_CUSTOMER_IDS:
                raise InvalidArgument(
                    f"`customerIds` names at most {MAX_CUSTOMER_IDS} customers"
                    f" (got {len(self.customer_ids)})"
                )
            if any(c is None for c in self.customer_ids):
                raise InvalidArgument(
                    "`customerIds` holds an id that is not a Customer's: pass the `id`"
                    " of a customer"
                )
        if self.since is not None:
            offset = self.since.utcoffset()
            if offset is None or offset != timedelta(0):
                raise InvalidArgument(
                    "`since` must be a UTC time (ending in Z or +00:00),"
                    f" got {self.since.isoformat()}"
                )
            if self.since > now:
                raise InvalidArgument(
                    f"`since` is in the future ({self.since.isoformat()}; now is {now.isoformat()})"
                )
        return self

    def sql(self) -> Sql:
        """The filter as SQL on an event aliased `e` (an empty list matches nothing)."""
        parts: list[Sql] = []
        if self.types is not None:
            parts.append(in_list("e.type", sorted({t.value for t in self.types})))
        if self.customer_ids is not None:
            ids = sorted({c for c in self.customer_ids if c is not None})
            # A customer out of the viewer's scope (or of no one) simply matches
            # nothing: the answer tells nothing of its existence.
            parts.append(one_of("e.customer_id", ids) if ids else FALSE)
        if self.since is not None:
            parts.append(Sql("e.occurred_at >= ?", (self.since,)))
        return all_of(parts) if parts else TRUE


async def list_events(
    viewer: Viewer,
    *,
    first: int | None,
    after: str | None,
    flt: EventFilter,
    now: datetime,
) -> Page[AttentionEventValue]:
    """The attention events the viewer sees, newest first (by id), narrowed by
    `flt`: two statements (count and page) whatever the page."""
    size = page_size(first)
    past = KEYSET.after(after)
    where = attention_event_scope(viewer) & flt.checked(now).sql()
    counted = await fetch_all(f"SELECT COUNT(*) AS n FROM {_FROM} WHERE {where.text}", where.params)
    page_where = where & KEYSET.sql_after(["e.id"], past)
    rows = await fetch_all(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE {page_where.text}"
        f" ORDER BY {KEYSET.sql_order(['e.id'])} LIMIT ?",
        [*page_where.params, size + 1],
    )
    page = KEYSET.page_of(
        rows, size, lambda r: [int(r["id"])], total=int(counted[0]["n"]), after=past
    )
    return replace(page, items=[_value(r) for r in page.items])


async def get_event(viewer: Viewer, event_id: int) -> AttentionEventValue | None:
    """One event the viewer sees; None when it is out of scope or missing."""
    where = attention_event_scope(viewer) & Sql("e.id = ?", (event_id,))
    rows = await fetch_all(f"SELECT {_COLUMNS} FROM {_FROM} WHERE {where.text}", where.params)
    return _value(rows[0]) if rows else None


# ------------------------------------------------------------------ following

# How long an id stays in a follower's window: a writing transaction that took
# an id this long before committing may be missed.
FOLLOW_GRACE_SECONDS = 120.0
# The most ids a follower's window holds (each poll re-reads them).
FOLLOW_WINDOW = 1000
# The most new events one read takes (the follower reads again at once when full).
FOLLOW_BATCH = 200
# The database lost under the followers of this process (shared: one log line
# when it goes, one when it is back, however many subscriptions are open).
FOLLOW_OUTAGE = Outage("Database (attentionEvents subscriptions)", logging.getLogger(__name__))


class EventFollower:
    """The state of one `follow_events`: the floor (ids at or below it are done),
    the window of known ids above it (with when each became known), and the
    table's newest id as each look saw it (`marks`): once a look is older than
    the grace, every id up to what it saw is done."""

    def __init__(
        self,
        viewer: Viewer,
        types: Sequence[AttentionEventType] | None,
        *,
        grace_seconds: float = FOLLOW_GRACE_SECONDS,
        window: int = FOLLOW_WINDOW,
        batch: int = FOLLOW_BATCH,
    ) -> None:
        self.where = attention_event_scope(viewer) & EventFilter(types=types).sql()
        self.grace_seconds = grace_seconds
        self.window = window
        self.batch = batch
        self.floor = 0
        self.known: dict[int, float] = {}
        self.marks: deque[tuple[float, int]] = deque()

    async def start(self) -> None:
        """Take the events already written as known: the newest `window` of the
        viewer's stream (a transaction that took an earlier id and commits after
        this still comes through, within the grace)."""
        rows = await fetch_all(
            f"SELECT e.id FROM {_FROM} WHERE {self.where.text} ORDER BY e.id DESC LIMIT ?",
            [*self.where.params, self.window],
        )
        ids = [int(r["id"]) for r in rows]
        now = time.monotonic()
        self.known = {i: now for i in sorted(ids)}
        self.floor = min(ids) - 1 if len(ids) >= self.window else 0
        await self._mark(now)

    async def poll(self) -> tuple[list[AttentionEventValue], bool]:
        """The events committed since the last poll that the viewer sees (in id
        order), and whether more may be waiting (a full read)."""
        after = self.where & Sql("e.id > ?", (self.floor,))
        limit = len(self.known) + self.batch
        rows = await fetch_all(
            f"SELECT e.id FROM {_FROM} WHERE {after.text} ORDER BY e.id LIMIT ?",
            [*after.params, limit],
        )
        new = [int(r["id"]) for r in rows if int(r["id"]) not in self.known]
        events: list[AttentionEventValue] = []
        if new:
            which = self.where & one_of("e.id", new, "BIGINT")
            found = await fetch_all(
                f"SELECT {_COLUMNS} FROM {_FROM} WHERE {which.text} ORDER BY e.id", which.params
            )
            events = [_value(r) for r in found]
        now = time.monotonic()
        for event in events:
            self.known[event.id] = now
        full = len(rows) >= limit
        if not full:  # every id committed up to now read: a mark
            await self._mark(now)
        self._age(now)
        return events, full

    async def _mark(self, now: float) -> None:
        """Note the table's newest id now (whoever's: a customer that comes into
        scope later brings along only its events of the last grace)."""
        rows = await fetch_all("SELECT MAX(id) AS m FROM attention_event")
        self.marks.append((now, int(rows[0]["m"] or 0)))

    def _age(self, now: float) -> None:
        """Looks and ids older than the grace, then the oldest ids beyond the
        window's size, leave the window; the floor moves past them."""
        while self.marks and now - self.marks[0][0] >= self.grace_seconds:
            self.floor = max(self.floor, self.marks.popleft()[1])
        gone = {i for i, seen in self.known.items() if now - seen >= self.grace_seconds}
        surplus = len(self.known) - len(gone) - self.window
        if surplus > 0:
            gone.update(sorted(i for i in self.known if i not in gone)[:surplus])
        if gone:
            self.floor = max(self.floor, *gone)
        self.known = {i: t for i, t in self.known.items() if i > self.floor}


async def follow_events(
    viewer: Viewer,
    types: Sequence[AttentionEventType] | None,
    poll_seconds: float,
) -> AsyncIterator[AttentionEventValue]:
    """The events the viewer sees (of `types`, None: every type) written from now
    on, as they commit, oldest first; polls every `poll_seconds` (at once again
    after a full read). Endless: the caller stops iterating (a closed socket
    cancels it) and nothing is left behind. The database going away does not
    end it: it looks again with backoff (one log line when the process loses
    the database, one when it is back) and goes on where it was."""
    follower = EventFollower(viewer, types)
    started = False
    while True:
        try:
            if not started:
                await follower.start()
                started = True
            events, more = await follower.poll()
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            await FOLLOW_OUTAGE.wait_after(exc)
            continue
        FOLLOW_OUTAGE.recovered()
        for event in events:
            yield event
        if not more:
            await asyncio.sleep(poll_seconds)
