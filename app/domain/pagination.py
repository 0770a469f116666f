"""Page sizes and opaque cursors shared by every list."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import orjson
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from app.domain.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
T = TypeVar("T")


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"`first` must be between 1 and {MAX_PAGE_SIZE} (got {first})")
    return first


def encode_cursor(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> list[Any]:
    """The payload of a cursor made by `encode_cursor([kind, ...])`."""
    message = "`after` is not a cursor of this list: pass an endCursor or edge cursor it returned"
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 1000:
        raise InvalidArgument(message)
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidArgument(message) from None
    if not isinstance(payload, list) or not payload or payload[0] != kind:
        raise InvalidArgument(message)
    return payload


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int


def offset_window(first: int | None, after: str | None, kind: str) -> tuple[int, int]:
    """(offset, page size) of a list paged by offset cursors made by `offset_cursors`."""
    size = page_size(first)
    if after is None:
        return 0, size
    payload = decode_cursor(after, kind)
    if len(payload) != 2 or not isinstance(payload[1], int) or payload[1] < 0:
        raise InvalidArgument("`after` is not a cursor of this list")
    return payload[1] + 1, size


def offset_cursors(kind: str, offset: int, count: int) -> list[str]:
    return [encode_cursor([kind, offset + n]) for n in range(count)]


def offset_page(items: list[T], first: int | None, after: str | None, kind: str) -> Page[T]:
    """A page of a short list held in memory, with offset cursors."""
    size = page_size(first)
    start = 0
    if after is not None:
        payload = decode_cursor(after, kind)
        if len(payload) != 2 or not isinstance(payload[1], int) or payload[1] < 0:
            raise InvalidArgument("`after` is not a cursor of this list")
        start = payload[1] + 1
    chunk = items[start : start + size]
    return Page(
        items=chunk,
        cursors=[encode_cursor([kind, start + n]) for n in range(len(chunk))],
        has_next_page=start + size < len(items),
        has_previous_page=start > 0,
        total_count=len(items),
    )


def _field_value(model: type, field: str, raw: Any) -> Any:
    """A cursor value (JSON) back as the field's Python type."""
    kind = type(model._meta.fields_map[field]).__name__
    try:
        if kind == "DateField":
            return date.fromisoformat(raw)
        if kind == "DatetimeField":
            return datetime.fromisoformat(raw)
        if "Int" in kind:
            return int(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise InvalidArgument("`after` is not a cursor of this list") from None


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
            raise InvalidArgument("`after` is not a cursor of this list")
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
