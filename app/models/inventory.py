"""Inventory and usage data pushed by partner integrations: devices, phone
numbers, Webex App sessions and daily organization usage."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Device(Model):
    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="devices", on_delete=fields.CASCADE
    )
    location = fields.ForeignKeyField(
        "models.Location", related_name="devices", null=True, on_delete=fields.SET_NULL
    )
    device_uuid = fields.UUIDField(unique=True)
    product = fields.CharField(max_length=100, description="device model, e.g. Cisco 8865")
    mac = fields.CharField(max_length=12, description="upper-case hex, no separators")
    firmware = fields.CharField(max_length=100, null=True)
    phone_number = fields.CharField(max_length=20, null=True)
    extension = fields.CharField(max_length=10, null=True)
    user_id = fields.CharField(max_length=254, null=True)
    user_uuid = fields.UUIDField(null=True)

    class Meta:
        table = "device"
        indexes = (("customer_id",), ("mac",))


class PhoneNumber(Model):
    """A phone number or an extension of a customer's location."""

    id = fields.IntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="phone_numbers", on_delete=fields.CASCADE
    )
    location = fields.ForeignKeyField(
        "models.Location", related_name="phone_numbers", null=True, on_delete=fields.SET_NULL
    )
    number_key = fields.CharField(
        max_length=64, description="natural key: the E.164 number, or ext:<location>:<extension>"
    )
    phone_number = fields.CharField(
        max_length=20, null=True, description="E.164, null for extensions"
    )
    extension = fields.CharField(max_length=10, null=True)
    pstn_connection = fields.CharField(max_length=100, null=True)
    active = fields.BooleanField(default=True)
    user_type = fields.CharField(max_length=40, null=True)
    number_type = fields.CharField(max_length=10, null=True, description="Primary or Secondary")
    user_id = fields.CharField(max_length=254, null=True)
    user_uuid = fields.UUIDField(null=True)

    class Meta:
        table = "phone_number"
        unique_together = (("customer", "number_key"),)
        indexes = (("phone_number",),)


class AppSession(Model):
    """A user's Webex App seen on one day with one client, platform and version."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="app_sessions", on_delete=fields.CASCADE
    )
    user_uuid = fields.UUIDField()
    client_type = fields.CharField(max_length=40)
    platform = fields.CharField(max_length=40)
    version = fields.CharField(max_length=40)
    os_version = fields.CharField(max_length=60)
    seen_on = fields.DateField()

    class Meta:
        table = "app_session"
        unique_together = (("customer", "user_uuid", "client_type", "platform", "seen_on"),)
        indexes = (("seen_on",),)


class DailyOrgUsage(Model):
    """Meeting participants, calling minutes and messages of a customer on one day."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="daily_usage", on_delete=fields.CASCADE
    )
    day = fields.DateField()
    meeting_participants = fields.IntField(default=0)
    calling_minutes = fields.IntField(default=0)
    messages_sent = fields.IntField(default=0)

    class Meta:
        table = "daily_org_usage"
        unique_together = (("customer", "day"),)
        indexes = (("day",),)
