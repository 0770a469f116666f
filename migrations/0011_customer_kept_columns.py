"""Kept per-customer columns for what the customer list sorts and filters by
(issue 15; app/domain/customer_columns.py says what each one holds), filled in
for every existing customer as of the day the migration runs, and the indexes
that serve each ordering and status filter.

The columns are added by hand (NOT NULL ones with a database default, so that
existing rows and bulk writers that do not name them get 0/false); the model
state is Tortoise's AddField. The backfill is written out here, not imported,
so the migration does what it did when it was written whatever the code
becomes. Plain SQL for the indexes: expression and partial indexes are not
model fields; the same statements on PostgreSQL and SQLite.
"""

from datetime import UTC, datetime

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

HOLDING = "('ACTIVE', 'SUSPENDED', 'PENDING_SETUP')"

# column -> (PostgreSQL type, SQLite type)
COLUMN_TYPES = {
    "total_licenses": ("BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0"),
    "next_end_date": ("DATE", "DATE"),
    "expiring_end_date": ("DATE", "DATE"),
    "trial_end_date": ("DATE", "DATE"),
    "has_active": ("BOOL NOT NULL DEFAULT FALSE", "INT NOT NULL DEFAULT 0"),
    "has_suspended": ("BOOL NOT NULL DEFAULT FALSE", "INT NOT NULL DEFAULT 0"),
    "has_pending_setup": ("BOOL NOT NULL DEFAULT FALSE", "INT NOT NULL DEFAULT 0"),
    "has_overage": ("BOOL NOT NULL DEFAULT FALSE", "INT NOT NULL DEFAULT 0"),
    "holds_licenses": ("BOOL NOT NULL DEFAULT FALSE", "INT NOT NULL DEFAULT 0"),
}


class AddColumn(ops.AddField):
    """AddField whose column is added with its database default (COLUMN_TYPES)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not state_editor:
            return
        conn = state_editor.client
        postgres = conn.capabilities.dialect == "postgres"
        kind = COLUMN_TYPES[self.name][0 if postgres else 1]
        await conn.execute_script(f'ALTER TABLE "customer" ADD COLUMN "{self.name}" {kind}')


def _subscription(condition: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = customer.id"
        f" AND s.kind = 'SUBSCRIPTION' AND {condition})"
    )


BACKFILL = f"""
UPDATE customer SET
total_licenses = COALESCE((SELECT SUM(l.quantity) FROM subscription s
    JOIN license_line l ON l.subscription_id = s.id
    WHERE s.customer_id = customer.id AND s.status IN {HOLDING}), 0),
next_end_date = (SELECT MIN(s.end_date) FROM subscription s
    WHERE s.customer_id = customer.id AND s.status IN {HOLDING} AND s.end_date >= {{day}}),
expiring_end_date = (SELECT MIN(candidate.end_date) FROM (
    SELECT s.end_date FROM subscription s
    WHERE s.customer_id = customer.id AND s.kind = 'SUBSCRIPTION' AND s.status = 'ACTIVE'
      AND NOT s.auto_renew AND s.end_date >= {{day}}
    UNION ALL
    SELECT t.end_date FROM trial t
    WHERE t.customer_id = customer.id AND t.status = 'ACTIVE' AND t.end_date >= {{day}})
    candidate),
trial_end_date = (SELECT MAX(t.end_date) FROM trial t
    WHERE t.customer_id = customer.id AND t.status = 'ACTIVE'),
has_active = {_subscription("s.status = 'ACTIVE'")},
has_suspended = {_subscription("s.status = 'SUSPENDED'")},
has_pending_setup = {_subscription("s.status = 'PENDING_SETUP'")},
has_overage = EXISTS (SELECT 1 FROM subscription s JOIN license_line l ON l.subscription_id = s.id
    WHERE s.customer_id = customer.id AND s.status IN {HOLDING} AND l.assigned > l.quantity),
