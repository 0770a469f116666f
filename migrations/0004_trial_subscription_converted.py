from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.enums import SubscriptionStatus
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_template_changes')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='CronRun',
            options={'table': 'cron_run', 'app': 'models', 'unique_together': (('job', 'occurrence'),), 'pk_attr': 'id', 'table_description': 'One occurrence of a periodic job (the Sunday calling rollup, trial expiry,'},
        ),
        ops.AlterField(
            model_name='Subscription',
            name='status',
            field=fields.CharEnumField(description='ACTIVE: ACTIVE\nPENDING_SETUP: PENDING_SETUP\nSUSPENDED: SUSPENDED\nEXPIRED: EXPIRED\nCANCELLED: CANCELLED\nCONVERTED: CONVERTED', enum_type=SubscriptionStatus, max_length=13),
        ),
    ]
