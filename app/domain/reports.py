"""Reports: `generateReport` (validate, store QUEUED, queue the job), the
reports list, and download handles. The worker side is report_generation.py.

Readers and `generate_report` hand the API `ReportValue`s (plain values, no
table row); the loaders' batch readers of templates, schedules and last
reports answer values too."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from tortoise.functions import Max

from app.clock import utcnow
from app.db import fetch_all
from app.domain.access import (
    GENERATE_REPORT,
    Viewer,
    customer_scope,
    granted_customer_scope,
    visible_reports,
)
from app.domain.customer_list_report import check_customer_filter
from app.domain.customers import CustomerFilter
from app.domain.downloads import sign_download
from app.domain.errors import UserErrorCode, reject
from app.domain.mutations import Audited, audit_target, run_prepared_mutation
from app.domain.pagination import Page, keyset_page
from app.domain.report_templates import (
    ReportTemplateValue,
    definition_of,
    get_template,
)
from app.domain.report_templates import templates_by_ids as templates_by_ids
from app.domain.sql import Sql
from app.models.enums import Region, ReportStatus
from app.models.reports import Report, ReportTemplate
from app.queue import JobQueue, QueueError

if TYPE_CHECKING:
    from app.domain.report_schedules import ReportScheduleValue

MAX_RANGE_DAYS = 90
TERMINAL_STATUSES = frozenset({ReportStatus.SUCCEEDED, ReportStatus.FAILED, ReportStatus.EXPIRED})
GENERATE_JOB = "generate_report"
FILE_TOKEN_ALPHABET = string.ascii_letters + string.digits


def report_job_id(report: Report) -> str:
    """The ARQ job id of a report's current try: unique per report, the same
    on ARQ's retries; a report queued again after its lease lapsed (its worker
    died) gets a new one, since the dead job's id stays taken until ARQ gives up
    on it."""
    base = f"report:{report.id}:{report.storage_key}"
    return f"{base}:{report.attempts}" if report.attempts else base


def file_name_for(template_name: str, day: date) -> str:
    """`<Template Name>_<random alphanumeric>_<YYYY-MM-DD>.csv` (SPEC.md: reports).
    Stored on the report (and in its storage key) with the day it was queued;
    a download carries the download day instead: see `download_file_name`."""
    token = "".join(secrets.choice(FILE_TOKEN_ALPHABET) for _ in range(12))
    safe_name = re.sub(r"[^A-Za-z0-9 ._()&+,'-]", "-", template_name).strip() or "Report"
    return f"{safe_name}_{token}_{day.isoformat()}.csv"


_DATED_FILE_NAME = re.compile(r"(?P<stem>.+)_\d{4}-\d{2}-\d{2}\.csv")
FALLBACK_FILE_NAME = "report.csv"


@dataclass(frozen=True, slots=True)
class ReportValue:
    """A report as the API shows it."""

    id: int
    status: ReportStatus
    region: Region | None
    start_date: date | None
    end_date: date | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    row_count: int | None
    error: str | None
    template_id: int
    # The columns it was requested with (None on reports older than that: the template's).
    column_keys: tuple[str, ...] | None
    requested_by_id: int | None
    schedule_id: int | None
    file_name: str | None
    byte_size: int | None
    checksum: str | None

    @classmethod
    def of(cls, report: Report) -> ReportValue:
        return cls(
            id=report.id,
            status=ReportStatus(report.status),
            region=Region(report.region) if report.region else None,
            start_date=report.start_date,
            end_date=report.end_date,
            created_at=report.created_at,
            started_at=report.started_at,
            finished_at=report.finished_at,
            row_count=report.row_count,
            error=report.error,
            template_id=report.template_id,  # type: ignore[attr-defined]
            column_keys=tuple(report.column_keys) if report.column_keys is not None else None,
            requested_by_id=report.requested_by_id,  # type: ignore[attr-defined]
            schedule_id=report.schedule_id,  # type: ignore[attr-defined]
            file_name=report.file_name,
            byte_size=report.byte_size,
            checksum=report.checksum,
        )


def download_file_name(report: Report | ReportValue, day: date) -> str:
    """The name a download of `report` on `day` (UTC) carries: the stored
    `<Template Name>_<token>_<date>.csv` with the download date in place of the
    day it was queued (the seeds: "Default Template Name_alphanumeric
    characters_Download Date"). The one source of `Report.download.fileName`,
    the download endpoint's Content-Disposition and the webhook's fileName."""
    stored = report.file_name or FALLBACK_FILE_NAME
    match = _DATED_FILE_NAME.fullmatch(stored)
    if match is None:
        return stored
    return f"{match['stem']}_{day.isoformat()}.csv"


@dataclass(frozen=True)
class ReportRequest:
    template: ReportTemplate | ReportTemplateValue
    start_date: date | None
    end_date: date | None
    region: Region | None
    # CUSTOMER_LIST: the customers filter as stored (None: every customer).
    customer_filter: dict[str, Any] | None = None


async def check_request(
    viewer: Viewer,
    template_id: int | None,
    start_date: date | None,
    end_date: date | None,
    region: Region | None,
    today: date,
    customer_filter: CustomerFilter | None = None,
) -> ReportRequest:
    """Validate a report request; raise MutationRejected naming the field at fault."""
    template = await get_template(viewer, template_id)
    if template is None:
        raise reject(("input", "template_id"), "No such report template.", UserErrorCode.NOT_FOUND)
    definition = definition_of(template)
    if not definition.supports_date_range:
        if start_date is not None or end_date is not None:
            field = "start_date" if start_date is not None else "end_date"
            raise reject(
                ("input", field),
                f"{definition.name} is a point-in-time report: it takes no date range.",
                UserErrorCode.INVALID,
            )
    elif start_date is None or end_date is None:
        if definition.requires_date_range or (start_date, end_date) != (None, None):
            field = "start_date" if start_date is None else "end_date"
            raise reject(
                ("input", field),
                f"{definition.name} needs a date range: give startDate and endDate.",
                UserErrorCode.INVALID,
            )
    else:
        if end_date < start_date:
            raise reject(
                ("input", "end_date"), "endDate is before startDate.", UserErrorCode.INVALID
            )
        if end_date > today:
            raise reject(
                ("input", "end_date"),
                f"endDate {end_date} is in the future (today is {today} UTC).",
                UserErrorCode.INVALID,
            )
        days = (end_date - start_date).days + 1
        if days > MAX_RANGE_DAYS:
            raise reject(
                ("input", "end_date"),
                f"A report covers at most {MAX_RANGE_DAYS} days (this range has {days}).",
                UserErrorCode.INVALID,
            )
    await check_region(viewer, region)
    stored_filter = await check_customer_filter(viewer, template, customer_filter, today)
    return ReportRequest(template, start_date, end_date, region, stored_filter)


async def check_region(viewer: Viewer, region: Region | None) -> None:
    """A region is offered only where the viewer has customers (SPEC.md: region selector)."""
    if region is not None and not await _has_customers_in(viewer, region):
        raise reject(
            ("input", "region"),
            f"You have no customers in the {region.value} region.",
            UserErrorCode.INVALID,
        )


async def _has_customers_in(viewer: Viewer, region: Region) -> bool:
    scope = customer_scope(viewer) & Sql("c.region = ?", (region.value,))
    rows = await fetch_all(f"SELECT 1 FROM customer c WHERE {scope.text} LIMIT 1", scope.params)
    return bool(rows)


async def has_granted_customers(viewer: Viewer, region: Region | None) -> bool:
    """Whether the viewer sees customers through external-admin grants (in the region):
    a report it asks for then holds them, and is its own (`access.visible_reports`).
    Scheduled runs never hold them (a schedule's reports go to the whole partner)."""
    scope = granted_customer_scope(viewer)
    if region is not None:
        scope = scope & Sql("c.region = ?", (region.value,))
    rows = await fetch_all(f"SELECT 1 FROM customer c WHERE {scope.text} LIMIT 1", scope.params)
    return bool(rows)


async def create_report(
    partner_id: int,
    request: ReportRequest,
    requested_by_id: int | None,
    queue: JobQueue | None,
    today: date,
    schedule_id: int | None = None,
    with_granted_customers: bool = False,
) -> Report:
    """Store a QUEUED report and queue its job (call inside a transaction: if Redis
    cannot take the job, the caller's transaction rolls the report back). With no
    queue the caller runs the report itself (the CLI)."""
    file_name = file_name_for(request.template.name, today)
    report = await Report.create(
        partner_id=partner_id,
        template_id=request.template.id,
        column_keys=list(request.template.column_keys),  # kept if the template changes
        status=ReportStatus.QUEUED,
        region=request.region,
        customer_filter=request.customer_filter,
        start_date=request.start_date,
        end_date=request.end_date,
        requested_by_id=requested_by_id,
        schedule_id=schedule_id,
        with_granted_customers=with_granted_customers,
        file_name=file_name,
        storage_key=f"{partner_id}/{file_name}",
        queued_at=utcnow(),
    )
    if queue is not None:
        await queue.enqueue(
            GENERATE_JOB, report.id, report.storage_key, job_id=report_job_id(report)
        )
    return report


async def generate_report(
    viewer: Viewer,
    template_id: int | None,
    start_date: date | None,
    end_date: date | None,
    region: Region | None,
    queue: JobQueue | None,
    today: date,
    customer_filter: CustomerFilter | None = None,
) -> ReportValue:
    """generateReport: a QUEUED report whose job a worker runs, or user errors and
    nothing stored (also when the job queue is down). With no queue, the report
    is only stored, for the caller to run (`partnerhub report run`).
    `customer_filter` (CUSTOMER_LIST only) is applied when the report runs."""

    async def prepare() -> tuple[ReportRequest, bool]:
        request = await check_request(
            viewer, template_id, start_date, end_date, region, today, customer_filter
        )
        return request, await has_granted_customers(viewer, region)

    async def work(checked: tuple[ReportRequest, bool]) -> Audited[ReportValue]:
        request, granted = checked
        # The job is queued inside the transaction: if Redis cannot take it, the
        # report rolls back with the rest.
        report = await create_report(
            viewer.partner_id,
            request,
            viewer.admin.id,
            queue,
            today,
            with_granted_customers=granted,
        )
        return Audited(
            ReportValue.of(report),
            audit_target("Report", report.id),
            f"Generated a {request.template.name!r} report"
            + (f" for {request.start_date} to {request.end_date}" if request.start_date else "")
            + (f" in {request.region.value}" if request.region else "")
            + (" for filtered customers" if request.customer_filter else ""),
        )

    try:
        return await run_prepared_mutation(
            viewer, GENERATE_REPORT, "report.generate", prepare, work
        )
    except QueueError:
        raise reject(
            None,
            "Reports cannot be queued right now: the job queue (Redis) does not answer. "
            "Nothing was saved; try again in a moment.",
            UserErrorCode.UNAVAILABLE,
        ) from None


async def get_report(viewer: Viewer, report_id: int | None) -> ReportValue | None:
    """A report the viewer sees."""
    if report_id is None:
        return None
    report = await visible_reports(viewer).get_or_none(id=report_id)
    return ReportValue.of(report) if report else None


async def list_reports(
    viewer: Viewer,
    *,
    first: int | None,
    after: str | None,
    statuses: list[ReportStatus] | None = None,
    template_id: int | None = None,
    schedule_id: int | None = None,
) -> Page[ReportValue]:
    """Reports the viewer may see, newest first (None: no filter on that id)."""
    query = visible_reports(viewer)
    if statuses:
        query = query.filter(status__in=list(statuses))
    if template_id is not None:
        query = query.filter(template_id=template_id)
    if schedule_id is not None:
        query = query.filter(schedule_id=schedule_id)
    page = await keyset_page(query, ("id",), first, after, "reports", descending=True)
    return replace(page, items=[ReportValue.of(r) for r in page.items])


@dataclass(frozen=True)
class DownloadHandle:
    url: str
    expires_at: datetime
    file_name: str
    byte_size: int
    checksum: str


def download_handle(
    report: ReportValue, key: str, base_url: str, now: datetime, ttl_seconds: int
) -> DownloadHandle | None:
    """A fresh signed URL for a SUCCEEDED report; None for any other status. Its
    file name carries today's date, the date a download started now gets."""
    if report.status != ReportStatus.SUCCEEDED or not report.file_name:
        return None
    signed = sign_download(key, base_url, report.id, now, ttl_seconds)
    return DownloadHandle(
        url=signed.url,
        expires_at=signed.expires_at,
        file_name=download_file_name(report, now.date()),
        byte_size=report.byte_size or 0,
        checksum=report.checksum or "",
    )


def report_channel(report_id: int) -> str:
    """The Redis pub/sub channel that carries a report's status changes."""
    return f"partnerhub:report:{report_id}"


async def schedules_by_ids(viewer: Viewer, ids: Sequence[int]) -> dict[int, ReportScheduleValue]:
    """Schedules the viewer sees, in one statement (the loaders' batch reader,
    kept here for them; report_schedules imports this module)."""
    from app.domain.report_schedules import schedules_by_ids as read

    return await read(viewer, ids)


async def last_reports_of(viewer: Viewer, schedule_ids: Sequence[int]) -> dict[int, ReportValue]:
    """The newest report of each schedule: the newest ids per schedule, then those
    reports (two queries for a page of schedules, however many runs each has)."""
    newest_ids = (
        await visible_reports(viewer)
        .filter(schedule_id__in=list(schedule_ids))
        .annotate(newest=Max("id"))
        .group_by("schedule_id")
        .values_list("newest", flat=True)
    )
    reports = await Report.filter(id__in=list(newest_ids))
    return {r.schedule_id: ReportValue.of(r) for r in reports}  # type: ignore[attr-defined]
