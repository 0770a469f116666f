"""PostgreSQL pool connections released without asyncpg's reset query
(app/db.py `PooledConnection`): what the reset would have cleared never
outlives a transaction, so nothing leaks from one pool user to the next."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from app.db import PooledConnection, connection, fetch_all

ROOT = Path(__file__).resolve().parent.parent
# Session state asyncpg's reset query (advisory unlock all, CLOSE ALL,
# UNLISTEN *, RESET ALL) would clear, as code would create it (SQL keywords
# are written in capitals here: "Set REDIS_URL=..." in a message is no SET).
SESSION_STATE = {
    "a session setting (SET without LOCAL)": re.compile(
        r"""["']\s*SET\s+(?!LOCAL\b)(SESSION\s+)?[A-Za-z_.]+\s*(=|TO\b)"""
    ),
    "set_config(..., false): a session setting": re.compile(r"set_config\s*\(", re.IGNORECASE),
    "a session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I),
    "LISTEN": re.compile(r"""["']\s*LISTEN\b"""),
    "a holdable cursor": re.compile(r"\bWITH\s+HOLD\b", re.IGNORECASE),
}


def test_no_code_leaves_session_state_for_the_next_pool_user() -> None:
    found = []
    for folder in ("app", "schema", "workers", "migrations"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            for what, pattern in SESSION_STATE.items():
                for match in pattern.finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, (
        "PooledConnection (app/db.py) releases connections without RESET ALL: " + "; ".join(found)
    )


def test_the_patterns_find_what_they_look_for() -> None:
    for sample, what in (
        ('"SET statement_timeout = 0"', "a session setting (SET without LOCAL)"),
        ("'SET SESSION work_mem TO 64'", "a session setting (SET without LOCAL)"),
        ('"SELECT pg_advisory_lock(1)"', "a session advisory lock"),
        ('"LISTEN events"', "LISTEN"),
    ):
        assert SESSION_STATE[what].search(sample), sample
    for sample in (
        '"SET LOCAL statement_timeout = 0"',
        '"UPDATE customer SET attention_flags = 0"',
        '"SELECT pg_advisory_xact_lock(1)"',
    ):
        assert not any(p.search(sample) for p in SESSION_STATE.values()), sample


async def test_released_connections_send_no_reset_and_leave_no_transaction(
    postgres_db: Any,
) -> None:
    client: Any = connection()
    await fetch_all("SELECT 1 AS one")
    pool = client._pool
    cons = [h._con for h in pool._holders if h._con is not None]
    assert cons and all(isinstance(c, PooledConnection) for c in cons)
    assert all(c.get_reset_query() == "" for c in cons)
    # A transaction left open by a pool user is still rolled back on release.
    async with pool.acquire() as raw:
        await raw.execute("BEGIN")
        await raw.execute("SET LOCAL application_name = 'left open'")
    async with pool.acquire() as raw:
        assert not raw.is_in_transaction()
        name = await raw.fetchval("SELECT current_setting('application_name')")
        assert name != "left open"
