"""Page sizes and opaque cursors shared by every list.

A cursor is `base64url(JSON [kind, value, ...])`, unpadded. Decoding is
strict: only the exact string `encode_cursor` makes for that payload is a
cursor (no padding, whitespace, other JSON spelling, unused bits set), and
each value must be of the kind and in the range its list gives it (see
`cursor_int`, `cursor_text`, `cursor_date`, `cursor_datetime`); anything else
is an InvalidArgument, never an error of the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, TypeVar

import orjson
from tortoise.expressions import Q
from tortoise.fields import CharField, DateField, DatetimeField, Field, IntField
from tortoise.queryset import QuerySet

from app.domain.errors import InvalidArgument
from app.domain.ids import MAX_PK, decode_base64url, encode_base64url
from app.domain.sql import TRUE, Sql, all_of, any_of

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# Enough for a key of 200 characters of 4 UTF-8 bytes (or 6 bytes, escaped) each.
MAX_CURSOR_LENGTH = 2048
# A signed 64-bit integer: every number a cursor carries must fit a SQL bigint.
MAX_SQL_INTEGER = 2**63 - 1
NOT_A_CURSOR = "`after` is not a cursor of this list: pass an endCursor or edge cursor it returned"
T = TypeVar("T")


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"`first` must be between 1 and {MAX_PAGE_SIZE} (got {first})")
    return first


def encode_cursor(payload: list[Any]) -> str:
    return encode_base64url(orjson.dumps(payload))


def decode_cursor(cursor: str, kind: str) -> list[Any]:
    """The payload of a cursor made by `encode_cursor([kind, ...])`; its values
    are still to be checked with the `cursor_*` functions."""
    raw = decode_base64url(cursor, MAX_CURSOR_LENGTH)
    if raw is None:
        raise InvalidArgument(NOT_A_CURSOR)
    try:
        payload = orjson.loads(raw)
        canonical = isinstance(payload, list) and encode_cursor(payload) == cursor
    except (ValueError, TypeError):  # JSONDecodeError and JSONEncodeError too
        raise InvalidArgument(NOT_A_CURSOR) from None
    if not canonical or not payload or payload[0] != kind:
        raise InvalidArgument(NOT_A_CURSOR)
    return payload


def cursor_int(value: Any, low: int = 0, high: int = MAX_SQL_INTEGER) -> int:
    """An integer of a cursor (not a boolean, not a float) from `low` to `high`."""
    if type(value) is not int or not low <= value <= high:
        raise InvalidArgument(NOT_A_CURSOR)
    return value


def cursor_text(value: Any, max_length: int | None = None) -> str:
    """A string of a cursor: no NUL (no database text holds one), at most `max_length`."""
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidArgument(NOT_A_CURSOR)
    if max_length is not None and len(value) > max_length:
        raise InvalidArgument(NOT_A_CURSOR)
    return value


def cursor_date(value: Any) -> date:
    """A date of a cursor, exactly as `date.isoformat` writes it (2026-11-21)."""
    try:
        parsed = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != value:
        raise InvalidArgument(NOT_A_CURSOR)
    return parsed


def cursor_datetime(value: Any) -> datetime:
    """A time of a cursor with its UTC offset, exactly as `datetime.isoformat` writes it."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.isoformat() != value:
        raise InvalidArgument(NOT_A_CURSOR)
    return parsed


class Cursors(Sequence[str]):
    """The cursors of a page's items, each made the first time it is read: a
    page of 50 customers with 10 subscriptions each has 550 edges, and a client
    rarely reads more than the page's last cursor."""

    __slots__ = ("_items", "_made", "_make")

    def __init__(self, items: Sequence[Any], make: Callable[[Any], str]) -> None:
        self._items = items
        self._make = make
        self._made: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[n] for n in range(*index.indices(len(self._items)))]
        n = range(len(self._items))[index]  # IndexError as a list's; negatives too
        made = self._made.get(n)
        if made is None:
            made = self._made[n] = self._make(self._items[n])
        return made

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Cursors({list(self)!r})"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: Sequence[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int


ORDERING_CHANGED = (
    "`after` belongs to another ordering: start again without `after` when you change `orderBy`"
)


def _iso_date(value: Any) -> str:
    """A date as a cursor holds it, whichever database gave it (SQLite: text)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    return (
        value.isoformat()
        if isinstance(value, date)
        else date.fromisoformat(str(value)[:10]).isoformat()
    )


def _iso_datetime(value: Any) -> str:
    """A time as a cursor holds it: in UTC (a time the database gave without
    offset is one)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _cursor_utc_datetime(value: Any) -> datetime:
    """A time of a cursor in UTC, as `_iso_datetime` writes them: another offset
    is no cursor of ours (SQLite compares times as text)."""
    moment = cursor_datetime(value)
    if moment.utcoffset() != timedelta(0):
        raise InvalidArgument(NOT_A_CURSOR)
    return moment


@dataclass(frozen=True)
class KeyPart:
    """One value of a keyset order: how a cursor writes it (`to_json`) and how a
    cursor's value is checked and read back (`from_json`, InvalidArgument if not
    one this part writes)."""

    to_json: Callable[[Any], Any]
    from_json: Callable[[Any], Any]


# A row's id: a positive INTEGER key (a larger value is no parameter of such a column).
ID = KeyPart(int, lambda v: cursor_int(v, 1, MAX_PK))
INTEGER = KeyPart(int, lambda v: cursor_int(v, -MAX_SQL_INTEGER - 1))  # Decimal sums too
NUMBER = KeyPart(float, lambda v: _cursor_number(v))
DATE = KeyPart(_iso_date, cursor_date)
DATETIME = KeyPart(_iso_datetime, _cursor_utc_datetime)


