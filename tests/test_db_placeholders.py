"""`?` placeholders numbered for asyncpg, once per distinct statement text."""

from __future__ import annotations

from app.db import NUMBERED_CACHE_SIZE, _numbered, fetch_all


def test_placeholders_are_numbered_in_order() -> None:
    assert _numbered("SELECT ? AS a, ? AS b WHERE x = ?") == "SELECT $1 AS a, $2 AS b WHERE x = $3"
    assert _numbered("SELECT 1") == "SELECT 1"
    many = "SELECT " + ", ".join("?" for _ in range(12))
    assert _numbered(many) == "SELECT " + ", ".join(f"${n}" for n in range(1, 13))


def test_a_statement_text_is_numbered_once_and_the_cache_is_bounded() -> None:
    text = "SELECT ? AS only_in_this_test"
    before = _numbered.cache_info()
    first = _numbered(text)
    again = _numbered(text)
    after = _numbered.cache_info()
    assert again is first
    assert after.hits == before.hits + 1 and after.misses == before.misses + 1
    assert after.maxsize == NUMBERED_CACHE_SIZE
    for n in range(NUMBERED_CACHE_SIZE + 10):
        _numbered(f"SELECT ? AS c{n}")
    assert _numbered.cache_info().currsize == NUMBERED_CACHE_SIZE


async def test_numbered_statements_answer_on_both_engines(db) -> None:
    for _ in range(2):  # the second time from the cache
        rows = await fetch_all("SELECT CAST(? AS INTEGER) AS a, CAST(? AS TEXT) AS b", [3, "x"])
        assert [(row["a"], row["b"]) for row in rows] == [(3, "x")]
