"""Bulk row writing for large loads (demo data, ingest): `COPY` on PostgreSQL,
`executemany` on SQLite, in chunks, inside the caller's transaction; and
`upsert`, a batch written on its natural key (ingest)."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import is_postgres, sqlite_value

DEFAULT_CHUNK_ROWS = 20_000


class BulkWriter:
    """Buffers rows per table and writes them in chunks through one connection.

    Rows are tuples in the order of the table's declared columns. Use it inside a
    transaction (`in_transaction()`), so a failure leaves nothing half-written.
    """

    def __init__(self, conn: BaseDBAsyncClient, chunk_rows: int | None = None) -> None:
        self._conn = conn
        self._postgres = is_postgres(conn)
        self._chunk_rows = chunk_rows or DEFAULT_CHUNK_ROWS
        self._columns: dict[str, tuple[str, ...]] = {}
        self._buffers: dict[str, list[tuple[Any, ...]]] = {}
        self.written: dict[str, int] = {}

    def table(self, name: str, columns: Sequence[str]) -> None:
        """Declare a table and the column order of its rows. Declare parents before
        children: a full buffer flushes every table in declaration order."""
        self._columns[name] = tuple(columns)
        self._buffers.setdefault(name, [])
        self.written.setdefault(name, 0)

    async def add(self, table: str, row: tuple[Any, ...]) -> None:
        buffer = self._buffers[table]
        buffer.append(row)
        if len(buffer) >= self._chunk_rows:
            await self.flush()

    async def flush(self) -> None:
        for table in self._buffers:
            await self._flush(table)

    async def _flush(self, table: str) -> None:
        rows = self._buffers[table]
        if not rows:
            return
        columns = self._columns[table]
        if self._postgres:
            async with self._conn.acquire_connection() as raw:
                await raw.copy_records_to_table(table, records=rows, columns=list(columns))
        else:
            marks = ", ".join("?" * len(columns))
            names = ", ".join(f'"{c}"' for c in columns)
            await self._conn.execute_many(
                f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
                [[sqlite_value(v) for v in row] for row in rows],
            )
        self.written[table] += len(rows)
        self._buffers[table] = []

    async def reset_sequences(self) -> None:
        """After inserting explicit ids on PostgreSQL, move each id sequence past them."""
        if not self._postgres:
            return  # SQLite's AUTOINCREMENT follows explicit ids by itself
        for table, columns in self._columns.items():
            if "id" in columns:
                await self._conn.execute_query(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f'COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)'
                )


async def upsert(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    update: bool,
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert rows, or on a natural-key conflict update the other columns (`update`)
    or keep the stored row. Call it inside a transaction.

    PostgreSQL: first a plain COPY into the table itself, in a savepoint: when no
    row's key is taken (new data, the usual batch) that is all, at the cost of a
    raw COPY. When one is (a re-sent batch, a key repeated within the rows), the
    savepoint is rolled back and the rows go through a temporary table and one
    INSERT ... SELECT ... ON CONFLICT. SQLite: executemany with ON CONFLICT.
    Rows repeating a key keep the last one (one statement may not touch a row twice).
    """
    if not rows:
        return
    if is_postgres(conn):
        async with conn.acquire_connection() as raw:
            if await _copy_when_all_new(raw, table, columns, rows):
                return
    positions = itemgetter(*[list(columns).index(k) for k in key])
    unique = list(dict(zip(map(positions, rows), rows, strict=True)).values())
    names = ", ".join(columns)
    others = [c for c in columns if c not in key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)
        if update and others
        else "DO NOTHING"
    )
    conflict = f"ON CONFLICT ({', '.join(key)}) {action}"
    if is_postgres(conn):
        staging = f"staging_{table}"
        async with conn.acquire_connection() as raw:
            await raw.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS"
                f" SELECT {names} FROM {table} WITH NO DATA"
            )
            await raw.execute(f"TRUNCATE {staging}")
            await raw.copy_records_to_table(staging, records=unique, columns=list(columns))
            await raw.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {conflict}"
            )
        return
    marks = ", ".join("?" * len(columns))
    await conn.execute_many(
        f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}",
        [[sqlite_value(v) for v in row] for row in unique],
    )


async def _copy_when_all_new(
    raw: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> bool:
    """COPY the rows into the table in a savepoint; False (and nothing written)
    when a unique key of the table refuses one of them."""
    try:
        async with raw.transaction():  # a savepoint inside the caller's transaction
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
    except asyncpg.UniqueViolationError:
        return False
    return True
