"""E-mail to the recipients of scheduled reports.

A schedule lists up to 20 recipients (`recipients`), each an active admin of the
partner whose role sees every customer: a schedule belongs to a FULL_ADMIN, so
its report holds every customer of the partner (or those of its customer
filter), and an admin who reaches only its assigned customers must not receive
it (the rule `visible_reports` applies to the same files in the API).

When a scheduled run SUCCEEDS, one `EmailDelivery` row per recipient is stored
(unique per report and recipient, so a job that runs again adds none) and one
job per row sends it: the report's name, period, region, row count and a signed
download link valid PARTNERHUB_EMAIL_LINK_SECONDS. A row that is SENT is never
sent again; each try first claims the row (a compare-and-set on its attempts),
so two jobs of one row never send the same try. The recipient is checked again
before each try: removed or no longer seeing every customer, the row is SKIPPED.

Through PARTNERHUB_SMTP_HOST (aiosmtplib; none, STARTTLS or TLS; optional
credentials): a refusal with a 5xx code is final (FAILED at once), anything else
(a 4xx answer, no connection, no answer within SEND_TIMEOUT_SECONDS) is tried
again after PARTNERHUB_EMAIL_RETRY_BASE_SECONDS, doubling, at most MAX_ATTEMPTS
tries. With no SMTP host (the embedded default) the message is written as a
.eml file under <var_dir>/mail and one line is logged. The link's signature is
never logged.

The API reads a schedule's deliveries as `EmailDeliveryValue`s (plain values).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import aiosmtplib
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery

from app.config import Settings
from app.db import fetch_all
from app.domain.access import (
    Viewer,
    receives_scheduled_reports,
    visible_admins,
    visible_reports,
)
from app.domain.customers import EMAIL
from app.domain.downloads import sign_download
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.pagination import ID, Cursors, Keyset, Page, keyset_page, page_size
from app.domain.reports import ReportValue, download_file_name
from app.domain.sql import one_of
from app.models.admins import Admin
from app.models.enums import EmailDeliveryStatus, ReportStatus
from app.models.organization import PartnerOrganization
from app.models.reports import EmailDelivery, Report, ReportSchedule, ReportTemplate

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 20
MAX_ATTEMPTS = 5
SEND_TIMEOUT_SECONDS = 30.0
MAX_ERROR_LENGTH = 500
FIELD = ("input", "recipients")


# ------------------------------------------------------------------ recipients


async def check_recipients(viewer: Viewer, recipients: list[str] | None) -> list[str] | None:
    """The recipients to store, lower-cased and in the given order; None when not
    given. A bad address, a duplicate, an address that is no active admin of the
    viewer's partner, or one whose role does not see every customer is a user
    error at its index; more than MAX_RECIPIENTS one at the list."""
    if recipients is None:
        return None
    if len(recipients) > MAX_RECIPIENTS:
        raise reject(
            FIELD,
            f"A schedule has at most {MAX_RECIPIENTS} recipients ({len(recipients)} given).",
            UserErrorCode.LIMIT_EXCEEDED,
        )
    cleaned = [r.strip().lower() for r in recipients]
    admins = {
        a.email: a async for a in visible_admins(viewer).filter(email__in=[c for c in cleaned if c])
    }
    errors: list[UserError] = []
    seen: set[str] = set()
    for i, email in enumerate(cleaned):
        field = (*FIELD, str(i))
        admin = admins.get(email)
        if not EMAIL.match(email) or len(email) > 254:
            errors.append(UserError(field, "Not an e-mail address.", UserErrorCode.INVALID))
        elif email in seen:
            errors.append(
                UserError(field, f"{email} is listed more than once.", UserErrorCode.INVALID)
            )
        elif admin is None:
            errors.append(
                UserError(
                    field,
                    f"{email} is no admin of your partner organization: reports go only to "
                    "its admins.",
                    UserErrorCode.NOT_FOUND,
                )
            )
        elif not receives_scheduled_reports(admin, viewer.partner_id):
            errors.append(
                UserError(
                    field,
                    f"{email} is an {admin.role} and sees only its assigned customers; a "
                    "scheduled report holds every customer, so it goes only to admins who "
                    "see them all (FULL_ADMIN, READ_ONLY_ADMIN, SALES_FULL_ADMIN).",
                    UserErrorCode.FORBIDDEN,
                )
            )
        seen.add(email)
    if errors:
        raise MutationRejected(errors)
    return cleaned


def recipients_of(schedule: ReportSchedule) -> list[str]:
    return list(schedule.recipients or [])


def describe_recipients(recipients: list[str]) -> str:
    """For an audit summary: nothing without recipients."""
    if not recipients:
        return ""
    return f", e-mailed to {len(recipients)} recipient{'s' if len(recipients) != 1 else ''}"


# ------------------------------------------------------------------ deliveries


async def deliveries_for(report: Report) -> list[EmailDelivery]:
    """The PENDING deliveries of a SUCCEEDED scheduled report, one per recipient
    of its schedule, created when missing (a second call creates none)."""
    if report.schedule_id is None or report.status != ReportStatus.SUCCEEDED:
        return []
    schedule = await ReportSchedule.get_or_none(id=report.schedule_id)
    if schedule is None or not schedule.recipients:
        return []
    existing = {
        d.recipient: d for d in await EmailDelivery.filter(report_id=report.id).order_by("id")
    }
    for recipient in recipients_of(schedule):
        if recipient in existing:
            continue
        try:
            existing[recipient] = await EmailDelivery.create(
                report_id=report.id,
                schedule_id=schedule.id,
                recipient=recipient,
                status=EmailDeliveryStatus.PENDING,
            )
        except IntegrityError:  # another job stored it first
            existing[recipient] = await EmailDelivery.get(report_id=report.id, recipient=recipient)
    return [d for d in existing.values() if d.status == EmailDeliveryStatus.PENDING]


async def waiting_deliveries(before: datetime, limit: int = 1000) -> list[int]:
    """Ids of the PENDING deliveries stored before `before`, oldest first."""
    return await (
        EmailDelivery.filter(status=EmailDeliveryStatus.PENDING, created_at__lt=before)
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class EmailDeliveryValue:
    """One delivery as the API shows it, with its report."""

    id: int
    recipient: str
    status: EmailDeliveryStatus
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    report: ReportValue

    @classmethod
    def of(cls, delivery: EmailDelivery) -> EmailDeliveryValue:
        """`delivery` with its report fetched."""
        return cls(
            id=delivery.id,
            recipient=delivery.recipient,
            status=EmailDeliveryStatus(delivery.status),
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            sent_at=delivery.sent_at,
            created_at=delivery.created_at,
            report=ReportValue.of(delivery.report),
        )


async def list_deliveries(
    viewer: Viewer, schedule_id: int, *, first: int | None, after: str | None
) -> Page[EmailDeliveryValue]:
    """The e-mail deliveries of a schedule the viewer sees (`schedule_id` from a
    scoped read), newest first, of the reports the viewer sees."""
    deliveries = EmailDelivery.filter(
        schedule_id=schedule_id,
        report_id__in=Subquery(visible_reports(viewer).values("id")),
    )
    page = await keyset_page(
        deliveries, ("id",), first, after, DELIVERY_KEYSET.kind, descending=True
    )
    # Their reports in one statement (EmailDelivery.report on the page).
    await EmailDelivery.fetch_for_list(page.items, "report")
    return replace(page, items=[EmailDeliveryValue.of(d) for d in page.items])


# A delivery's cursor: its id, newest first (what `keyset_page` makes in
# `list_deliveries`, so `after` continues from a first page read in a batch).
DELIVERY_KEYSET = Keyset("emailDeliveries", (ID,), descending=True)


async def first_delivery_pages(
    viewer: Viewer, schedule_ids: Sequence[int], first: int | None
) -> dict[int, Page[EmailDeliveryValue]]:
    """The first page of `list_deliveries` for each of the schedules (ids from a
    scoped read), for a whole page of schedules in three statements: the
    totals, the newest `first` of each (ROW_NUMBER per schedule), their rows
    with their reports."""
    size = page_size(first)
    if not schedule_ids:
        return {}
    # The viewer's reports, as access.py defines them, inlined (ids and flags only).
    reports = visible_reports(viewer).values_list("id", flat=True).sql(params_inline=True)
    schedules = one_of("d.schedule_id", list(schedule_ids))
    base = f"FROM email_delivery d WHERE {schedules.text} AND d.report_id IN ({reports})"
    totals = {
        r["schedule_id"]: int(r["n"])
        for r in await fetch_all(
            f"SELECT d.schedule_id, COUNT(*) AS n {base} GROUP BY d.schedule_id",
            list(schedules.params),
        )
    }
    newest = await fetch_all(
        "SELECT id, schedule_id FROM (SELECT d.id, d.schedule_id, ROW_NUMBER() OVER"
        f" (PARTITION BY d.schedule_id ORDER BY d.id DESC) AS rn {base}) ranked"
        " WHERE rn <= ? ORDER BY schedule_id, id DESC",
        [*schedules.params, size],
    )
    ids = [r["id"] for r in newest]
    rows = await EmailDelivery.filter(id__in=ids) if ids else []
    await EmailDelivery.fetch_for_list(rows, "report")
    by_id = {d.id: EmailDeliveryValue.of(d) for d in rows}
    pages = {}
    for schedule_id in schedule_ids:
        mine = [by_id[r["id"]] for r in newest if r["schedule_id"] == schedule_id]
        total = totals.get(schedule_id, 0)
        pages[schedule_id] = Page(
            items=mine,
            cursors=Cursors(mine, lambda d: DELIVERY_KEYSET.cursor([d.id])),
            has_next_page=total > len(mine),
            has_previous_page=False,
            total_count=total,
        )
    return pages


# ------------------------------------------------------------------ sending


@dataclass(frozen=True)
class MailConfig:
    """What sending needs from the settings."""

    signing_key: str
    base_url: str
    link_seconds: int
    retry_base_seconds: float
    sender: str
    smtp_host: str | None
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_security: str
    outbox: Path

    @classmethod
    def of(cls, settings: Settings) -> MailConfig:
        return cls(
            signing_key=settings.signing_key(),
            base_url=settings.webhook_base_url,
            link_seconds=settings.email_link_seconds,
            retry_base_seconds=settings.email_retry_base_seconds,
            sender=settings.smtp_sender,
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port_or_default,
            smtp_username=settings.smtp_username,
            smtp_password=settings.smtp_password,
            smtp_security=settings.smtp_security,
            outbox=settings.mail_folder,
        )


@dataclass(frozen=True)
class Attempt:
    # sent, retry, failed, skipped; None when this call tried nothing (already
    # done, or another job holds the try).
    outcome: str | None
    # Seconds until the next try; None when there is none.
    retry_in: float | None = None


class Refused(Exception):
    """The SMTP server refused the message for good (a 5xx answer)."""


def _period(report: Report) -> str:
    if report.start_date and report.end_date:
        if report.start_date == report.end_date:
            return report.start_date.isoformat()
        return f"{report.start_date.isoformat()} to {report.end_date.isoformat()}"
    return "none (a point-in-time report)"


def compose(
    report: Report,
    template: ReportTemplate,
    partner: PartnerOrganization,
    delivery: EmailDelivery,
    link: str,
    link_expires_at: datetime,
    file_name: str,
    sender: str,
    now: datetime,
) -> EmailMessage:
    """The e-mail of one delivery: plain text with the link on a line of its own."""
    period = _period(report)
    subject = f"Partner Hub report {template.name!r} is ready"
    if report.start_date and report.end_date:
        subject += f" ({period})"
    rows = report.row_count or 0
    body = "\n".join(
        [
            "Hello,",
            "",
            f"The scheduled report {template.name!r} of {partner.name} is ready.",
            "",
            f"Report:  {template.name}",
            f"Period:  {period}",
            f"Region:  {report.region or 'all regions'}",
            f"Rows:    {rows}",
            f"File:    {file_name}",
            "",
            f"Download it (the link works until {link_expires_at:%Y-%m-%d %H:%M} UTC):",
            link,
            "",
            "You get this e-mail because a FULL_ADMIN of your partner organization listed "
            "you as a recipient of this report schedule in Partner Hub.",
            "",
        ]
    )
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = delivery.recipient
    message["Date"] = format_datetime(now.astimezone(UTC))
    domain = parseaddr(sender)[1].rpartition("@")[2] or "partnerhub"
    # The same id on every try: a mail client shows a message sent twice once.
    message["Message-ID"] = f"<report-{report.id}.delivery-{delivery.id}@{domain}>"
    message["X-PartnerHub-Report"] = str(report.id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


async def _send_smtp(message: EmailMessage, config: MailConfig) -> None:
    assert config.smtp_host is not None
    try:
        await aiosmtplib.send(
            message,
            hostname=config.smtp_host,
            port=config.smtp_port,
            username=config.smtp_username,
            password=config.smtp_password,
            use_tls=config.smtp_security == "tls",
            start_tls=config.smtp_security == "starttls",
            timeout=SEND_TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        if codes and all(code >= 500 for code in codes):
            raise Refused(f"SMTP {text}") from None
        raise
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500:
            raise Refused(f"SMTP {exc.code} {exc.message}") from None
        raise


def _write_eml(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def send_message(message: EmailMessage, config: MailConfig, eml_name: str) -> Path | None:
    """Send `message` through PARTNERHUB_SMTP_HOST, or with none set write it as
    `eml_name` under the outbox folder and return its path (None when sent by
    SMTP). Raises `Refused` for a final refusal (5xx), `aiosmtplib.SMTPException`
    or `OSError` for what is worth another try (`error_text` words it). Shared by
    every e-mail of the service (report deliveries, the attention digest)."""
    if config.smtp_host is None:
        path = config.outbox / eml_name
        await asyncio.to_thread(_write_eml, path, bytes(message))
        return path
    await _send_smtp(message, config)
    return None


def error_text(exc: BaseException) -> str:
    """What `last_error` keeps of a failed try (at most MAX_ERROR_LENGTH characters)."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"SMTP {exc.code} {exc.message}"
    elif isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        text = "SMTP " + "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
    elif isinstance(exc, TimeoutError):
        text = f"No answer within {SEND_TIMEOUT_SECONDS:g} s ({type(exc).__name__}: {exc})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_LENGTH]


