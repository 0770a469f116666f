"""The attention feed (issue 16): the outbox of attention events, partner webhook
subscriptions by topic and their deliveries, admins' digest preferences and the
digests sent, and each customer's last announced attention state
(`customer.attention_flags`, NULL until its first evaluation, which records it
without events: existing customers do not flood the feed)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from app.models.enums import AttentionDeliveryStatus, AttentionEventType, CustomerStatus, EmailDeliveryStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_expired_status_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AttentionDigest',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('admin', fields.ForeignKeyField('models.Admin', source_field='admin_id', db_constraint=True, to_field='id', related_name='attention_digests', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField(description='the day (UTC) whose events it covers')),
                ('status', fields.CharEnumField(description='PENDING: PENDING\nSENT: SENT\nFAILED: FAILED\nSKIPPED: SKIPPED', enum_type=EmailDeliveryStatus, max_length=7)),
                ('event_count', fields.IntField(default=0)),
                ('attempts', fields.SmallIntField(default=0)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'attention_digest', 'app': 'models', 'unique_together': (('admin_id', 'day'),), 'pk_attr': 'id', 'table_description': 'The daily digest of one day to one admin: one row per admin and day, so'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AttentionEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.ForeignKeyField('models.PartnerOrganization', source_field='partner_id', db_constraint=True, to_field='id', related_name='attention_events', on_delete=OnDelete.CASCADE)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='attention_events', on_delete=OnDelete.CASCADE)),
                ('type', fields.CharEnumField(description='STATUS_GAINED: STATUS_GAINED\nSTATUS_LOST: STATUS_LOST\nTRIAL_ENDING: TRIAL_ENDING\nLOW_LICENSE_ASSIGNMENT: LOW_LICENSE_ASSIGNMENT\nCALL_QUALITY_DECLINING: CALL_QUALITY_DECLINING', enum_type=AttentionEventType, max_length=32)),
                ('status', fields.CharEnumField(null=True, description='STATUS_GAINED/LOST: which status', enum_type=CustomerStatus, max_length=24)),
                ('detail', fields.JSONField(default=dict, description='what changed, by type', encoder=JSON_DUMPS, decoder=loads)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('once_key', fields.CharField(null=True, description='an event that must be written once per customer and key (a trial window, a rollup week), NULL: no such rule', max_length=100)),
            ],
            options={'table': 'attention_event', 'app': 'models', 'unique_together': (('customer_id', 'once_key'),), 'indexes': [Index(fields=['partner_id', 'id']), Index(fields=['customer_id', 'id']), Index(fields=['occurred_at'])], 'pk_attr': 'id', 'table_description': 'One change of the attention state of a customer, written in the transaction of'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AttentionWebhook',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.ForeignKeyField('models.PartnerOrganization', source_field='partner_id', db_constraint=True, to_field='id', related_name='attention_webhooks', on_delete=OnDelete.CASCADE)),
                ('url', fields.CharField(max_length=2000)),
                ('topics', fields.JSONField(description='AttentionEventType values it receives', encoder=JSON_DUMPS, decoder=loads)),
                ('enabled', fields.BooleanField(default=True)),
                ('consecutive_failures', fields.SmallIntField(default=0)),
                ('disabled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('disabled_reason', fields.CharField(null=True, max_length=500)),
                ('created_by', fields.ForeignKeyField('models.Admin', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'attention_webhook', 'app': 'models', 'indexes': [Index(fields=['partner_id', 'id'])], 'pk_attr': 'id', 'table_description': 'The webhook subscription of a partner: each event of its topics is POSTed to `url`.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AttentionDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('webhook', fields.ForeignKeyField('models.AttentionWebhook', source_field='webhook_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('event', fields.ForeignKeyField('models.AttentionEvent', source_field='event_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('customer_id', fields.IntField(description='the customer of the event: deliveries keep its order')),
                ('status', fields.CharEnumField(description='PENDING: PENDING\nDELIVERED: DELIVERED\nFAILED: FAILED', enum_type=AttentionDeliveryStatus, max_length=9)),
                ('attempts', fields.SmallIntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_status_code', fields.SmallIntField(null=True)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'attention_delivery', 'app': 'models', 'unique_together': (('webhook_id', 'event_id'),), 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['webhook_id', 'customer_id', 'id']), Index(fields=['webhook_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One attention event to one webhook subscription, with its tries, sent in'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='NotificationPreference',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('admin', fields.OneToOneField('models.Admin', source_field='admin_id', db_constraint=True, to_field='id', related_name='notification_preference', on_delete=OnDelete.CASCADE)),
                ('daily_digest', fields.BooleanField(default=False)),
                ('topics', fields.JSONField(null=True, description='event types it covers (NULL: every type)', encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notification_preference', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The choice of the daily attention digest by e-mail.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Customer',
            name='attention_flags',
            field=fields.IntField(null=True, description='the attention states last announced (app/domain/attention.py, a bit each), NULL: none taken yet (the first evaluation records them without events)'),
        ),
    ]