holds_licenses = {_subscription(f"s.status IN {HOLDING}")}
"""


async def backfill(apps, schema_editor) -> None:
    conn = schema_editor.client
    today = datetime.now(UTC).date()
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(BACKFILL.format(day="$1::date"), [today])
    else:
        await conn.execute_query(BACKFILL.format(day="?"), [today.isoformat()] * 3)


# The orderings by next end date: customers without one last either way, so one
# index per direction, its bound as the sort key writes it (app/domain/customers.py:
# the infinities on PostgreSQL, the extreme dates on SQLite).
END_DATE_INDEXES = {
    "customer_partner_next_end_asc": ("'infinity'", "'9999-12-31'"),
    "customer_partner_next_end_desc": ("'-infinity'", "'0001-01-01'"),
}


async def create_end_date_indexes(apps, schema_editor) -> None:
    conn = schema_editor.client
    postgres = conn.capabilities.dialect == "postgres"
    for name, bounds in END_DATE_INDEXES.items():
        bound = bounds[0 if postgres else 1]
        await conn.execute_script(
            f"CREATE INDEX IF NOT EXISTS {name} ON customer"
            f" (partner_id, COALESCE(next_end_date, {bound}), id)"
        )


async def drop_end_date_indexes(apps, schema_editor) -> None:
    for name in END_DATE_INDEXES:
        await schema_editor.client.execute_script(f"DROP INDEX IF EXISTS {name}")


# name -> (columns and condition): the ordering by total licenses,
# the EXPIRING_SOON range, and each rarer status filter in the default order.
INDEXES = {
    "customer_partner_total_licenses": "(partner_id, total_licenses, id)",
    "customer_partner_expiring": "(partner_id, expiring_end_date)",
    "customer_name_active": "(partner_id, LOWER(name), id) WHERE has_active",
    "customer_name_trial": "(partner_id, LOWER(name), id) WHERE trial_end_date IS NOT NULL",
    "customer_name_overage": "(partner_id, LOWER(name), id) WHERE has_overage",
    "customer_name_suspended": "(partner_id, LOWER(name), id) WHERE has_suspended",
    "customer_name_pending_setup": "(partner_id, LOWER(name), id) WHERE has_pending_setup",
    "customer_name_expired": "(partner_id, LOWER(name), id) WHERE NOT holds_licenses",
}


class Migration(migrations.Migration):
    dependencies = [("models", "0010_customer_name_order")]

    initial = False

    operations = [
        AddColumn(
            model_name="Customer",
            name="total_licenses",
            field=fields.BigIntField(
                default=0, description="licenses of its holding subscriptions and trials"
            ),
        ),
        AddColumn(
            model_name="Customer",
            name="next_end_date",
            field=fields.DateField(
                null=True,
                description="soonest end date, on or after the day kept, of a holding one",
            ),
        ),
        AddColumn(
            model_name="Customer",
            name="expiring_end_date",
            field=fields.DateField(
                null=True,
                description="soonest end date, on or after the day kept, of an ACTIVE subscription"
                " without auto-renew or an ACTIVE trial",
            ),
        ),
        AddColumn(
            model_name="Customer",
            name="trial_end_date",
            field=fields.DateField(null=True, description="latest end date of an ACTIVE trial"),
        ),
        AddColumn(
            model_name="Customer",
            name="has_active",
            field=fields.BooleanField(default=False, description="an ACTIVE subscription"),
        ),
        AddColumn(
            model_name="Customer",
            name="has_suspended",
            field=fields.BooleanField(default=False, description="a SUSPENDED subscription"),
        ),
        AddColumn(
            model_name="Customer",
            name="has_pending_setup",
            field=fields.BooleanField(default=False, description="a PENDING_SETUP subscription"),
        ),
        AddColumn(
            model_name="Customer",
            name="has_overage",
            field=fields.BooleanField(
                default=False,
                description="a license line of a holding one with assigned > quantity",
            ),
        ),
        AddColumn(
            model_name="Customer",
            name="holds_licenses",
            field=fields.BooleanField(default=False, description="a holding subscription"),
        ),
        ops.RunPython(backfill),
        ops.RunPython(create_end_date_indexes, drop_end_date_indexes),
        *(
            ops.RunSQL(
                f"CREATE INDEX IF NOT EXISTS {name} ON customer {definition}",
                reverse_sql=f"DROP INDEX IF EXISTS {name}",
            )
            for name, definition in INDEXES.items()
        ),
    ]
