from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.enums import LicenseType, Product, SubscriptionKind, SubscriptionStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_trial_subscription_converted')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PartnerSubscription',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.ForeignKeyField('models.PartnerOrganization', source_field='partner_id', db_constraint=True, to_field='id', related_name='own_subscriptions', on_delete=OnDelete.CASCADE)),
                ('subscription_id', fields.CharField(unique=True, description='Sub-… id', max_length=40)),
                ('kind', fields.CharEnumField(default=SubscriptionKind.SUBSCRIPTION, description='SUBSCRIPTION: SUBSCRIPTION\nTRIAL: TRIAL', enum_type=SubscriptionKind, max_length=12)),
                ('status', fields.CharEnumField(description='ACTIVE: ACTIVE\nPENDING_SETUP: PENDING_SETUP\nSUSPENDED: SUSPENDED\nEXPIRED: EXPIRED\nCANCELLED: CANCELLED\nCONVERTED: CONVERTED', enum_type=SubscriptionStatus, max_length=13)),
                ('start_date', fields.DateField()),
                ('end_date', fields.DateField(null=True, description='expiry, or renewal when auto_renew')),
                ('auto_renew', fields.BooleanField(default=False)),
                ('added_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partner_subscription', 'app': 'models', 'indexes': [Index(fields=['partner_id', 'start_date'])], 'pk_attr': 'id', 'table_description': 'A subscription of the partner organization itself (its own plan, shown by the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnerLicenseLine',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subscription', fields.ForeignKeyField('models.PartnerSubscription', source_field='subscription_id', db_constraint=True, to_field='id', related_name='licenses', on_delete=OnDelete.CASCADE)),
                ('license_type', fields.CharEnumField(description='MEETINGS: MEETINGS\nCALLING_PROFESSIONAL: CALLING_PROFESSIONAL\nCALLING_STANDARD: CALLING_STANDARD\nCUSTOMER_ASSIST: CUSTOMER_ASSIST\nCOMMON_AREA_CALLING: COMMON_AREA_CALLING\nWEBEX_CALLING: WEBEX_CALLING\nWEBEX_VOICE: WEBEX_VOICE\nWEBEX_SUITE: WEBEX_SUITE\nATTENDANT_CONSOLE: ATTENDANT_CONSOLE\nMESSAGING: MESSAGING\nREAL_TIME_TRANSLATION: REAL_TIME_TRANSLATION\nCONTACT_CENTER: CONTACT_CENTER\nWORKSPACE: WORKSPACE', enum_type=LicenseType, max_length=24)),
                ('product', fields.CharEnumField(description='MEETINGS: MEETINGS\nCALLING: CALLING\nMESSAGING: MESSAGING\nREAL_TIME_TRANSLATION: REAL_TIME_TRANSLATION\nCONTACT_CENTER: CONTACT_CENTER', enum_type=Product, max_length=24)),
                ('quantity', fields.IntField()),
                ('assigned', fields.IntField(default=0)),
                ('used', fields.IntField(default=0, description='used at least once in the last 7 days')),
            ],
            options={'table': 'partner_license_line', 'app': 'models', 'unique_together': (('subscription', 'license_type'),), 'pk_attr': 'id', 'table_description': "Licenses of one type on one of the partner's own subscriptions."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Admin',
            name='removed_at',
            field=fields.DatetimeField(null=True, description='set by removeAdmin: gone from the Admins list and unable to sign in, kept so that audit events and reports naming it still resolve', auto_now=False, auto_now_add=False),
        ),
    ]
