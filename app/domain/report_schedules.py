"""Report schedules: DAILY, WEEKLY (dayOfWeek) or MONTHLY (dayOfMonth 1..28) at
`hourUtc`, and the tick that runs the due ones.

`next_run_at` is the schedule's next occurrence. The tick claims a due
schedule by moving its `next_run_at` to the first occurrence after now with a
compare-and-set UPDATE (only one worker's UPDATE matches the old value), so two
workers never run one occurrence, and a worker that was down runs a schedule
once for everything it missed, for the period that ended at its latest
occurrence.

Readers and mutations hand the API `ReportScheduleValue`s (plain values).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from app.domain.access import (
    CREATE_REPORT_SCHEDULE,
    DELETE_REPORT_SCHEDULE,
    UPDATE_REPORT_SCHEDULE,
    Viewer,
    visible_schedules,
)
from app.domain.calling_rollup import monday_of
from app.domain.customer_list_report import check_customer_filter
from app.domain.customers import CustomerFilter
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.mutations import Audited, audit_target, run_mutation, run_prepared_mutation
from app.domain.pagination import Page, keyset_page
from app.domain.report_emails import check_recipients, describe_recipients, recipients_of
from app.domain.report_templates import ReportTemplateValue, definition_of, get_template
from app.domain.reports import ReportRequest, check_region, create_report
from app.domain.webhook_targets import TargetRefused, check_target
from app.models.enums import Region, ReportFrequency
from app.models.reports import Report, ReportSchedule
from app.queue import JobQueue, QueueError

log = logging.getLogger(__name__)

MAX_WEBHOOK_URL_LENGTH = 2000


# ------------------------------------------------------------------ occurrences


@dataclass(frozen=True)
class Timing:
    frequency: ReportFrequency
    day_of_week: int | None
    day_of_month: int | None
    hour_utc: int


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour=hour), UTC)


def _add_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, day.day)


def next_occurrence(timing: Timing, after: datetime) -> datetime:
    """The first occurrence strictly after `after`."""
    today = after.astimezone(UTC).date()
    if timing.frequency is ReportFrequency.DAILY:
        candidate, step = today, timedelta(days=1)
    elif timing.frequency is ReportFrequency.WEEKLY:
        assert timing.day_of_week is not None
        candidate = monday_of(today) + timedelta(days=timing.day_of_week - 1)
        step = timedelta(weeks=1)
    else:
        assert timing.day_of_month is not None
        candidate = today.replace(day=timing.day_of_month)
        while _at(candidate, timing.hour_utc) <= after:
            candidate = _add_month(candidate)
        return _at(candidate, timing.hour_utc)
    while _at(candidate, timing.hour_utc) <= after:
        candidate += step
    return _at(candidate, timing.hour_utc)


def latest_occurrence(timing: Timing, due: datetime, now: datetime) -> datetime:
    """The last occurrence at or before `now`, starting from the due one."""
    latest = due
    while (following := next_occurrence(timing, latest)) <= now:
        latest = following
    return latest


def period_before(frequency: ReportFrequency, occurrence: datetime) -> tuple[date, date]:
    """The period that just ended at an occurrence: the previous day, the previous
    Monday-to-Sunday week, or the previous calendar month."""
    day = occurrence.astimezone(UTC).date()
    if frequency is ReportFrequency.DAILY:
        return day - timedelta(days=1), day - timedelta(days=1)
    if frequency is ReportFrequency.WEEKLY:
        monday = monday_of(day)
        return monday - timedelta(weeks=1), monday - timedelta(days=1)
    first_of_month = day.replace(day=1)
    last_of_previous = first_of_month - timedelta(days=1)
    return last_of_previous.replace(day=1), last_of_previous


@dataclass(frozen=True, slots=True)
class ReportScheduleValue:
    """A schedule as the API shows it."""

    id: int
    template_id: int
    frequency: ReportFrequency
    day_of_week: int | None
    day_of_month: int | None
    hour_utc: int
    region: Region | None
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    webhook_url: str | None
    recipients: tuple[str, ...]
    created_by_id: int | None

    @classmethod
    def of(cls, schedule: ReportSchedule) -> ReportScheduleValue:
        return cls(
            id=schedule.id,
            template_id=schedule.template_id,  # type: ignore[attr-defined]
            frequency=ReportFrequency(schedule.frequency),
            day_of_week=schedule.day_of_week,
            day_of_month=schedule.day_of_month,
            hour_utc=schedule.hour_utc,
            region=Region(schedule.region) if schedule.region else None,
            enabled=schedule.enabled,
            next_run_at=schedule.next_run_at,
            last_run_at=schedule.last_run_at,
            webhook_url=schedule.webhook_url,
            recipients=tuple(recipients_of(schedule)),
            created_by_id=schedule.created_by_id,  # type: ignore[attr-defined]
        )


def timing_of(schedule: ReportSchedule) -> Timing:
    return Timing(
        ReportFrequency(schedule.frequency),
        schedule.day_of_week,
        schedule.day_of_month,
        schedule.hour_utc,
    )


# ------------------------------------------------------------------ validation


async def check_webhook_url(
    url: str | None, field: tuple[str, ...], allowed_hosts: frozenset[str] = frozenset()
) -> str | None:
    """A URL webhooks may go to (app.domain.webhook_targets: https to a public
    host, or a host of `allowed_hosts`); '' clears it."""
    if url is None or url.strip() == "":
        return None
    url = url.strip()
    problem = None
    if len(url) > MAX_WEBHOOK_URL_LENGTH:
        problem = f"is longer than {MAX_WEBHOOK_URL_LENGTH} characters"
    else:
        try:
            await check_target(url, allowed_hosts)
        except TargetRefused as exc:
            problem = str(exc)
    if problem:
        raise reject(field, f"The webhook URL {problem}.", UserErrorCode.INVALID)
    return url


def check_timing(
    frequency: ReportFrequency,
    day_of_week: int | None,
    day_of_month: int | None,
    hour_utc: int,
) -> Timing:
    errors: list[UserError] = []

    def bad(field: str, message: str) -> None:
        errors.append(UserError(("input", field), message, UserErrorCode.INVALID))

    if not 0 <= hour_utc <= 23:
        bad("hour_utc", "hourUtc is 0 to 23.")
    if frequency is ReportFrequency.WEEKLY:
        if day_of_week is None:
            bad("day_of_week", "A WEEKLY schedule needs dayOfWeek (1 = Monday .. 7 = Sunday).")
        elif not 1 <= day_of_week <= 7:
            bad("day_of_week", "dayOfWeek is 1 (Monday) to 7 (Sunday).")
    elif day_of_week is not None:
        bad("day_of_week", f"dayOfWeek is for WEEKLY schedules, not {frequency.value}.")
    if frequency is ReportFrequency.MONTHLY:
        if day_of_month is None:
            bad("day_of_month", "A MONTHLY schedule needs dayOfMonth (1 to 28).")
        elif not 1 <= day_of_month <= 28:
            bad("day_of_month", "dayOfMonth is 1 to 28 (so every month has it).")
    elif day_of_month is not None:
        bad("day_of_month", f"dayOfMonth is for MONTHLY schedules, not {frequency.value}.")
    if errors:
        raise MutationRejected(errors)
    return Timing(frequency, day_of_week, day_of_month, hour_utc)


@dataclass(frozen=True)
class _CheckedSchedule:
    """createReportSchedule's input once checked (before its transaction)."""

    template: ReportTemplateValue
    timing: Timing
    url: str | None
    customer_filter: dict[str, Any] | None
    emails: list[str] | None


