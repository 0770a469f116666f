from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CronRun',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.CharField(max_length=40)),
                ('occurrence', fields.DatetimeField(description='the scheduled time it covers (UTC)', auto_now=False, auto_now_add=False)),
                ('claimed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.SmallIntField(default=1)),
                ('error', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'cron_run', 'app': 'models', 'unique_together': (('job', 'occurrence'),), 'pk_attr': 'id', 'table_description': 'One claimed occurrence of a periodic job (rollup, trial expiry, retention).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Report',
            name='lease_expires_at',
            field=fields.DatetimeField(null=True, description='RUNNING past this with no renewal: its worker died', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='lease_owner',
            field=fields.CharField(null=True, description='the job run that holds the report while RUNNING', max_length=100),
        ),
        ops.AddField(
            model_name='Report',
            name='queued_at',
            field=fields.DatetimeField(null=True, description='when its current job was queued (creation or a requeue)', auto_now=False, auto_now_add=False),
        ),
    ]
