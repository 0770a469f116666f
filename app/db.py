"""Tortoise set-up for SQLite and PostgreSQL, migrations, and the dialect helpers
that raw SQL needs (placeholders differ: `?` on SQLite, `$1` on asyncpg)."""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiosqlite
import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.executor import MigrationExecutor

from app.config import Settings, redacted_url
from app.models import MODEL_MODULES

APP_LABEL = "models"


class DatabaseError(RuntimeError):
    """The database cannot be used as configured; the message says what to do."""


# PostgreSQL pool options, unless DATABASE_URL names them (`?minsize=2&timeout=10`):
# - minsize 0: no connection floor. asyncpg restores a floor in the background,
#   logging a traceback on each try while the server is away; without one,
#   connections are made on demand, and the first request after an outage
#   simply connects again (the pool replaces connections the server cut).
# - timeout 5: a connection attempt gives up after 5 s (asyncpg waits 60), so a
#   request during an outage of an unreachable host gets its 503 in seconds.
POSTGRES_POOL_DEFAULTS = {"minsize": "0", "timeout": "5"}


class PooledConnection(asyncpg.Connection):
    """The pool's PostgreSQL connections: released without a reset query.

    Tortoise takes a connection from the pool for each statement outside a
    transaction, and asyncpg sent its reset query (`pg_advisory_unlock_all()`,
    `CLOSE ALL`, `UNLISTEN *`, `RESET ALL`) on each release: one more round trip
    per statement, 8 of 16 on a page of customers. This process keeps no session
    state for it to clear: its settings are startup parameters (`server_settings`,
    which RESET ALL keeps), transactions change settings with `SET LOCAL` and take
    transaction-scoped advisory locks only, nothing LISTENs, no cursor outlives its
    transaction (tests/test_db_pool.py checks the code for each). An open
    transaction is still rolled back on release (asyncpg's `_reset`)."""

    def get_reset_query(self) -> str:
        return ""


def tortoise_url(database_url: str, pool_maxsize: int | None = None) -> str:
    """Map the URL schemes people write (postgres://, postgresql://) to Tortoise's
    asyncpg, with the pool options of POSTGRES_POOL_DEFAULTS the URL does not set
    (and `maxsize`, when `pool_maxsize` is given and the URL does not set it)."""
    parts = urlsplit(database_url)
    if parts.scheme in ("postgres", "postgresql", "asyncpg"):
        given = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
        wanted = dict(POSTGRES_POOL_DEFAULTS)
        if pool_maxsize is not None:
            wanted["maxsize"] = str(pool_maxsize)
        defaults = {k: v for k, v in wanted.items() if k not in given}
        query = "&".join(p for p in (parts.query, urlencode(defaults)) if p)
        return urlunsplit(("asyncpg", parts.netloc, parts.path, query, parts.fragment))
    return database_url