async def _finish(
    delivery: EmailDelivery, status: EmailDeliveryStatus, error: str | None, now: datetime
) -> None:
    delivery.status = status
    delivery.last_error = error
    if status == EmailDeliveryStatus.SENT:
        delivery.sent_at = now
    await delivery.save(update_fields=["status", "last_error", "sent_at"])


async def deliver(delivery_id: int, config: MailConfig, now: datetime) -> Attempt:
    """One try of a delivery; records its outcome on the delivery row."""
    delivery = await EmailDelivery.get_or_none(id=delivery_id)
    if delivery is None or delivery.status != EmailDeliveryStatus.PENDING:
        return Attempt(None)
    if delivery.attempts >= MAX_ATTEMPTS:
        await _finish(delivery, EmailDeliveryStatus.FAILED, delivery.last_error, now)
        return Attempt("failed")
    report = await Report.get(id=delivery.report_id)
    recipient = await Admin.get_or_none(email=delivery.recipient)
    if recipient is None or not receives_scheduled_reports(recipient, report.partner_id):  # type: ignore[attr-defined]
        reason = (
            f"Not sent: {delivery.recipient} is no longer an admin of the partner who sees "
            "every customer."
        )
        await _finish(delivery, EmailDeliveryStatus.SKIPPED, reason, now)
        log.info(
            "report %s: e-mail to %s skipped (no longer allowed)", report.id, delivery.recipient
        )
        return Attempt("skipped")
    if report.status != ReportStatus.SUCCEEDED:
        reason = f"Not sent: the report is {report.status} (its file is gone)."
        await _finish(delivery, EmailDeliveryStatus.FAILED, reason, now)
        return Attempt("failed")
    # The claim: only one job's UPDATE moves the attempts from this value.
    claimed = await EmailDelivery.filter(
        id=delivery.id, status=EmailDeliveryStatus.PENDING, attempts=delivery.attempts
    ).update(attempts=delivery.attempts + 1)
    if not claimed:
        return Attempt(None)
    delivery.attempts += 1
    template = await ReportTemplate.get(id=report.template_id)  # type: ignore[attr-defined]
    partner = await PartnerOrganization.get(id=report.partner_id)  # type: ignore[attr-defined]
    signed = sign_download(config.signing_key, config.base_url, report.id, now, config.link_seconds)
    file_name = download_file_name(report, now.date())
    message = compose(
        report,
        template,
        partner,
        delivery,
        signed.url,
        signed.expires_at,
        file_name,
        config.sender,
        now,
    )
    try:
        path = await send_message(message, config, f"report-{report.id}-delivery-{delivery.id}.eml")
        if path is not None:
            log.info(
                "report %s: e-mail to %s written to %s (no PARTNERHUB_SMTP_HOST set)",
                report.id,
                delivery.recipient,
                path,
            )
        else:
            log.info("report %s: e-mail sent to %s", report.id, delivery.recipient)
    except Refused as exc:
        await _finish(delivery, EmailDeliveryStatus.FAILED, str(exc)[:MAX_ERROR_LENGTH], now)
        log.warning("report %s: e-mail to %s refused: %s", report.id, delivery.recipient, exc)
        return Attempt("failed")
    except (aiosmtplib.SMTPException, OSError) as exc:
        error = error_text(exc)
        if delivery.attempts >= MAX_ATTEMPTS:
            await _finish(delivery, EmailDeliveryStatus.FAILED, error, now)
            log.warning(
                "report %s: e-mail to %s failed after %d tries: %s",
                report.id,
                delivery.recipient,
                delivery.attempts,
                error,
            )
            return Attempt("failed")
        await _finish(delivery, EmailDeliveryStatus.PENDING, error, now)
        retry_in = config.retry_base_seconds * 2 ** (delivery.attempts - 1)
        log.info(
            "report %s: e-mail to %s not sent (try %d): %s; next try in %g s",
            report.id,
            delivery.recipient,
            delivery.attempts,
            error,
            retry_in,
        )
        return Attempt("retry", retry_in)
    await _finish(delivery, EmailDeliveryStatus.SENT, None, now)
    return Attempt("sent")
