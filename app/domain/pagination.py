"""Page sizes and opaque cursors shared by every list.

A cursor is `base64url(JSON [kind, value, ...])`, unpadded. Decoding is
strict: only the exact string `encode_cursor` makes for that payload is a
cursor (no padding, whitespace, other JSON spelling, unused bits set), and
each value must be of the kind and in the range its list gives it (see
`cursor_int`, `cursor_text`, `cursor_date`, `cursor_datetime`); anything else
is an InvalidArgument, never an error of the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import orjson
from tortoise.expressions import Q
from tortoise.fields import CharField, DateField, DatetimeField, Field, IntField
from tortoise.queryset import QuerySet

from app.domain.errors import InvalidArgument
from app.domain.ids import decode_base64url, encode_base64url

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


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int


def _offset_after(after: str, kind: str) -> int:
    """The offset just past the edge an offset cursor names."""
    payload = decode_cursor(after, kind)
    if len(payload) != 2:
        raise InvalidArgument(NOT_A_CURSOR)
    return cursor_int(payload[1], 0, MAX_SQL_INTEGER - 1) + 1


def offset_window(first: int | None, after: str | None, kind: str) -> tuple[int, int]:
    """(offset, page size) of a list paged by offset cursors made by `offset_cursors`."""
    size = page_size(first)
    return (0 if after is None else _offset_after(after, kind)), size


def offset_cursors(kind: str, offset: int, count: int) -> list[str]:
    return [encode_cursor([kind, offset + n]) for n in range(count)]


def offset_page(items: list[T], first: int | None, after: str | None, kind: str) -> Page[T]:
    """A page of a short list held in memory, with offset cursors."""
    size = page_size(first)
    start = 0 if after is None else _offset_after(after, kind)
    chunk = items[start : start + size]
    return Page(
        items=chunk,
        cursors=[encode_cursor([kind, start + n]) for n in range(len(chunk))],
        has_next_page=start + size < len(items),
        has_previous_page=start > 0,
        total_count=len(items),
    )


def _field_value(model: type, name: str, raw: Any) -> Any:
    """A cursor value (JSON) back as the field's Python type, checked against the
    field's kind and range."""
    field: Field = model._meta.fields_map[name]
    if isinstance(field, DatetimeField):
        return cursor_datetime(raw)
    if isinstance(field, DateField):
        return cursor_date(raw)
    if isinstance(field, IntField):
        limits = field.constraints
        low = 1 if field.pk else limits.get("ge", -MAX_SQL_INTEGER - 1)
        return cursor_int(raw, low, limits.get("le", MAX_SQL_INTEGER))
    if isinstance(field, CharField):
        return cursor_text(raw, field.max_length)
    raise TypeError(f"{model.__name__}.{name} cannot order a keyset page")


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


async def keyset_page(
    query: QuerySet,
    order: tuple[str, ...],
    first: int | None,
    after: str | None,
    kind: str,
    *,
    descending: bool = False,
) -> Page:
    """A page of an ORM query ordered by `order` (the last field unique, e.g. id):
    stable under inserts, two statements (count and page) whatever its size."""
    size = page_size(first)
    total = await query.count()
    page = query
    if after is not None:
        payload = decode_cursor(after, kind)
        if len(payload) != len(order) + 1:
            raise InvalidArgument(NOT_A_CURSOR)
        values = [_field_value(query.model, f, v) for f, v in zip(order, payload[1:], strict=True)]
        op = "lt" if descending else "gt"
        after_cursor = Q()
        for n, field in enumerate(order):
            equal = {f: v for f, v in zip(order[:n], values[:n], strict=True)}
            step = Q(**equal, **{f"{field}__{op}": values[n]})
            after_cursor = step if n == 0 else after_cursor | step
        page = page.filter(after_cursor)
    rows = await page.order_by(*[f"-{f}" if descending else f for f in order]).limit(size + 1)
    has_next = len(rows) > size
    rows = rows[:size]
    return Page(
        items=rows,
        cursors=[encode_cursor([kind, *[_json_value(getattr(r, f)) for f in order]]) for r in rows],
        has_next_page=has_next,
        has_previous_page=after is not None,
        total_count=total,
    )