def tortoise_config(database_url: str, pool_maxsize: int | None = None) -> dict[str, Any]:
    return {
        "connections": {"default": tortoise_url(database_url, pool_maxsize)},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "migrations": "migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_folder(settings: Settings) -> None:
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


async def open_database(
    settings: Settings,
    *,
    check_migrated: bool = True,
    statement_timeout_seconds: float | None = None,
    pool_maxsize: int | None = None,
) -> None:
    """Connect Tortoise (as the process-wide default context) and, unless told
    otherwise, refuse an unmigrated database with a message that says what to run.

    `statement_timeout_seconds` (PostgreSQL): no statement of this process runs
    longer (the API processes' bound; jobs that need longer lift it with
    `unbounded_statements` inside their transaction). `pool_maxsize`
    (PostgreSQL): the pool's size unless DATABASE_URL sets `maxsize`."""
    _ensure_sqlite_folder(settings)
    # Tortoise caches each model's INSERT/DELETE SQL by connection *name*, not
    # dialect: a process that reopens "default" on another engine (the test
    # suite does) would reuse SQLite's SQL on PostgreSQL. Start clean.
    EXECUTOR_CACHE.clear()
    try:
        await Tortoise.init(
            config=tortoise_config(settings.database_url, pool_maxsize),
            _enable_global_fallback=True,
        )
        connection = connections.get("default")
        if hasattr(connection, "connection_class"):  # asyncpg: made on first use
            connection.connection_class = PooledConnection
        if hasattr(connection, "server_settings"):
            # Plans made for each statement's own values: asyncpg prepares every
            # statement, and after five runs PostgreSQL may keep a generic plan
            # that ignores the values (a week's range, a scope); at 100,000
            # customers that made analytics statements 2-5x slower. Planning a
            # statement costs well under a millisecond.
            connection.server_settings["plan_cache_mode"] = "force_custom_plan"
        if statement_timeout_seconds is not None and hasattr(connection, "server_settings"):
            connection.server_settings["statement_timeout"] = str(
                int(statement_timeout_seconds * 1000)
            )
        await connection.execute_query("SELECT 1")
    except (OSError, ConnectionError) as exc:
        await close_database()
        raise DatabaseError(
            f"cannot reach the database at {redacted_url(settings.database_url)}: {exc}. "
            "Start it or fix DATABASE_URL."
        ) from None
    except Exception as exc:
        await close_database()
        if _is_connection_failure(exc):
            raise DatabaseError(
                f"cannot connect to the database at {redacted_url(settings.database_url)}: "
                f"{exc}. Check DATABASE_URL."
            ) from None
        raise
    if check_migrated:
        pending = await pending_migrations()
        if pending:
            await close_database()
            raise DatabaseError(
                f"the database at {redacted_url(settings.database_url)} is not migrated "
                f"({len(pending)} migration(s) pending): run `partnerhub migrate` first."
            )


async def close_database() -> None:
    try:
        await Tortoise.close_connections()
    except Exception:  # closing a half-open pool must not hide the first error
        pass


def _is_connection_failure(exc: BaseException) -> bool:
    name = type(exc).__name__
    text = str(exc).lower()
    return (
        name
        in {"InvalidCatalogNameError", "InvalidPasswordError", "InvalidAuthorizationSpecification"}
        or "connect" in text
        or "does not exist" in text
        or "unable to open database" in text
    )


def _migration_executor() -> MigrationExecutor:
    apps_config = {APP_LABEL: {"models": MODEL_MODULES, "migrations": "migrations"}}
    return MigrationExecutor(connections.get("default"), apps_config)


async def pending_migrations() -> list[str]:
    """Names of the migrations not applied yet to the default connection."""
    plan = await _migration_executor().plan()
    return [step.migration.name for step in plan if not step.backward]


async def apply_migrations(settings: Settings) -> list[str]:
    """Apply every pending migration and store the reference rows (the DEFAULT
    report templates, the Resources list), and give TRIAL subscriptions their
    trial's status where an older release left them apart; returns the names of
    the migrations applied."""
    from app.domain.report_templates import ensure_default_templates
    from app.domain.resources import ensure_reference_resources
    from app.domain.trials import align_trial_subscriptions

    await open_database(settings, check_migrated=False)
    try:
        pending = await pending_migrations()
        await _migration_executor().migrate()
        await ensure_default_templates()
        await ensure_reference_resources()
        await align_trial_subscriptions()
        return pending
    finally:
        await close_database()


async def unbounded_statements(conn: BaseDBAsyncClient) -> None:
    """Lift the API process's statement_timeout for the rest of the transaction
    `conn` (PostgreSQL; a long report or rollup run by an in-process worker)."""
    if is_postgres(conn):
        await conn.execute_query("SET LOCAL statement_timeout = 0")


def connection() -> BaseDBAsyncClient:
    return connections.get("default")


def is_postgres(conn: BaseDBAsyncClient | None = None) -> bool:
    conn = conn or connection()
    return conn.capabilities.dialect == "postgres"


def sqlite_value(value: Any) -> Any:
    """A parameter as SQLite takes it: Tortoise stores UUIDs as text there (dates,
    datetimes and decimals go through the sqlite3 adapters Tortoise registers)."""
    return str(value) if isinstance(value, uuid.UUID) else value


def _params(params: Sequence[Any], postgres: bool) -> list[Any]:
    return list(params) if postgres else [sqlite_value(v) for v in params]


def as_date(value: Any) -> date:
    """A DATE read back by raw SQL (a date on PostgreSQL, text on SQLite)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def as_datetime(value: Any) -> datetime:
    """A timestamp read back by raw SQL (a datetime on PostgreSQL, text on SQLite)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def fetch_all(sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Run a raw query written with `?` placeholders on either dialect (every `?`
    is a placeholder: keep literals that contain one out of the SQL text)."""
    conn = connection()
    postgres = is_postgres(conn)
    return await conn.execute_query_dict(
        _numbered(sql) if postgres else sql, _params(params, postgres)
    )


class Row(Protocol):
    """A row as the driver gives it (asyncpg's Record, sqlite3's Row), read by
    column name only."""

    def __getitem__(self, column: str) -> Any: ...


async def fetch_records(sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
    """`fetch_all` for the read paths that serve pages: the driver's own rows,
    read by column name (`row["name"]`), with no dict made of each one (that
    took three times as long as reading the rows: 1.4 ms of CPU for 500 lines)."""
    conn = connection()
    postgres = is_postgres(conn)
    _, rows = await conn.execute_query(
        _numbered(sql) if postgres else sql, _params(params, postgres)
    )
    return rows


async def execute(
    sql: str, params: Sequence[Any] = (), conn: BaseDBAsyncClient | None = None
) -> None:
    """Run one statement written with `?` placeholders on either dialect."""
    conn = conn or connection()
    postgres = is_postgres(conn)
    await conn.execute_query(_numbered(sql) if postgres else sql, _params(params, postgres))


async def execute_many(
    sql: str, rows: Sequence[Sequence[Any]], conn: BaseDBAsyncClient | None = None
) -> None:
    """Run a statement written with `?` placeholders once per row, on either dialect
    (inside the caller's transaction when `conn` is one)."""
    if not rows:
        return
    conn = conn or connection()
    postgres = is_postgres(conn)
    await conn.execute_many(
        _numbered(sql) if postgres else sql, [_params(r, postgres) for r in rows]
    )


# Distinct statement texts whose numbered form each process keeps: the product
# sends the same few hundred texts again and again (a long one takes ~80 µs to
# number); texts built with a varying number of placeholders come and go.
NUMBERED_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=NUMBERED_CACHE_SIZE)
def _numbered(sql: str) -> str:
    """The statement with its `?` placeholders numbered `$1`, `$2`, ... (PostgreSQL)."""
    out: list[str] = []
    n = 0
    for ch in sql:
        if ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
    return "".join(out)


# For the `tortoise` command of developers (`tortoise makemigrations`), named in
# pyproject.toml; the service itself builds its config from the settings.
TORTOISE_ORM: dict[str, Any] = tortoise_config("sqlite://:memory:")


async def stream_rows(
    sql: str, params: Sequence[Any] = (), chunk_rows: int = 5000
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Run a query written with `?` placeholders and yield its rows in chunks of
    at most `chunk_rows`, never holding more than one chunk in memory.

    PostgreSQL: a server-side cursor on a pooled connection. SQLite: a read-only
    connection of its own, so a long report does not hold the service's one
    connection (readers see the last committed state).
    """
    conn = connection()
    if is_postgres(conn):
        async with conn.acquire_connection() as raw, raw.transaction(readonly=True):
            await raw.execute("SET LOCAL statement_timeout = 0")  # a report may take long
            cursor = await raw.cursor(_numbered(sql), *params)
            while rows := await cursor.fetch(chunk_rows):
                yield [tuple(r) for r in rows]
        return
    async with aiosqlite.connect(_read_only_uri(conn), uri=True) as raw:
        async with raw.execute(sql, [sqlite_value(v) for v in params]) as cursor:
            while rows := await cursor.fetchmany(chunk_rows):
                yield [tuple(r) for r in rows]


def _read_only_uri(conn: BaseDBAsyncClient) -> str:
    path = os.path.abspath(conn.filename)  # type: ignore[attr-defined]
    return f"file:{path}?mode=ro"


async def copy_csv_out(
    sql: str, params: Sequence[Any], output: Callable[[bytes], Awaitable[None]]
) -> None:
    """PostgreSQL: stream `COPY (sql) TO STDOUT WITH (FORMAT csv, HEADER false)`
    to `output` (awaited with each piece of CSV as it arrives, so at most a piece
    is held), on a pooled connection in a read-only transaction with no statement
    timeout (a report may take long). `sql` is written with `?` placeholders;
    COPY takes no parameters, so each becomes a quoted literal cast to the type
    PostgreSQL inferred for it.

    A COPY cut short (the job cancelled when a draining worker's grace ends, or
    `output` failing) leaves the connection mid-operation, where no ROLLBACK
    can be sent: the connection is closed instead (the server ends the
    transaction with it) and the pool opens a new one."""
    conn = connection()
    async with conn.acquire_connection() as raw:
        transaction = raw.transaction(readonly=True)
        await transaction.start()
        try:
            await raw.execute("SET LOCAL statement_timeout = 0")
            query = await _inline_params(raw, _numbered(sql), params)
            await raw.copy_from_query(query, output=output, format="csv", header=False)
        except BaseException:
            raw.terminate()
            raise
        await transaction.commit()


async def _inline_params(raw: Any, sql: str, params: Sequence[Any]) -> str:
    if not params:
        return sql
    statement = await raw.prepare(sql)
    types = [
        f'"{t.schema}"."_{t.name[:-2]}"' if t.name.endswith("[]") else f'"{t.schema}"."{t.name}"'
        for t in statement.get_parameters()
    ]
    literals = await raw.fetchrow(
        "SELECT " + ", ".join(f"quote_literal(${n}::{t}::text)" for n, t in enumerate(types, 1)),
        *params,
    )
    inlined = [
        "NULL" if literal is None else f"({literal}::{t})"
        for literal, t in zip(literals, types, strict=True)
    ]
    # One pass, so that a literal holding "$2" is not replaced again.
    return re.sub(r"\$(\d+)\b", lambda m: inlined[int(m.group(1)) - 1], sql)
