"""SQL fragments with their parameters, written with `?` placeholders and run
on either dialect through `app.db.fetch_all`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.db import is_postgres


@dataclass(frozen=True)
class Sql:
    text: str
    params: tuple[Any, ...] = field(default=())

    def __and__(self, other: Sql) -> Sql:
        return Sql(f"({self.text}) AND ({other.text})", self.params + other.params)

    def __or__(self, other: Sql) -> Sql:
        return Sql(f"({self.text}) OR ({other.text})", self.params + other.params)

    def negate(self) -> Sql:
        return Sql(f"NOT ({self.text})", self.params)


TRUE = Sql("1 = 1")
FALSE = Sql("1 = 0")


def all_of(parts: Iterable[Sql]) -> Sql:
    parts = list(parts)
    if not parts:
        return TRUE
    return Sql(
        " AND ".join(f"({p.text})" for p in parts), tuple(v for p in parts for v in p.params)
    )


def any_of(parts: Iterable[Sql]) -> Sql:
    parts = list(parts)
    if not parts:
        return FALSE
    return Sql(" OR ".join(f"({p.text})" for p in parts), tuple(v for p in parts for v in p.params))


def in_list(column: str, values: Sequence[Any]) -> Sql:
    """`column IN (?, ?, ...)`; an empty list matches nothing."""
    if not values:
        return FALSE
    return Sql(f"{column} IN ({', '.join('?' * len(values))})", tuple(values))


# SQL element types an id set may hold (one array parameter on PostgreSQL).
ARRAY_TYPES = frozenset({"INTEGER", "BIGINT", "TEXT", "UUID"})


def one_of(column: str, values: Sequence[Any], element_type: str = "INTEGER") -> Sql:
    """`column` is one of `values`, as ONE parameter whatever their number: on
    PostgreSQL `= ANY(array)` (one prepared statement for every list length, and
    a plan that probes the values instead of a long OR), on SQLite a JSON array
    read by `json_each`. For lists of ids of any length; `in_list` is for short
    fixed lists (enum values)."""
    if element_type not in ARRAY_TYPES:
        raise ValueError(f"unsupported array element type {element_type!r}")
    if not values:
        return FALSE
    if is_postgres():
        return Sql(f"{column} = ANY(CAST(? AS {element_type}[]))", (list(values),))
    return Sql(
        f"{column} IN (SELECT value FROM json_each(?))", (json.dumps([_json(v) for v in values]),)
    )


def _json(value: Any) -> Any:
    return value if isinstance(value, int | float) else str(value)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with its wildcards escaped (ESCAPE '!')."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"