def _describe(schedule: ReportSchedule) -> str:
    when = {
        ReportFrequency.DAILY: "daily",
        ReportFrequency.WEEKLY: f"weekly on day {schedule.day_of_week}",
        ReportFrequency.MONTHLY: f"monthly on day {schedule.day_of_month}",
    }[ReportFrequency(schedule.frequency)]
    return f"{when} at {schedule.hour_utc:02d}:00 UTC"


# ------------------------------------------------------------------ mutations


async def create_schedule(
    viewer: Viewer,
    template_id: int | None,
    frequency: ReportFrequency,
    day_of_week: int | None,
    day_of_month: int | None,
    hour_utc: int,
    region: Region | None,
    webhook_url: str | None,
    now: datetime,
    *,
    allowed_webhook_hosts: frozenset[str] = frozenset(),
    customer_filter: CustomerFilter | None = None,
    recipients: list[str] | None = None,
) -> ReportScheduleValue:
    """A schedule; `customer_filter` (CUSTOMER_LIST only) is stored with it and each
    run applies it in the scope of the schedule's owner; `recipients` get an e-mail
    when a run succeeds (app.domain.report_emails)."""

    async def prepare() -> _CheckedSchedule:
        template = await get_template(viewer, template_id)
        if template is None:
            raise reject(
                ("input", "template_id"), "No such report template.", UserErrorCode.NOT_FOUND
            )
        timing = check_timing(frequency, day_of_week, day_of_month, hour_utc)
        url = await check_webhook_url(webhook_url, ("input", "webhook_url"), allowed_webhook_hosts)
        await check_region(viewer, region)
        stored_filter = await check_customer_filter(viewer, template, customer_filter, now.date())
        emails = await check_recipients(viewer, recipients)
        return _CheckedSchedule(template, timing, url, stored_filter, emails)

    async def work(checked: _CheckedSchedule) -> Audited[ReportScheduleValue]:
        timing = checked.timing
        schedule = await ReportSchedule.create(
            partner_id=viewer.partner_id,
            template_id=checked.template.id,
            frequency=timing.frequency,
            day_of_week=timing.day_of_week,
            day_of_month=timing.day_of_month,
            hour_utc=timing.hour_utc,
            region=region,
            enabled=True,
            next_run_at=next_occurrence(timing, now),
            created_by_id=viewer.admin.id,
            webhook_url=checked.url,
            customer_filter=checked.customer_filter,
            recipients=checked.emails or None,
        )
        return Audited(
            ReportScheduleValue.of(schedule),
            audit_target("ReportSchedule", schedule.id),
            f"Scheduled {checked.template.name!r} {_describe(schedule)}"
            f"{describe_recipients(recipients_of(schedule))}",
        )

    return await run_prepared_mutation(
        viewer, CREATE_REPORT_SCHEDULE, "report_schedule.create", prepare, work
    )