def text(max_length: int | None = None) -> KeyPart:
    return KeyPart(str, lambda v: cursor_text(v, max_length))


TEXT = text()


def _cursor_number(value: Any) -> float:
    if type(value) not in (int, float) or value != value or value in (float("inf"), float("-inf")):
        raise InvalidArgument(NOT_A_CURSOR)
    return float(value)


@dataclass(frozen=True)
class Keyset:
    """The one way every list pages: by the values of its order (the last one
    unique, e.g. an id), after the edge a cursor names. Stable under inserts and
    deletes, and as cheap at page 1,000 as at page 1 (an index on the order
    serves the `after` condition).

    A cursor is `encode_cursor([kind, *variant, *key])`: `kind` names the list,
    `variant` (e.g. the ordering) must match the list's current one, `key` is the
    edge's order values. The same keyset pages rows of SQL (`sql_after`,
    `page_of`), of an ORM query (`keyset_page`) and of a list in memory (`slice`).
    """

    kind: str
    parts: tuple[KeyPart, ...]
    descending: bool = False
    variant: tuple[str, ...] = ()

    def cursor(self, key: Sequence[Any]) -> str:
        values = [part.to_json(v) for part, v in zip(self.parts, key, strict=True)]
        return encode_cursor([self.kind, *self.variant, *values])

    def after(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The order values of the edge `cursor` names (None without a cursor)."""
        if cursor is None:
            return None
        payload = decode_cursor(cursor, self.kind)
        fixed = 1 + len(self.variant)
        if len(payload) != fixed + len(self.parts):
            raise InvalidArgument(NOT_A_CURSOR)
        if payload[1:fixed] != list(self.variant):
            raise InvalidArgument(ORDERING_CHANGED)
        return tuple(part.from_json(v) for part, v in zip(self.parts, payload[fixed:], strict=True))

    def sql_after(self, columns: Sequence[str], key: tuple[Any, ...] | None) -> Sql:
        """`columns` (SQL expressions in order) past `key`: (a > ?) OR (a = ? AND
        b > ?) ..., each written out so an index on the columns serves it."""
        if key is None:
            return TRUE
        op = "<" if self.descending else ">"
        steps = [
            all_of(
                [Sql(f"{c} = ?", (v,)) for c, v in zip(columns[:n], key[:n], strict=True)]
                + [Sql(f"{columns[n]} {op} ?", (key[n],))]
            )
            for n in range(len(columns))
        ]
        return any_of(steps)

    def sql_order(self, columns: Sequence[str]) -> str:
        direction = "DESC" if self.descending else "ASC"
        return ", ".join(f"{c} {direction}" for c in columns)

    def page_of(
        self,
        rows: Sequence[T],
        size: int,
        key: Callable[[T], Sequence[Any]],
        *,
        total: int,
        after: tuple[Any, ...] | None,
    ) -> Page[T]:
        """The page of `rows` (read ordered, past `after`, at most size + 1 of them)."""
        chunk = list(rows[:size])
        return Page(
            items=chunk,
            cursors=Cursors(chunk, lambda r: self.cursor(key(r))),
            has_next_page=len(rows) > size,
            has_previous_page=after is not None,
            total_count=total,
        )

    def slice(
        self,
        items: Sequence[T],
        first: int | None,
        after: str | None,
        key: Callable[[T], Sequence[Any]],
    ) -> Page[T]:
        """A page of a list in memory, already in this keyset's order."""
        size = page_size(first)
        past = self.after(after)
        start = 0
        if past is not None:
            # Each key as a cursor would carry it and read back, so it compares
            # with the cursor's (e.g. a time without offset is a UTC one).
            keys = [
                tuple(p.from_json(p.to_json(v)) for p, v in zip(self.parts, key(item), strict=True))
                for item in items
            ]
            # The first item past the cursor's edge (items may have gone since).
            start = next(
                (n for n, k in enumerate(keys) if (k < past if self.descending else k > past)),
                len(items),
            )
        return self.page_of(
            items[start : start + size + 1], size, key, total=len(items), after=past
        )


def _model_part(model: type, name: str) -> KeyPart:
    """How a keyset over `model` ordered by field `name` writes and checks it."""
    field: Field = model._meta.fields_map[name]
    if isinstance(field, DatetimeField):
        return DATETIME
    if isinstance(field, DateField):
        return DATE
    if isinstance(field, IntField):
        limits = field.constraints
        low = 1 if field.pk else limits.get("ge", -MAX_SQL_INTEGER - 1)
        high = limits.get("le", MAX_SQL_INTEGER)
        return KeyPart(int, lambda v: cursor_int(v, low, high))
    if isinstance(field, CharField):
        return text(field.max_length)
    raise TypeError(f"{model.__name__}.{name} cannot order a keyset page")


async def keyset_page(
    query: QuerySet,
    order: tuple[str, ...],
    first: int | None,
    after: str | None,
    kind: str,
    *,
    descending: bool = False,
) -> Page:
    """A page of an ORM query ordered by the fields `order` (the last one
    unique): two statements (count and page) whatever its size."""
    keyset = Keyset(kind, tuple(_model_part(query.model, f) for f in order), descending)
    size = page_size(first)
    past = keyset.after(after)
    total = await query.count()
    page = query
    if past is not None:
        op = "lt" if descending else "gt"
        condition = Q()
        for n, field in enumerate(order):
            equal = {f: v for f, v in zip(order[:n], past[:n], strict=True)}
            step = Q(**equal, **{f"{field}__{op}": past[n]})
            condition = step if n == 0 else condition | step
        page = page.filter(condition)
    rows = await page.order_by(*[f"-{f}" if descending else f for f in order]).limit(size + 1)
    return keyset.page_of(
        rows, size, lambda r: [getattr(r, f) for f in order], total=total, after=past
    )
