"""audit_event.target_id: the target in domain terms, "Kind:key" (e.g. "Admin:5"),
no longer the GraphQL global id (base64url of the same text) the domain used to
write. The schema makes the global id clients read from it (`AuditEvent.targetId`
is unchanged).

Every stored global id is converted, in batches of BATCH rows by id (one
SELECT and one executemany UPDATE a batch, the same on PostgreSQL and SQLite);
NULLs stay NULL, and a value that is not a global id of ours (none is written)
is left as it is, so running the conversion again changes nothing. Going back
encodes "Kind:key" again. The decoding is written out here, not imported, so
the migration does what it did when it was written whatever the code becomes.
"""

import base64
import binascii
import re

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

BATCH = 1000
OLD_DESCRIPTION = "global id of the target"
NEW_DESCRIPTION = 'what the event names: "Kind:key", e.g. "Admin:5" (NULL: nothing)'
BASE64URL = re.compile(r"[A-Za-z0-9_-]{1,200}")
REF = re.compile(r"([A-Z][A-Za-z0-9]*):([1-9][0-9]{0,18})")


def _encode(ref: str) -> str:
    return base64.urlsafe_b64encode(ref.encode()).decode().rstrip("=")


def global_id_to_ref(value: str) -> str | None:
    """ "Kind:key" of a canonical global id, None for anything else."""
    if not BASE64URL.fullmatch(value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        ref = raw.decode("ascii")
    except (binascii.Error, ValueError):
        return None
    if not REF.fullmatch(ref) or _encode(ref) != value:
        return None
    return ref


def ref_to_global_id(value: str) -> str | None:
    return _encode(value) if REF.fullmatch(value) else None


async def _convert(schema_editor, convert) -> None:
    conn = schema_editor.client
    postgres = conn.capabilities.dialect == "postgres"
    select = (
        "SELECT id, target_id FROM audit_event WHERE target_id IS NOT NULL AND id > {}"
        " ORDER BY id LIMIT {}"
    ).format(*(("$1", "$2") if postgres else ("?", "?")))
    update = "UPDATE audit_event SET target_id = {} WHERE id = {}".format(
        *(("$1", "$2") if postgres else ("?", "?"))
    )
    last = 0
    while True:
        _, rows = await conn.execute_query(select, [last, BATCH])
        if not rows:
            return
        changes = [
            [new, row["id"]]
            for row in rows
            if (new := convert(row["target_id"])) is not None and new != row["target_id"]
        ]
        if changes:
            await conn.execute_many(update, changes)
        last = rows[-1]["id"]


async def forward(apps, schema_editor) -> None:
    await _convert(schema_editor, global_id_to_ref)


async def backward(apps, schema_editor) -> None:
    await _convert(schema_editor, ref_to_global_id)


class Migration(migrations.Migration):
    dependencies = [("models", "0011_customer_kept_columns")]

    initial = False

    operations = [
        ops.RunPython(forward, backward),
        ops.AlterField(
            model_name="AuditEvent",
            name="target_id",
            field=fields.CharField(max_length=200, null=True, description=NEW_DESCRIPTION),
        ),
    ]