async def _own_schedule(viewer: Viewer, schedule_id: int | None) -> ReportSchedule:
    schedule = (
        await visible_schedules(viewer).select_for_update().get_or_none(id=schedule_id)
        if schedule_id
        else None
    )
    if schedule is None:
        raise reject(("input", "id"), "No such report schedule.", UserErrorCode.NOT_FOUND)
    return schedule


async def update_schedule(
    viewer: Viewer,
    schedule_id: int | None,
    *,
    enabled: bool | None,
    frequency: ReportFrequency | None,
    day_of_week: int | None,
    day_of_month: int | None,
    hour_utc: int | None,
    webhook_url: str | None,
    now: datetime,
    allowed_webhook_hosts: frozenset[str] = frozenset(),
    recipients: list[str] | None = None,
) -> ReportScheduleValue:
    """Change what is given. A new frequency drops the day fields it does not use
    unless they are given (and then they must fit it). `recipients` replaces the
    list ([] removes them all)."""

    async def prepare() -> tuple[str | None, list[str] | None]:
        url = await check_webhook_url(webhook_url, ("input", "webhook_url"), allowed_webhook_hosts)
        return url, await check_recipients(viewer, recipients)

    async def work(
        checked: tuple[str | None, list[str] | None],
    ) -> Audited[ReportScheduleValue]:
        url, emails = checked
        schedule = await _own_schedule(viewer, schedule_id)
        new_frequency = frequency or ReportFrequency(schedule.frequency)
        changes_frequency = new_frequency.value != schedule.frequency
        week_day = day_of_week
        month_day = day_of_month
        if week_day is None and not changes_frequency:
            week_day = schedule.day_of_week
        if month_day is None and not changes_frequency:
            month_day = schedule.day_of_month
        timing = check_timing(
            new_frequency,
            week_day,
            month_day,
            schedule.hour_utc if hour_utc is None else hour_utc,
        )
        schedule.frequency = timing.frequency
        schedule.day_of_week = timing.day_of_week
        schedule.day_of_month = timing.day_of_month
        schedule.hour_utc = timing.hour_utc
        if enabled is not None:
            schedule.enabled = enabled
        if webhook_url is not None:
            schedule.webhook_url = url
        if emails is not None:
            schedule.recipients = emails or None
        schedule.next_run_at = next_occurrence(timing, now) if schedule.enabled else None
        await schedule.save()
        template = await schedule.template
        state = "" if schedule.enabled else " (disabled)"
        return Audited(
            ReportScheduleValue.of(schedule),
            audit_target("ReportSchedule", schedule.id),
            f"Schedule of {template.name!r} now runs {_describe(schedule)}{state}"
            f"{describe_recipients(recipients_of(schedule))}",
        )

    return await run_prepared_mutation(
        viewer, UPDATE_REPORT_SCHEDULE, "report_schedule.update", prepare, work
    )


