"""Webex Calling call legs and the weekly rollups the Sunday job builds from them."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import CallFeature, CallType, EndpointType, QueueOutcome


class CallLeg(Model):
    """One leg of a call pushed by a partner integration (key: customer + leg_id + started_at).

    On PostgreSQL the table is partitioned by week of `started_at`
    (app/domain/call_leg_partitions.py): its primary key is (id, started_at)
    there, since a partitioned table's keys must hold the partition key; `id`
    stays unique through its one sequence (no constraint says so there) and is
    the model's primary key. The natural key holds `started_at` on both
    databases, so an ingest's ON CONFLICT target is the same on each."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name="call_legs", on_delete=fields.CASCADE
    )
    location = fields.ForeignKeyField(
        "models.Location", related_name="call_legs", null=True, on_delete=fields.SET_NULL
    )
    leg_id = fields.CharField(max_length=64)
    call_id = fields.CharField(max_length=64)
    user_uuid = fields.UUIDField(null=True)
    started_at = fields.DatetimeField()
    duration_seconds = fields.IntField()
    video_seconds = fields.IntField(default=0)
    has_audio = fields.BooleanField(default=True)
    has_video = fields.BooleanField(default=False)
    endpoint_type = fields.CharEnumField(EndpointType, max_length=12)
    ip_version = fields.SmallIntField(default=4)
    jitter_ms = fields.FloatField(null=True)
    latency_ms = fields.FloatField(null=True)
    packet_loss_pct = fields.FloatField(null=True)
    call_type = fields.CharEnumField(CallType, max_length=17)
    feature = fields.CharEnumField(CallFeature, max_length=14, default=CallFeature.NONE)
    queue_outcome = fields.CharEnumField(QueueOutcome, max_length=11, null=True)
    queue_wait_seconds = fields.IntField(null=True)

    class Meta:
        table = "call_leg"
        unique_together = (("customer", "leg_id", "started_at"),)
        indexes = (("started_at",), ("customer_id", "started_at"))


class CallingWeek(Model):
    """A completed week (Monday start, UTC) that the rollup job has aggregated."""

    id = fields.IntField(primary_key=True)
    week_start = fields.DateField(unique=True)
    refreshed_at = fields.DatetimeField()

    class Meta:
        table = "calling_week"


class CallingWeeklyCustomer(Model):
    """Usage and quality of one customer in one week."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name=False, on_delete=fields.CASCADE
    )
    week_start = fields.DateField()
    total_calls = fields.IntField()
    total_legs = fields.IntField()
    call_minutes = fields.IntField()
    video_minutes = fields.IntField()
    active_users = fields.IntField()
    users_low = fields.IntField(description="users with 1-5 calls in the week")
    users_medium = fields.IntField(description="users with 6-20 calls")
    users_high = fields.IntField(description="users with more than 20 calls")
    quality_legs = fields.IntField(description="legs that carry quality metrics")
    poor_legs = fields.IntField()

    class Meta:
        table = "calling_weekly_customer"
        unique_together = (("customer", "week_start"),)
        indexes = (("week_start",),)


class CallingWeeklyEndpoint(Model):
    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name=False, on_delete=fields.CASCADE
    )
    week_start = fields.DateField()
    endpoint_type = fields.CharEnumField(EndpointType, max_length=12)
    total_legs = fields.IntField()
    poor_legs = fields.IntField()

    class Meta:
        table = "calling_weekly_endpoint"
        unique_together = (("customer", "week_start", "endpoint_type"),)
        indexes = (("week_start",),)


class CallingWeeklyFeature(Model):
    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name=False, on_delete=fields.CASCADE
    )
    week_start = fields.DateField()
    feature = fields.CharEnumField(CallFeature, max_length=14)
    calls = fields.IntField()

    class Meta:
        table = "calling_weekly_feature"
        unique_together = (("customer", "week_start", "feature"),)
        indexes = (("week_start",),)


class CallingWeeklyQueue(Model):
    """Call queue figures of one customer in one week (only customers with a queue)."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField(
        "models.Customer", related_name=False, on_delete=fields.CASCADE
    )
    week_start = fields.DateField()
    total_calls = fields.IntField()
    answered_calls = fields.IntField()
    abandoned_calls = fields.IntField()
    timed_out_calls = fields.IntField()
    overflowed_calls = fields.IntField()
    transferred_calls = fields.IntField()
    answer_wait_seconds = fields.BigIntField(description="sum over answered calls")
    abandon_wait_seconds = fields.BigIntField(description="sum over abandoned calls")

    class Meta:
        table = "calling_weekly_queue"
        unique_together = (("customer", "week_start"),)
        indexes = (("week_start",),)
