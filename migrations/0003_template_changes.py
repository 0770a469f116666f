from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_leases_and_cron_runs')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Report',
            name='column_keys',
            field=fields.JSONField(null=True, description="the template's column keys when the report was requested (null on reports older than this field: the template's)", encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='ReportTemplate',
            name='deleted_at',
            field=fields.DatetimeField(null=True, description='set when a CUSTOM template is deleted: gone from the list, kept for its past reports', auto_now=False, auto_now_add=False),
        ),
    ]
