"""`partnerhub migrate` builds the whole data model on SQLite and PostgreSQL,
and the service refuses an unmigrated database."""

from __future__ import annotations

import pytest
from tortoise import Tortoise

from app.config import Settings
from app.db import (
    DatabaseError,
    apply_migrations,
    close_database,
    fetch_all,
    open_database,
    pending_migrations,
)


async def table_names() -> set[str]:
    from app.db import is_postgres

    if is_postgres():
        rows = await fetch_all(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        )
    else:
        rows = await fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row["name"] for row in rows}


async def test_unmigrated_database_is_refused_with_the_command_to_run(
    fresh_database_url: str,
) -> None:
    settings = Settings(DATABASE_URL=fresh_database_url)
    with pytest.raises(DatabaseError, match="run `partnerhub migrate`"):
        await open_database(settings)


async def test_migrate_creates_every_model_table_and_is_idempotent(
    fresh_database_url: str,
) -> None:
    settings = Settings(DATABASE_URL=fresh_database_url)
    applied = await apply_migrations(settings)
    assert applied, "a fresh database has migrations to apply"
    assert await apply_migrations(settings) == []

    await open_database(settings)
    try:
        expected = {model._meta.db_table for model in Tortoise.apps["models"].values()}
        assert expected <= await table_names()
        assert await pending_migrations() == []
    finally:
        await close_database()
