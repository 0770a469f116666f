"""SQL fragments with their parameters, written with `?` placeholders and run
on either dialect through `app.db.fetch_all`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


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


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with its wildcards escaped (ESCAPE '!')."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"