async def delete_schedule(viewer: Viewer, schedule_id: int | None) -> int:
    """Delete a schedule; its past reports stay (without their schedule)."""

    async def work() -> Audited[int]:
        schedule = await _own_schedule(viewer, schedule_id)
        template = await schedule.template
        await schedule.delete()
        return Audited(
            schedule.id,
            audit_target("ReportSchedule", schedule.id),
            f"Deleted the {_describe(schedule)} schedule of {template.name!r}",
        )

    return await run_mutation(viewer, DELETE_REPORT_SCHEDULE, "report_schedule.delete", work)


# ------------------------------------------------------------------ reading


async def get_schedule(viewer: Viewer, schedule_id: int | None) -> ReportScheduleValue | None:
    """A schedule the viewer sees."""
    if schedule_id is None:
        return None
    schedule = await visible_schedules(viewer).get_or_none(id=schedule_id)
    return ReportScheduleValue.of(schedule) if schedule else None


async def schedules_by_ids(viewer: Viewer, ids: Sequence[int]) -> dict[int, ReportScheduleValue]:
    """Schedules the viewer sees, in one statement."""
    found = await visible_schedules(viewer).filter(id__in=list(ids))
    return {s.id: ReportScheduleValue.of(s) for s in found}


async def list_schedules(
    viewer: Viewer, *, first: int | None, after: str | None
) -> Page[ReportScheduleValue]:
    """The schedules the viewer sees, oldest first."""
    page = await keyset_page(visible_schedules(viewer), ("id",), first, after, "schedules")
    return replace(page, items=[ReportScheduleValue.of(s) for s in page.items])


# ------------------------------------------------------------------ the tick


async def claim(schedule: ReportSchedule, now: datetime) -> datetime | None:
    """Claim the schedule's due occurrence: returns the latest occurrence to run,
    or None when another worker claimed it first."""
    timing = timing_of(schedule)
    due = schedule.next_run_at
    assert due is not None
    occurrence = latest_occurrence(timing, due, now)
    claimed = await ReportSchedule.filter(id=schedule.id, enabled=True, next_run_at=due).update(
        next_run_at=next_occurrence(timing, now), last_run_at=now
    )
    return occurrence if claimed else None


async def run_due_schedules(queue: JobQueue, now: datetime) -> list[Report]:
    """Start a report for each due schedule (the per-minute tick)."""
    due = await ReportSchedule.filter(enabled=True, next_run_at__lte=now).order_by(
        "next_run_at", "id"
    )
    started: list[Report] = []
    for schedule in due:
        try:
            report = await _run_schedule(schedule, queue, now)
        except QueueError:
            log.warning("schedule %s not run: the job queue does not answer", schedule.id)
            continue
        if report is not None:
            started.append(report)
    return started


async def _run_schedule(schedule: ReportSchedule, queue: JobQueue, now: datetime) -> Report | None:
    async with in_transaction():
        occurrence = await claim(schedule, now)
        if occurrence is None:
            return None
        template = await schedule.template
        start = end = None
        if definition_of(template).supports_date_range:
            start, end = period_before(ReportFrequency(schedule.frequency), occurrence)
        request = ReportRequest(
            template,
            start,
            end,
            Region(schedule.region) if schedule.region else None,
            schedule.customer_filter,
        )
        return await create_report(
            schedule.partner_id,
            request,
            schedule.created_by_id,
            queue,
            occurrence.date(),
            schedule_id=schedule.id,
        )
