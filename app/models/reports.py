"""Report templates, generated reports, schedules, webhook and e-mail deliveries."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import (
    EmailDeliveryStatus,
    Region,
    ReportFrequency,
    ReportStatus,
    ReportTemplateKind,
    ReportType,
)


class ReportTemplate(Model):
    """DEFAULT templates have no partner, CUSTOM ones belong to one partner."""

    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization",
        related_name="report_templates",
        null=True,
        on_delete=fields.CASCADE,
    )
    name = fields.CharField(max_length=100)
    name_key = fields.CharField(max_length=100, description="lower-cased name")
    kind = fields.CharEnumField(ReportTemplateKind, max_length=7)
    report_type = fields.CharEnumField(ReportType, max_length=20)
    column_keys = fields.JSONField(description="column keys in output order")
    created_by = fields.ForeignKeyField(
        "models.Admin", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    deleted_at = fields.DatetimeField(
        null=True,
        description="set when a CUSTOM template is deleted: gone from the list, kept for "
        "its past reports",
    )

    class Meta:
        table = "report_template"
        unique_together = (("partner", "name_key"),)


class ReportSchedule(Model):
    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="report_schedules", on_delete=fields.CASCADE
    )
    template = fields.ForeignKeyField(
        "models.ReportTemplate", related_name="schedules", on_delete=fields.CASCADE
    )
    frequency = fields.CharEnumField(ReportFrequency, max_length=7)
    day_of_week = fields.SmallIntField(null=True, description="1 = Monday .. 7 = Sunday")
    day_of_month = fields.SmallIntField(null=True, description="1..28")
    hour_utc = fields.SmallIntField()
    region = fields.CharEnumField(Region, max_length=3, null=True)
    enabled = fields.BooleanField(default=True)
    next_run_at = fields.DatetimeField(null=True)
    last_run_at = fields.DatetimeField(null=True)
    created_by = fields.ForeignKeyField(
        "models.Admin", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    webhook_url = fields.CharField(max_length=2000, null=True)
    customer_filter = fields.JSONField(
        null=True,
        description="CUSTOMER_LIST schedules: the customers filter each run applies (in the "
        "schedule owner's scope), or null for every customer",
    )
    recipients = fields.JSONField(
        null=True,
        description="lower-cased e-mail addresses of admins of the partner who get an e-mail "
        "with a download link when a run succeeds (null: none)",
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "report_schedule"
        indexes = (("enabled", "next_run_at"), ("partner_id",))


class Report(Model):
    """One generated (or generating) CSV file. Its status lives here, not in the queue."""

    id = fields.IntField(primary_key=True)
    partner = fields.ForeignKeyField(
        "models.PartnerOrganization", related_name="reports", on_delete=fields.CASCADE
    )
    template = fields.ForeignKeyField(
        "models.ReportTemplate", related_name="reports", on_delete=fields.CASCADE
    )
    column_keys = fields.JSONField(
        null=True,
        description="the template's column keys when the report was requested (null on "
        "reports older than this field: the template's)",
    )
    status = fields.CharEnumField(ReportStatus, max_length=9)
    region = fields.CharEnumField(Region, max_length=3, null=True)
    customer_filter = fields.JSONField(
        null=True,
        description="CUSTOMER_LIST reports: the customers filter applied (in the requester's "
        "scope), or null for every customer",
    )
    start_date = fields.DateField(null=True)
    end_date = fields.DateField(null=True)
    requested_by = fields.ForeignKeyField(
        "models.Admin", related_name="reports", null=True, on_delete=fields.SET_NULL
    )
    with_granted_customers = fields.BooleanField(
        default=False,
        description="asked for by an admin who is an external admin of customers in its "
        "region: its rows include those granted customers, and only the requester sees it",
    )
    schedule = fields.ForeignKeyField(
        "models.ReportSchedule", related_name="reports", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    attempts = fields.SmallIntField(default=0)
    row_count = fields.IntField(null=True)
    byte_size = fields.BigIntField(null=True)
    checksum = fields.CharField(max_length=64, null=True, description="sha256, hex")
    storage_key = fields.CharField(max_length=500, null=True)
    file_name = fields.CharField(max_length=300, null=True)
    error = fields.TextField(null=True)
    queued_at = fields.DatetimeField(
        null=True, description="when its current job was queued (creation or a requeue)"
    )
    lease_owner = fields.CharField(
        max_length=100, null=True, description="the job run that holds the report while RUNNING"
    )
    lease_expires_at = fields.DatetimeField(
        null=True, description="RUNNING past this with no renewal: its worker died"
    )

    class Meta:
        table = "report"
        indexes = (("partner_id", "created_at"), ("status", "finished_at"), ("schedule_id",))


class WebhookDelivery(Model):
    """A POST to a schedule's webhook when one of its runs finishes, with its retries."""

    id = fields.IntField(primary_key=True)
    report = fields.ForeignKeyField(
        "models.Report", related_name="webhook_deliveries", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2000)
    attempts = fields.SmallIntField(default=0)
    delivered_at = fields.DatetimeField(null=True)
    last_status_code = fields.SmallIntField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_delivery"


class EmailDelivery(Model):
    """The e-mail of one succeeded scheduled report to one recipient, with its
    tries: one row per report and recipient, so each recipient gets it once."""

    id = fields.IntField(primary_key=True)
    report = fields.ForeignKeyField(
        "models.Report", related_name="email_deliveries", on_delete=fields.CASCADE
    )
    schedule = fields.ForeignKeyField(
        "models.ReportSchedule",
        related_name="email_deliveries",
        null=True,
        on_delete=fields.SET_NULL,
        description="the schedule whose run it reports (ReportSchedule.emailDeliveries)",
    )
    recipient = fields.CharField(max_length=254, description="lower-cased e-mail address")
    status = fields.CharEnumField(EmailDeliveryStatus, max_length=7)
    attempts = fields.SmallIntField(default=0)
    last_error = fields.TextField(null=True)
    sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "email_delivery"
        unique_together = (("report", "recipient"),)
        indexes = (("schedule_id", "id"), ("status", "created_at"))
