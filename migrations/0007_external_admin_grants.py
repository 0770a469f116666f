from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_customer_list_reports')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ExternalAdminGrant',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='external_admin_grants', on_delete=OnDelete.CASCADE)),
                ('admin', fields.ForeignKeyField('models.Admin', source_field='admin_id', description='the external admin (an admin of another partner organization)', db_constraint=True, to_field='id', related_name='external_admin_grants', on_delete=OnDelete.CASCADE)),
                ('granted_by', fields.ForeignKeyField('models.Admin', source_field='granted_by_id', null=True, description="the managing partner's FULL_ADMIN who made the grant", db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('granted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'external_admin_grant', 'app': 'models', 'unique_together': (('customer', 'admin'),), 'indexes': [Index(fields=['admin_id'])], 'pk_attr': 'id', 'table_description': 'An admin of another partner made an external admin of one customer by the'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Report',
            name='with_granted_customers',
            field=fields.BooleanField(default=False, description='asked for by an admin who is an external admin of customers in its region: its rows include those granted customers, and only the requester sees it'),
        ),
    ]
