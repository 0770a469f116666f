"""The attention feed (app/domain/attention.py): events that say a customer
started (or stopped) needing attention, the partner webhooks that receive them
by topic, and the admins' daily digest preferences."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import (
    AttentionDeliveryStatus,
    AttentionEventType,
    CustomerStatus,
    EmailDeliveryStatus,
)


class AttentionEvent(Model):
    """One change of the attention state of a customer, written in the transaction of
    the change (an outbox row): webhooks, the subscription and the digest read it."""

    id = fields.BigIntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="attention_events", on_delete=fields.CASCADE
    )
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="attention_events", on_delete=fields.CASCADE
    )
    type = fields.CharEnumField(AttentionEventType, max_length=32)
    status = fields.CharEnumField(
        CustomerStatus, max_length=24, null=True, description="STATUS_GAINED/LOST: which status"
    )
    detail = fields.JSONField(default=dict, description="what changed, by type")
    occurred_at = fields.DatetimeField()
    once_key = fields.CharField(
        max_length=100,
        null=True,
        description="an event that must be written once per customer and key"
        " (a trial window, a rollup week), NULL: no such rule",
    )

    class Meta:
        table = "attention_event"
        unique_together = (("customer_id", "once_key"),)
        indexes = (("partner_id", "id"), ("customer_id", "id"), ("occurred_at",))


class AttentionWebhook(Model):
    """The webhook subscription of a partner: each event of its topics is POSTed to `url`."""

    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="attention_webhooks", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2000)
    topics = fields.JSONField(description="AttentionEventType values it receives")
    enabled = fields.BooleanField(default=True)
    consecutive_failures = fields.SmallIntField(default=0)
    disabled_at = fields.DatetimeField(null=True)
    disabled_reason = fields.CharField(max_length=500, null=True)
    created_by = fields.ForeignKeyField(
        "models.Admin", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "attention_webhook"
        indexes = (("partner_id", "id"),)


class AttentionDelivery(Model):
    """One attention event to one webhook subscription, with its tries, sent in
    order per (subscription, customer)."""

    id = fields.BigIntField(primary_key=True)
    webhook = fields.ForeignKeyField(
        "models.AttentionWebhook", related_name="deliveries", on_delete=fields.CASCADE
    )
    event = fields.ForeignKeyField(
        "models.AttentionEvent", related_name="deliveries", on_delete=fields.CASCADE
    )
    customer_id = fields.IntField(
        description="the customer of the event: deliveries keep its order"
    )
    status = fields.CharEnumField(AttentionDeliveryStatus, max_length=9)
    attempts = fields.SmallIntField(default=0)
    next_attempt_at = fields.DatetimeField()
    last_status_code = fields.SmallIntField(null=True)
    last_error = fields.TextField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "attention_delivery"
        unique_together = (("webhook_id", "event_id"),)
        indexes = (
            ("status", "next_attempt_at"),
            ("webhook_id", "customer_id", "id"),
            ("webhook_id", "id"),
        )


class NotificationPreference(Model):
    """The choice of the daily attention digest by e-mail."""

    id = fields.IntField(primary_key=True)
    admin = fields.OneToOneField(
        "models.Admin", related_name="notification_preference", on_delete=fields.CASCADE
    )
    daily_digest = fields.BooleanField(default=False)
    topics = fields.JSONField(null=True, description="event types it covers (NULL: every type)")
    updated_at = fields.DatetimeField()

    class Meta:
        table = "notification_preference"


class AttentionDigest(Model):
    """The daily digest of one day to one admin: one row per admin and day, so
    each is sent once whatever the number of workers."""

    id = fields.IntField(primary_key=True)
    admin = fields.ForeignKeyField(
        "models.Admin", related_name="attention_digests", on_delete=fields.CASCADE
    )
    day = fields.DateField(description="the day (UTC) whose events it covers")
    status = fields.CharEnumField(EmailDeliveryStatus, max_length=7)
    event_count = fields.IntField(default=0)
    attempts = fields.SmallIntField(default=0)
    last_error = fields.TextField(null=True)
    sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "attention_digest"
        unique_together = (("admin_id", "day"),)
