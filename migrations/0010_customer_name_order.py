"""The customer list's default order (LOWER(name), id within a partner) served by
an index, instead of a sort of every customer in scope (issue 15). Plain SQL:
an expression index is not a model field; the same statement on PostgreSQL and
SQLite."""

from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0009_call_leg_partitions")]

    initial = False

    operations = [
        ops.RunSQL(
            "CREATE INDEX IF NOT EXISTS customer_partner_name_order"
            " ON customer (partner_id, LOWER(name), id)",
            reverse_sql="DROP INDEX IF EXISTS customer_partner_name_order",
        ),
    ]
