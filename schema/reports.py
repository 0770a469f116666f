"""Reports: templates, reports with their download handles, schedules, the
mutations, and the `reportUpdated` subscription: Strawberry types over the
domain's values (app/domain/reports.py, report_templates.py, report_schedules.py,
report_emails.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime

import strawberry

from app.domain import report_emails, report_schedules, report_templates, reports
from app.domain.access import SCHEDULE_ROLES
from app.domain.customers import CustomerFilter as CustomerFilterValue
from app.domain.errors import InvalidArgument
from app.domain.ids import decode_id_of, encode_global_id
from app.domain.report_columns import Column
from app.domain.report_emails import EmailDeliveryValue
from app.domain.report_schedules import ReportScheduleValue
from app.domain.report_templates import ReportTemplateValue
from app.domain.reports import ReportValue
from app.domain.webhooks import schedule_secret
from app.models.enums import ReportStatus as ReportStatusValue
from schema.admins import Admin
from schema.context import Info
from schema.customers import CustomerFilter
from schema.enums import (
    EmailDeliveryStatus,
    Region,
    ReportFrequency,
    ReportStatus,
    ReportTemplateKind,
    ReportType,
)
from schema.node import Node, node_loader
from schema.pagination import Connection
from schema.payloads import DeleteInput, DeletePayload, UserError, mutate

# ---------------------------------------------------------------- templates


@strawberry.type(name="ReportColumn")
class ReportColumn:
    key: str
    title: str
    description: str

    @classmethod
    def of(cls, column: Column) -> ReportColumn:
        return cls(key=column.key, title=column.title, description=column.description)


@strawberry.type(name="ReportTemplate")
class ReportTemplate(Node):
    name: str
    kind: ReportTemplateKind
    report_type: ReportType
    description: str
    columns: list[ReportColumn]
    supports_date_range: bool = strawberry.field(
        description="False for point-in-time inventory reports (devices, phone numbers)."
    )
    requires_date_range: bool = strawberry.field(
        description="True when generateReport needs startDate and endDate (calling usage). "
        "Webex App versions takes an optional range (default: the last 90 days)."
    )
    deleted_at: datetime | None = strawberry.field(
        default=None,
        description="When the CUSTOM template was deleted (seen through its past reports); "
        "null while it is in use.",
    )

    @classmethod
    def of(cls, template: ReportTemplateValue) -> ReportTemplate:
        return cls(
            id=strawberry.ID(encode_global_id("ReportTemplate", template.id)),
            name=template.name,
            kind=template.kind,
            report_type=template.report_type,
            description=template.description,
            columns=[ReportColumn.of(c) for c in template.columns],
            supports_date_range=template.supports_date_range,
            requires_date_range=template.requires_date_range,
            deleted_at=template.deleted_at,
        )


@node_loader("ReportTemplate")
async def load_template(info: Info, pk: int) -> ReportTemplate | None:
    template = await report_templates.get_template(info.context.viewer, pk)
    return ReportTemplate.of(template) if template else None


async def _template(info: Info, template_id: int) -> ReportTemplate:
    template = await info.context.loaders.report_templates.load(template_id)
    return ReportTemplate.of(template)


# ---------------------------------------------------------------- reports


@strawberry.type(name="DownloadHandle")
class DownloadHandle:
    url: str = strawberry.field(
        description="Signed URL; works without other credentials until expiresAt."
    )
    expires_at: datetime
    file_name: str
    byte_size: int
    checksum: str = strawberry.field(description="sha256 of the file, hex.")


@strawberry.type(name="Report")
class Report(Node):
    value: strawberry.Private[ReportValue]
    status: ReportStatus
    region: Region | None
    start_date: date | None
    end_date: date | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    row_count: int | None = strawberry.field(
        description="Rows in the file (0 for an empty report); null until SUCCEEDED."
    )
    error: str | None

    @classmethod
    def of(cls, report: ReportValue) -> Report:
        return cls(
            id=strawberry.ID(encode_global_id("Report", report.id)),
            value=report,
            status=report.status,
            region=report.region,
            start_date=report.start_date,
            end_date=report.end_date,
            created_at=report.created_at,
            started_at=report.started_at,
            finished_at=report.finished_at,
            row_count=report.row_count,
            error=report.error,
        )

    @strawberry.field
    async def template(self, info: Info) -> ReportTemplate:
        return await _template(info, self.value.template_id)

    @strawberry.field(
        description="The columns of the report's file: its template's when it was requested "
        "(a later change of the template does not change them)."
    )
    async def columns(self, info: Info) -> list[ReportColumn]:
        template = await info.context.loaders.report_templates.load(self.value.template_id)
        columns = report_templates.columns_of(template, self.value.column_keys)
        return [ReportColumn.of(c) for c in columns]

    @strawberry.field
    async def requested_by(self, info: Info) -> Admin | None:
        return await Admin.by_id(info, self.value.requested_by_id)

    @strawberry.field
    async def schedule(self, info: Info) -> ReportSchedule | None:
        if self.value.schedule_id is None:
            return None
        schedule = await info.context.loaders.report_schedules.load(self.value.schedule_id)
        return ReportSchedule.of(schedule) if schedule else None

    @strawberry.field(description="Null until SUCCEEDED; a fresh handle on every read.")
    def download(self, info: Info) -> DownloadHandle | None:
        settings = info.context.settings
        handle = reports.download_handle(
            self.value,
            settings.signing_key(),
            info.context.public_base_url,
            info.context.clock.now,
            settings.download_url_ttl_seconds,
        )
        if handle is None:
            return None
        return DownloadHandle(
            url=handle.url,
            expires_at=handle.expires_at,
            file_name=handle.file_name,
            byte_size=handle.byte_size,
            checksum=handle.checksum,
        )


@node_loader("Report")
async def load_report(info: Info, pk: int) -> Report | None:
    report = await reports.get_report(info.context.viewer, pk)
    return Report.of(report) if report else None


ReportConnection = Connection[Report]


@strawberry.input(name="ReportFilter")
class ReportFilter:
    statuses: list[ReportStatus] | None = None
    template_id: strawberry.ID | None = None
    schedule_id: strawberry.ID | None = None


# ---------------------------------------------------------------- schedules


@strawberry.type(
    name="EmailDelivery",
    description="The e-mail of one succeeded scheduled run to one recipient, with its tries.",
)
class EmailDelivery:
    recipient: str
    status: EmailDeliveryStatus
    attempts: int = strawberry.field(description="Tries made (at most 5).")
    last_error: str | None = strawberry.field(
        description="Why the last try failed (the SMTP server's answer, or no connection); "
        "null once SENT."
    )
    sent_at: datetime | None
    created_at: datetime
    report: Report

    @classmethod
    def of(cls, delivery: EmailDeliveryValue) -> EmailDelivery:
        return cls(
            recipient=delivery.recipient,
            status=delivery.status,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            sent_at=delivery.sent_at,
            created_at=delivery.created_at,
            report=Report.of(delivery.report),
        )


EmailDeliveryConnection = Connection[EmailDelivery]


@strawberry.type(name="ReportSchedule")
class ReportSchedule(Node):
    value: strawberry.Private[ReportScheduleValue]
    frequency: ReportFrequency
    day_of_week: int | None = strawberry.field(description="1 = Monday .. 7 = Sunday, for WEEKLY.")
    day_of_month: int | None = strawberry.field(description="1..28, for MONTHLY.")
    hour_utc: int
    region: Region | None
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    webhook_url: str | None = strawberry.field(
        description="HTTPS URL that receives a signed POST when a run finishes."
    )
    recipients: list[str] = strawberry.field(
        description="Admins (by e-mail) who get an e-mail with a download link when a run succeeds."
    )

    @classmethod
    def of(cls, schedule: ReportScheduleValue) -> ReportSchedule:
        return cls(
            id=strawberry.ID(encode_global_id("ReportSchedule", schedule.id)),
            value=schedule,
            frequency=schedule.frequency,
            day_of_week=schedule.day_of_week,
            day_of_month=schedule.day_of_month,
            hour_utc=schedule.hour_utc,
            region=schedule.region,
            enabled=schedule.enabled,
            next_run_at=schedule.next_run_at,
            last_run_at=schedule.last_run_at,
            webhook_url=schedule.webhook_url,
            recipients=list(schedule.recipients),
        )

    @strawberry.field
    async def template(self, info: Info) -> ReportTemplate:
        return await _template(info, self.value.template_id)

    @strawberry.field(
        description="The e-mails of its succeeded runs to its recipients, newest first."
    )
    async def email_deliveries(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> EmailDeliveryConnection:
        if after is None:  # a page of schedules reads their first pages together
            page = await info.context.loaders.delivery_pages(first).load(self.value.id)
        else:
            page = await report_emails.list_deliveries(
                info.context.viewer, self.value.id, first=first, after=after
            )
        return EmailDeliveryConnection.of(page, EmailDelivery.of)

    @strawberry.field
    async def last_report(self, info: Info) -> Report | None:
        report = await info.context.loaders.last_reports.load(self.value.id)
        return Report.of(report) if report else None

    @strawberry.field
    async def created_by(self, info: Info) -> Admin | None:
        return await Admin.by_id(info, self.value.created_by_id)

    @strawberry.field(
        description="Key of the webhook's X-PartnerHub-Signature header: HMAC-SHA256 of "
        '"<X-PartnerHub-Timestamp>.<body>", hex. Null unless the viewer may change schedules.'
    )
    def webhook_signing_secret(self, info: Info) -> str | None:
        if info.context.viewer.role not in SCHEDULE_ROLES:
            return None
        return schedule_secret(info.context.settings.signing_key(), self.value.id)


@node_loader("ReportSchedule")
async def load_schedule(info: Info, pk: int) -> ReportSchedule | None:
    schedule = await report_schedules.get_schedule(info.context.viewer, pk)
    return ReportSchedule.of(schedule) if schedule else None


ReportScheduleConnection = Connection[ReportSchedule]


# ---------------------------------------------------------------- queries


async def resolve_report_templates(info: Info) -> list[ReportTemplate]:
    templates = await report_templates.list_templates(info.context.viewer)
    return [ReportTemplate.of(t) for t in templates]


async def resolve_reports(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: ReportFilter | None = None,
) -> ReportConnection:
    f = filter or ReportFilter()
    page = await reports.list_reports(
        info.context.viewer,
        first=first,
        after=after,
        statuses=f.statuses,
        template_id=_filter_id(f.template_id, "ReportTemplate"),
        schedule_id=_filter_id(f.schedule_id, "ReportSchedule"),
    )
    return ReportConnection.of(page, Report.of)


def _filter_id(global_id: strawberry.ID | None, type_name: str) -> int | None:
    """None when the filter is not given; 0 (matches nothing) for an id not of ours."""
    if global_id is None:
        return None
    return decode_id_of(str(global_id), type_name) or 0


async def resolve_report(info: Info, id: strawberry.ID) -> Report | None:
    report = await reports.get_report(info.context.viewer, decode_id_of(str(id), "Report"))
    return Report.of(report) if report else None


async def resolve_report_schedules(
    info: Info, first: int | None = None, after: str | None = None
) -> ReportScheduleConnection:
    page = await report_schedules.list_schedules(info.context.viewer, first=first, after=after)
    return ReportScheduleConnection.of(page, ReportSchedule.of)


# ---------------------------------------------------------------- mutations


@strawberry.input(name="CreateReportTemplateInput")
class CreateReportTemplateInput:
    name: str
    report_type: ReportType
    column_keys: list[str] = strawberry.field(
        description="Subset of the default template's column keys, in output order."
    )


@strawberry.input(name="UpdateReportTemplateInput")
class UpdateReportTemplateInput:
    template_id: strawberry.ID
    name: str | None = None
    column_keys: list[str] | None = strawberry.field(
        default=None,
        description="The columns again: a subset of the same default template's column keys, "
        "in output order. Reports already requested keep theirs.",
    )


@strawberry.input(name="DeleteReportTemplateInput")
class DeleteReportTemplateInput:
    template_id: strawberry.ID


@strawberry.type(name="ReportTemplatePayload")
class ReportTemplatePayload:
    template: ReportTemplate | None
    user_errors: list[UserError]


@strawberry.input(name="GenerateReportInput")
class GenerateReportInput:
    template_id: strawberry.ID
    start_date: date | None = None
    end_date: date | None = None
    region: Region | None = None
    customer_filter: CustomerFilter | None = strawberry.field(
        default=None,
        description="CUSTOMER_LIST templates only: the customers the report lists, as the "
        "`customers` query filters them (in the scope of the admin the report is for); "
        "default: every customer.",
    )


@strawberry.type(name="ReportPayload")
class ReportPayload:
    report: Report | None
    user_errors: list[UserError]


@strawberry.input(name="CreateReportScheduleInput")
class CreateReportScheduleInput:
    template_id: strawberry.ID
    frequency: ReportFrequency
    hour_utc: int
    day_of_week: int | None = None
    day_of_month: int | None = None
    region: Region | None = None
    webhook_url: str | None = None
    customer_filter: CustomerFilter | None = strawberry.field(
        default=None,
        description="CUSTOMER_LIST templates only: the customers each run lists, as the "
        "`customers` query filters them (in the scope of the schedule's owner); "
        "default: every customer.",
    )
    recipients: list[str] | None = strawberry.field(
        default=None,
        description="Up to 20 e-mail addresses of admins of the partner who see every customer "
        "(FULL_ADMIN, READ_ONLY_ADMIN, SALES_FULL_ADMIN); each gets an e-mail with a "
        "download link when a run succeeds.",
    )


@strawberry.input(name="UpdateReportScheduleInput")
class UpdateReportScheduleInput:
    id: strawberry.ID
    enabled: bool | None = None
    frequency: ReportFrequency | None = None
    day_of_week: int | None = None
    day_of_month: int | None = None
    hour_utc: int | None = None
    webhook_url: str | None = strawberry.field(
        default=None, description='An empty string ("") removes the webhook.'
    )
    recipients: list[str] | None = strawberry.field(
        default=None,
        description="The recipients again (replacing them; [] removes them all), as in "
        "createReportSchedule.",
    )


@strawberry.type(name="ReportSchedulePayload")
class ReportSchedulePayload:
    schedule: ReportSchedule | None
    user_errors: list[UserError]


async def resolve_create_report_template(
    info: Info, input: CreateReportTemplateInput
) -> ReportTemplatePayload:
    return await mutate(
        ReportTemplatePayload,
        lambda: report_templates.create_template(
            info.context.viewer, input.name, input.report_type, input.column_keys
        ),
        lambda template: {"template": ReportTemplate.of(template)},
    )


async def resolve_update_report_template(
    info: Info, input: UpdateReportTemplateInput
) -> ReportTemplatePayload:
    return await mutate(
        ReportTemplatePayload,
        lambda: report_templates.update_template(
            info.context.viewer,
            decode_id_of(str(input.template_id), "ReportTemplate"),
            input.name,
            input.column_keys,
        ),
        lambda template: {"template": ReportTemplate.of(template)},
    )


async def resolve_delete_report_template(
    info: Info, input: DeleteReportTemplateInput
) -> DeletePayload:
    return await mutate(
        DeletePayload,
        lambda: report_templates.delete_template(
            info.context.viewer, decode_id_of(str(input.template_id), "ReportTemplate")
        ),
        lambda pk: {"deleted_id": strawberry.ID(encode_global_id("ReportTemplate", pk))},
    )


def _filter_value(customer_filter: CustomerFilter | None) -> CustomerFilterValue | None:
    return customer_filter.value() if customer_filter is not None else None


async def resolve_generate_report(info: Info, input: GenerateReportInput) -> ReportPayload:
    return await mutate(
        ReportPayload,
        lambda: reports.generate_report(
            info.context.viewer,
            decode_id_of(str(input.template_id), "ReportTemplate"),
            input.start_date,
            input.end_date,
            input.region,
            info.context.queue,
            info.context.clock.today,
            _filter_value(input.customer_filter),
        ),
        lambda report: {"report": Report.of(report)},
    )


async def resolve_create_report_schedule(
    info: Info, input: CreateReportScheduleInput
) -> ReportSchedulePayload:
    return await mutate(
        ReportSchedulePayload,
        lambda: report_schedules.create_schedule(
            info.context.viewer,
            decode_id_of(str(input.template_id), "ReportTemplate"),
            input.frequency,
            input.day_of_week,
            input.day_of_month,
            input.hour_utc,
            input.region,
            input.webhook_url,
            info.context.clock.now,
            allowed_webhook_hosts=info.context.settings.webhook_allowed_hosts,
            customer_filter=_filter_value(input.customer_filter),
            recipients=input.recipients,
        ),
        lambda schedule: {"schedule": ReportSchedule.of(schedule)},
    )


async def resolve_update_report_schedule(
    info: Info, input: UpdateReportScheduleInput
) -> ReportSchedulePayload:
    return await mutate(
        ReportSchedulePayload,
        lambda: report_schedules.update_schedule(
            info.context.viewer,
            decode_id_of(str(input.id), "ReportSchedule"),
            enabled=input.enabled,
            frequency=input.frequency,
            day_of_week=input.day_of_week,
            day_of_month=input.day_of_month,
            hour_utc=input.hour_utc,
            webhook_url=input.webhook_url,
            now=info.context.clock.now,
            allowed_webhook_hosts=info.context.settings.webhook_allowed_hosts,
            recipients=input.recipients,
        ),
        lambda schedule: {"schedule": ReportSchedule.of(schedule)},
    )


async def resolve_delete_report_schedule(info: Info, input: DeleteInput) -> DeletePayload:
    return await mutate(
        DeletePayload,
        lambda: report_schedules.delete_schedule(
            info.context.viewer, decode_id_of(str(input.id), "ReportSchedule")
        ),
        lambda pk: {"deleted_id": strawberry.ID(encode_global_id("ReportSchedule", pk))},
    )


# ---------------------------------------------------------------- subscription


async def report_updates(info: Info, id: strawberry.ID) -> AsyncGenerator[Report, None]:
    """The report now, then again on each status change, until SUCCEEDED, FAILED
    or EXPIRED. Re-read on every event and every heartbeat, so a missed event
    costs a delay, never the end of the stream; while Redis pub/sub is away the
    report is re-read every couple of seconds instead (app/queue.py
    `JobQueue.listen`), and events resume by themselves once it is back."""
    viewer = info.context.viewer
    report_id = decode_id_of(str(id), "Report")
    if report_id is None:
        raise InvalidArgument("No such report.")
    channel = reports.report_channel(report_id)
    # Subscribed before the first read, so no change between the two is missed.
    async with info.context.queue.listen(channel, HEARTBEAT_SECONDS) as changes:
        last = None
        report = await reports.get_report(viewer, report_id)
        if report is None:
            raise InvalidArgument("No such report.")
        while report is not None:
            if report.status != last:
                yield Report.of(report)
                last = report.status
            if report.status in FINAL_STATUSES:
                return
            await anext(changes)
            report = await reports.get_report(viewer, report_id)


# How often a subscription re-reads its report when no event came.
HEARTBEAT_SECONDS = 15.0
FINAL_STATUSES = frozenset(
    {ReportStatusValue.SUCCEEDED, ReportStatusValue.FAILED, ReportStatusValue.EXPIRED}
)


@strawberry.type(name="Subscription")
class Subscription:
    report_updated: Report = strawberry.subscription(
        resolver=report_updates,
        description="Emits the report each time its status changes, ending after SUCCEEDED, "
        "FAILED or EXPIRED.",
    )
