"""Bounded per-process memos of the request path (the page plans, the query
cost): hashable stand-ins for variable values, and a size-capped LRU insert."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


def frozen(value: Any) -> Any:
    """A hashable stand-in for a variable's value (True and 1 stay apart); a
    TypeError for a value that cannot be one."""
    if isinstance(value, list | tuple):
        return ("list", *(frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", *sorted((k, frozen(v)) for k, v in value.items()))
    hash(value)
    return (type(value), value)


def remember(cache: OrderedDict, key: Any, value: Any, size: int) -> None:
    """Keep `value` under `key` as the newest entry, dropping the oldest past `size`."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
