from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.enums import EmailDeliveryStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0007_external_admin_grants')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EmailDelivery',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('report', fields.ForeignKeyField('models.Report', source_field='report_id', db_constraint=True, to_field='id', related_name='email_deliveries', on_delete=OnDelete.CASCADE)),
                ('schedule', fields.ForeignKeyField('models.ReportSchedule', source_field='schedule_id', null=True, description='the schedule whose run it reports (ReportSchedule.emailDeliveries)', db_constraint=True, to_field='id', related_name='email_deliveries', on_delete=OnDelete.SET_NULL)),
                ('recipient', fields.CharField(description='lower-cased e-mail address', max_length=254)),
                ('status', fields.CharEnumField(description='PENDING: PENDING\nSENT: SENT\nFAILED: FAILED\nSKIPPED: SKIPPED', enum_type=EmailDeliveryStatus, max_length=7)),
                ('attempts', fields.SmallIntField(default=0)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'email_delivery', 'app': 'models', 'unique_together': (('report', 'recipient'),), 'indexes': [Index(fields=['schedule_id', 'id']), Index(fields=['status', 'created_at'])], 'pk_attr': 'id', 'table_description': 'The e-mail of one succeeded scheduled report to one recipient, with its'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='ReportSchedule',
            name='recipients',
            field=fields.JSONField(null=True, description='lower-cased e-mail addresses of admins of the partner who get an e-mail with a download link when a run succeeds (null: none)', encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
