"""call_leg: partitioned by week on PostgreSQL; natural key (customer, leg_id, started_at).

PostgreSQL: the table becomes RANGE-partitioned on started_at, one partition a
week (Monday 00:00 UTC to the next Monday, named call_leg_wYYYYMMDD), plus a
DEFAULT partition (app/domain/call_leg_partitions.py says why). A partitioned
table's keys must hold the partition key: the primary key becomes (id,
started_at) and the natural key UNIQUE (customer_id, leg_id, started_at). The
columns, the id sequence (and its position), the foreign keys and the index
names stay; partitions are created for every week that has legs and for the
current week and the four after it, and every row is moved.

SQLite: one table as before (its primary key stays id alone, AUTOINCREMENT),
rebuilt with the new natural key, every row kept.

The helpers are written out here, not imported, so the migration does what it
did when it was written whatever the code becomes.
"""

from datetime import UTC, date, datetime, time, timedelta

from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

OLD_UNIQUE = "uid_call_leg_custome_9f5cc6"  # (customer_id, leg_id)
NEW_UNIQUE = "uid_call_leg_custome_36e914"  # (customer_id, leg_id, started_at), Tortoise's name
INDEXES = {
    "idx_call_leg_started_c8e060": "(started_at)",
    "idx_call_leg_custome_bbfbc1": "(customer_id, started_at)",
}
COLUMNS = (
    "id, leg_id, call_id, user_uuid, started_at, duration_seconds, video_seconds, has_audio,"
    " has_video, endpoint_type, ip_version, jitter_ms, latency_ms, packet_loss_pct, call_type,"
    " feature, queue_outcome, queue_wait_seconds, customer_id, location_id"
)
DESCRIPTION = "One leg of a call pushed by a partner integration (key: customer + leg_id + started_at)."
AHEAD_WEEKS = 4


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _literal(moment: datetime) -> str:
    return f"'{moment:%Y-%m-%d %H:%M:%S}+00'"


async def _partition_postgres(conn) -> None:
    run = conn.execute_script
    await run("ALTER TABLE call_leg RENAME TO call_leg_unpartitioned")
    # Index names are per schema: free them for the new table.
    await run("ALTER INDEX call_leg_pkey RENAME TO call_leg_unpartitioned_pkey")
    await run(f"ALTER INDEX {OLD_UNIQUE} RENAME TO call_leg_unpartitioned_key")
    for n, name in enumerate(INDEXES):
        await run(f"ALTER INDEX {name} RENAME TO call_leg_unpartitioned_idx{n}")
    await run("ALTER SEQUENCE call_leg_id_seq OWNED BY NONE")  # kept when the old table goes
    await run(
        "CREATE TABLE call_leg (LIKE call_leg_unpartitioned INCLUDING DEFAULTS"
        " INCLUDING COMMENTS) PARTITION BY RANGE (started_at)"
    )
    await run(f"COMMENT ON TABLE call_leg IS '{DESCRIPTION}'")
    await run("ALTER TABLE call_leg ADD CONSTRAINT call_leg_pkey PRIMARY KEY (id, started_at)")
    await run(
        f"ALTER TABLE call_leg ADD CONSTRAINT {NEW_UNIQUE}"
        " UNIQUE (customer_id, leg_id, started_at)"
    )
    for name, columns in INDEXES.items():
        await run(f"CREATE INDEX {name} ON call_leg {columns}")
    await run(
        "ALTER TABLE call_leg ADD CONSTRAINT call_leg_customer_id_fkey FOREIGN KEY (customer_id)"
        " REFERENCES customer (id) ON DELETE CASCADE"
    )
    await run(
        "ALTER TABLE call_leg ADD CONSTRAINT call_leg_location_id_fkey FOREIGN KEY (location_id)"
        " REFERENCES location (id) ON DELETE SET NULL"
    )
    await run("CREATE TABLE call_leg_default PARTITION OF call_leg DEFAULT")
    rows = await conn.execute_query_dict(
        "SELECT DISTINCT (date_trunc('week', started_at AT TIME ZONE 'UTC'))::date AS week"
        " FROM call_leg_unpartitioned"
    )
    current = _monday(datetime.now(UTC).date())
    weeks = {row["week"] for row in rows} | {
        current + timedelta(weeks=n) for n in range(AHEAD_WEEKS + 1)
    }
    for week in sorted(weeks):
        start = datetime.combine(week, time.min, UTC)
        await run(
            f"CREATE TABLE call_leg_w{week:%Y%m%d} PARTITION OF call_leg FOR VALUES"
            f" FROM ({_literal(start)}) TO ({_literal(start + timedelta(weeks=1))})"
        )
    await run(f"INSERT INTO call_leg ({COLUMNS}) SELECT {COLUMNS} FROM call_leg_unpartitioned")
    await run("DROP TABLE call_leg_unpartitioned")
    await run("ALTER SEQUENCE call_leg_id_seq OWNED BY call_leg.id")


async def _rebuild_sqlite(conn) -> None:
    run = conn.execute_script
    rows = await conn.execute_query_dict(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'call_leg' AND sql IS NOT NULL"
    )
    table = next(r["sql"] for r in rows if r["type"] == "table")
    indexes = [r["sql"] for r in rows if r["type"] == "index"]
    old_key = f'CONSTRAINT "{OLD_UNIQUE}" UNIQUE ("customer_id", "leg_id")'
    new_key = f'CONSTRAINT "{NEW_UNIQUE}" UNIQUE ("customer_id", "leg_id", "started_at")'
    head = 'CREATE TABLE "call_leg" ('
    if old_key not in table or not table.startswith(head):
        raise RuntimeError(f"call_leg is not as migration 0008 left it: {table}")
    seq = await conn.execute_query_dict("SELECT seq FROM sqlite_sequence WHERE name = 'call_leg'")
    await run(
        table.replace(head, 'CREATE TABLE "call_leg_rebuilt" (', 1).replace(old_key, new_key)
    )
    await run(f"INSERT INTO call_leg_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM call_leg")
    await run("DROP TABLE call_leg")
    await run("ALTER TABLE call_leg_rebuilt RENAME TO call_leg")
    for sql in indexes:
        await run(sql)
    if seq:  # ids never come back, even those of legs deleted at the end
        await conn.execute_query("DELETE FROM sqlite_sequence WHERE name = 'call_leg'")
        await conn.execute_query(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'call_leg', MAX(?, COALESCE(MAX(id), 0))"
            " FROM call_leg",
            [seq[0]["seq"]],
        )


async def forward(apps, schema_editor) -> None:
    conn = schema_editor.client
    if conn.capabilities.dialect == "postgres":
        await _partition_postgres(conn)
    else:
        await _rebuild_sqlite(conn)


class Migration(migrations.Migration):
    dependencies = [('models', '0008_report_emails')]

    initial = False

    operations = [
        ops.RunPython(forward),
        ops.AlterModelOptions(
            name='CallLeg',
            options={'table': 'call_leg', 'app': 'models', 'unique_together': (('customer', 'leg_id', 'started_at'),), 'indexes': [Index(fields=['started_at']), Index(fields=['customer_id', 'started_at'])], 'pk_attr': 'id', 'table_description': DESCRIPTION},
        ),
    ]
