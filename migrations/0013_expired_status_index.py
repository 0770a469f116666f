"""The EXPIRED status filter counted by an index alone (issue 15, goal 3).

EXPIRED is `NOT holds_licenses AND (trial_end_date IS NULL OR trial_end_date <
today)`. The partial index of 0011 (`customer_name_expired`, on the name order
WHERE NOT holds_licenses) did not hold `trial_end_date`, so PostgreSQL had to
read each candidate row and preferred a scan of every customer (100k: 36.6 ms
against 5.9 ms by name). On PostgreSQL the index now INCLUDEs trial_end_date:
the count is an index-only scan (4.3 ms). SQLite has no INCLUDE and keeps the
index as it was.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

PLAIN = "(partner_id, LOWER(name), id) WHERE NOT holds_licenses"
COVERING = "(partner_id, LOWER(name), id) INCLUDE (trial_end_date) WHERE NOT holds_licenses"


async def _make(schema_editor, definition_on_postgres: str) -> None:
    conn = schema_editor.client
    definition = definition_on_postgres if conn.capabilities.dialect == "postgres" else PLAIN
    await conn.execute_script("DROP INDEX IF EXISTS customer_name_expired")
    await conn.execute_script(f"CREATE INDEX customer_name_expired ON customer {definition}")


async def forward(apps, schema_editor) -> None:
    await _make(schema_editor, COVERING)


async def backward(apps, schema_editor) -> None:
    await _make(schema_editor, PLAIN)


class Migration(migrations.Migration):
    dependencies = [("models", "0012_audit_target_ref")]

    initial = False

    operations = [ops.RunPython(forward, backward)]
