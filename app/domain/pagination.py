"""Page sizes and opaque cursors shared by every list."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

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
