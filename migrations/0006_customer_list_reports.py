from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.enums import ReportType
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_admin_removal')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Report',
            name='customer_filter',
            field=fields.JSONField(null=True, description="CUSTOMER_LIST reports: the customers filter applied (in the requester's scope), or null for every customer", encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='ReportSchedule',
            name='customer_filter',
            field=fields.JSONField(null=True, description="CUSTOMER_LIST schedules: the customers filter each run applies (in the schedule owner's scope), or null for every customer", encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AlterField(
            model_name='ReportTemplate',
            name='report_type',
            field=fields.CharEnumField(description='CALLING_USAGE_DETAIL: CALLING_USAGE_DETAIL\nDEVICES: DEVICES\nPHONE_NUMBERS: PHONE_NUMBERS\nAPP_VERSIONS: APP_VERSIONS\nSUBSCRIPTION_DETAILS: SUBSCRIPTION_DETAILS\nCUSTOMER_LIST: CUSTOMER_LIST', enum_type=ReportType, max_length=20),
        ),
    ]
