"""The daily attention digest by e-mail, and the notification preferences that
ask for it.

Preferences: each admin sets its own (`update_notification_preferences`, any
role): `daily_digest` on or off, and the topics it covers (None: every topic;
an empty list, a repeated topic or STATUS_LOST, which says a customer no longer
needs attention, are refused). An admin with no row has the defaults (no
digest, every topic).

The digest of a UTC day D goes, once, to each admin who wants it and may still
sign in: the customers of ITS scope (its role, its external-admin grants:
`access.digest_viewer`) that entered an attention state during D, i.e. the
events of D it reads in the feed (`access.attention_event_scope`) of the types
in DIGEST_TOPICS that its topics keep, grouped (one
group per status gained, then trial ending, low license assignment, call quality
declining), each customer once per group with its Control Hub link (the
`launchUrl` of the API, from PARTNERHUB_CONTROL_HUB_URL: the service has no web
page of its own for a customer). Plain text with an HTML alternative; the
subject says how many customers.

Once per admin and day, whatever the number of workers: `open_digests` claims a
day by inserting its `attention_digest` row (unique admin and day); a day with
nothing to say is stored SKIPPED and sent nothing, one to send PENDING.
`send_digest` makes one try, claimed by a compare-and-set on the row's attempts
(as report e-mails do), through the same SMTP setting and .eml outbox as report
e-mails (`report_emails.send_message`): a 5xx refusal is final (FAILED), other
failures are tried again after PARTNERHUB_EMAIL_RETRY_BASE_SECONDS, doubling, at
most MAX_ATTEMPTS tries. What it lists is read again at each try (a customer
that left the admin's scope meanwhile is left out); an admin removed or opted
out before the send is SKIPPED.

Days: the worker (workers/attention_digest.py) looks at the day just ended and
the CATCH_UP_DAYS - 1 days before it, so an outage of up to that many days is
caught up; older days are not. A day D goes to an admin whose preferences were
last saved before D + 2 days 00:00 UTC: opting in brings the day just ended,
never older ones. Rows of days older than PARTNERHUB_ATTENTION_RETENTION_DAYS
are deleted (never one of a day a tick still looks at).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import aiosmtplib
import orjson

from app.clock import utcnow
from app.config import Settings
from app.db import execute, fetch_all, is_postgres
from app.domain.access import (
    UPDATE_NOTIFICATION_PREFERENCES,
    Viewer,
    attention_event_scope,
    digest_viewer,
    receives_attention_digest,
)
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.mutations import Audited, Outcome, Unaudited, audit_target, run_mutation
from app.domain.organization import launch_url
from app.domain.report_emails import (
    MAX_ATTEMPTS,
    MAX_ERROR_LENGTH,
    Attempt,
    MailConfig,
    Refused,
    error_text,
    send_message,
)
from app.domain.sql import Sql, in_list
from app.models.admins import Admin
from app.models.attention import AttentionDigest, NotificationPreference
from app.models.enums import AttentionEventType, CustomerStatus, EmailDeliveryStatus

log = logging.getLogger(__name__)

# The event types that say a customer entered an attention state: what a digest
# lists, and the topics a digest may be limited to (in this order).
DIGEST_TOPICS: tuple[AttentionEventType, ...] = (
    AttentionEventType.STATUS_GAINED,
    AttentionEventType.TRIAL_ENDING,
    AttentionEventType.LOW_LICENSE_ASSIGNMENT,
    AttentionEventType.CALL_QUALITY_DECLINING,
)
# The day just ended and the days before it that a tick still sends (an outage
# of up to this many days is caught up).
CATCH_UP_DAYS = 2
# A try in progress is a PENDING row with `sent_at` set (when the try began; a
# SENT row's is when it was sent). Another run takes it over only after this
# long (its worker died mid-try): longer than any try lasts.
TRY_LEASE = timedelta(minutes=5)
TOPICS_FIELD = ("input", "topics")


# ------------------------------------------------------------------ preferences


@dataclass(frozen=True, slots=True)
class NotificationPreferencesValue:
    """An admin's choice of the daily digest; `updated_at` None: never saved (the defaults)."""

    daily_digest: bool
    topics: tuple[AttentionEventType, ...] | None
    updated_at: datetime | None

    @classmethod
    def of(cls, row: NotificationPreference | None) -> NotificationPreferencesValue:
        if row is None:
            return DEFAULT_PREFERENCES
        return cls(row.daily_digest, _topics_of(row.topics), row.updated_at)


DEFAULT_PREFERENCES = NotificationPreferencesValue(daily_digest=False, topics=None, updated_at=None)


def _topics_of(stored: Any) -> tuple[AttentionEventType, ...] | None:
    if stored is None:
        return None
    if isinstance(stored, str | bytes):
        stored = orjson.loads(stored)
    return tuple(AttentionEventType(t) for t in stored)


async def notification_preferences(viewer: Viewer) -> NotificationPreferencesValue:
    """The viewer's own preferences (the defaults when it never saved any)."""
    return NotificationPreferencesValue.of(
        await NotificationPreference.get_or_none(admin_id=viewer.admin.id)
    )


def check_topics(
    topics: Sequence[AttentionEventType] | None,
) -> tuple[AttentionEventType, ...] | None:
    """The topics to store, in DIGEST_TOPICS order; None (every topic) stays None.
    An empty list, a repeated topic or one a digest never lists is refused."""
    if topics is None:
        return None
    if not topics:
        raise reject(
            TOPICS_FIELD,
            "Name at least one topic, or leave topics out (null) for every topic; to get "
            "no digest, set dailyDigest to false.",
            UserErrorCode.INVALID,
        )
    errors: list[UserError] = []
    seen: set[AttentionEventType] = set()
    for i, topic in enumerate(topics):
        field = (*TOPICS_FIELD, str(i))
        if topic in seen:
            errors.append(
                UserError(field, f"{topic.value} is listed twice.", UserErrorCode.INVALID)
            )
        elif topic not in DIGEST_TOPICS:
            names = ", ".join(t.value for t in DIGEST_TOPICS)
            errors.append(
                UserError(
                    field,
                    f"The digest lists customers entering an attention state; {topic.value} "
                    f"is no topic of it (its topics: {names}).",
                    UserErrorCode.INVALID,
                )
            )
        seen.add(topic)
    if errors:
        raise MutationRejected(errors)
    return tuple(t for t in DIGEST_TOPICS if t in seen)


def _describe(daily_digest: bool, topics: tuple[AttentionEventType, ...] | None) -> str:
    which = "every topic" if topics is None else ", ".join(t.value for t in topics)
    return f"Daily attention digest {'on' if daily_digest else 'off'} ({which})"


async def update_notification_preferences(
    viewer: Viewer, daily_digest: bool, topics: Sequence[AttentionEventType] | None
) -> NotificationPreferencesValue:
    """Set the viewer's own preferences (every role; nobody else's); unchanged
    values write nothing and no audit event."""

    async def work() -> Outcome[NotificationPreferencesValue]:
        clean = check_topics(topics)
        current = NotificationPreferencesValue.of(
            await NotificationPreference.get_or_none(admin_id=viewer.admin.id)
        )
        if current.updated_at is not None and (current.daily_digest, current.topics) == (
            daily_digest,
            clean,
        ):
            return Unaudited(current)
        now = utcnow()
        stored = None if clean is None else orjson.dumps([t.value for t in clean]).decode()
        cast = "CAST(? AS JSONB)" if is_postgres() else "?"
        # One statement whatever was there: two first saves at once do not collide.
        await execute(
            "INSERT INTO notification_preference (admin_id, daily_digest, topics, updated_at)"
            f" VALUES (?, ?, {cast}, ?) ON CONFLICT (admin_id) DO UPDATE SET"
            " daily_digest = excluded.daily_digest, topics = excluded.topics,"
            " updated_at = excluded.updated_at",
            [viewer.admin.id, daily_digest, stored, now],
        )
        saved = NotificationPreferencesValue(daily_digest, clean, now)
        return Audited(
            saved, audit_target("Admin", viewer.admin.id), _describe(daily_digest, clean)
        )

    return await run_mutation(
        viewer, UPDATE_NOTIFICATION_PREFERENCES, "notification_preferences.update", work
    )


# ------------------------------------------------------------------ what a digest lists


@dataclass(frozen=True, slots=True)
class DigestLine:
    """One customer in one group of a digest."""

    customer_id: int
    name: str
    link: str
    note: str  # what the event says ("trial ends 2026-12-20, 9 days left"), or ""
    external: bool  # seen through an external-admin grant (another partner's customer)


@dataclass(frozen=True, slots=True)
class DigestGroup:
    """The customers that entered one attention state (a status, or an event type)."""

    type: AttentionEventType
    status: CustomerStatus | None
    title: str
    lines: tuple[DigestLine, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """What the digest of one admin and day lists."""

    day: date
    groups: tuple[DigestGroup, ...]

    @property
    def customer_count(self) -> int:
        """Customers listed (one listed in two groups counts once)."""
        return len({line.customer_id for group in self.groups for line in group.lines})

    @property
    def entry_count(self) -> int:
        """Lines of the digest: one per customer and group (`event_count` of its row)."""
        return sum(len(group.lines) for group in self.groups)


TYPE_TITLES = {
    AttentionEventType.TRIAL_ENDING: "Trial ending soon",
    AttentionEventType.LOW_LICENSE_ASSIGNMENT: "Low license assignment",
    AttentionEventType.CALL_QUALITY_DECLINING: "Call quality declining",
}


def group_title(type: AttentionEventType, status: CustomerStatus | None) -> str:
    """A group's heading: "Now EXPIRING_SOON" for a status gained, else the type's title."""
    if type is AttentionEventType.STATUS_GAINED:
        return f"Now {status.value if status else 'in a new status'}"
    return TYPE_TITLES[type]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time.min, UTC)
    return start, start + timedelta(days=1)


def _detail(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def note_of(type: AttentionEventType, detail: dict[str, Any]) -> str:
    """What one line adds to the customer's name, from the event's detail."""
    if type is AttentionEventType.TRIAL_ENDING and detail.get("endDate"):
        days = detail.get("daysLeft")
        left = f", {days} day{'s' if days != 1 else ''} left" if days is not None else ""
        return f"trial ends {detail['endDate']}{left}"
    if type is AttentionEventType.LOW_LICENSE_ASSIGNMENT and detail.get("family"):
        return f"{detail['family']} licenses"
    if type is AttentionEventType.CALL_QUALITY_DECLINING and "poorShare" in detail:
        was = detail.get("previousPoorShare")
        week = f" in the week of {detail['week']}" if detail.get("week") else ""
        before = f" (was {_number(was)}%)" if was is not None else ""
        return f"poor-quality calls {_number(detail['poorShare'])}%{week}{before}"
    return ""


async def digest_of(
    admin: Admin,
    day: date,
    topics: Sequence[AttentionEventType] | None,
    control_hub_url: str,
) -> Digest:
    """What the digest of `admin` (its partner loaded) for `day` lists: the events of
    the day of its topics on the customers of its scope, one line per customer and
    group (the latest event's detail), groups in status then type order."""
    types = [t for t in DIGEST_TOPICS if topics is None or t in topics]
    if not types:
        return Digest(day, ())
    start, end = day_bounds(day)
    viewer = digest_viewer(admin)
    # The events the admin reads in the feed (attentionEvents), of the day and topics.
    where = (
        Sql("e.occurred_at >= ? AND e.occurred_at < ?", (start, end))
        & in_list("e.type", [t.value for t in types])
        & attention_event_scope(viewer)
    )
    rows = await fetch_all(
        "SELECT e.type, e.status, e.detail, e.customer_id, c.name, c.org_id, c.partner_id"
        f" FROM attention_event e JOIN customer c ON c.id = e.customer_id WHERE {where.text}"
        " ORDER BY e.id",
        where.params,
    )
    by_group: dict[tuple[AttentionEventType, CustomerStatus | None], dict[int, DigestLine]] = {}
    for row in rows:
        type = AttentionEventType(row["type"])
        status = CustomerStatus(row["status"]) if row["status"] else None
        key = (type, status if type is AttentionEventType.STATUS_GAINED else None)
        # The latest event of a customer in a group gives its note (rows in id order).
        by_group.setdefault(key, {})[row["customer_id"]] = DigestLine(
            customer_id=row["customer_id"],
            name=row["name"],
            link=launch_url(control_hub_url, row["org_id"]),
            note=note_of(type, _detail(row["detail"])),
            external=row["partner_id"] != viewer.partner_id,
        )
    order = {t: i for i, t in enumerate(DIGEST_TOPICS)}
    statuses = {s: i for i, s in enumerate(CustomerStatus)}
    groups = [
        DigestGroup(
            type=type,
            status=status,
            title=group_title(type, status),
            lines=tuple(sorted(lines.values(), key=lambda line: (line.name, line.customer_id))),
        )
        for (type, status), lines in sorted(
            by_group.items(),
            key=lambda item: (order[item[0][0]], statuses.get(item[0][1], -1)),  # type: ignore[arg-type]
        )
    ]
    return Digest(day, tuple(groups))


# ------------------------------------------------------------------ the message


def compose_digest(
    digest: Digest, digest_id: int, to: str, display_name: str, sender: str, now: datetime
) -> EmailMessage:
    """The digest's e-mail: plain text, with an HTML alternative of the same lines."""
    count = digest.customer_count
    customers = f"{count} customer{'s' if count != 1 else ''}"
    day = digest.day.isoformat()
    subject = f"Partner Hub: {customers} entered an attention state on {day}"
    intro = f"{customers} you see in Partner Hub entered an attention state on {day} (UTC)."
    footer = (
        "You get this e-mail because you turned on the daily attention digest in Partner "
        "Hub (updateNotificationPreferences); turn it off there."
    )
    text = [f"Hello {display_name},", "", intro, ""]
    parts = [
        f"<p>Hello {html.escape(display_name)},</p>",
        f"<p>{html.escape(intro)}</p>",
    ]
    for group in digest.groups:
        text.append(f"{group.title} ({len(group.lines)})")
        parts.append(f"<h3>{html.escape(group.title)} ({len(group.lines)})</h3>")
        items = []
        for line in group.lines:
            extra = [line.note] if line.note else []
            if line.external:
                extra.append("external admin")
            suffix = f" ({'; '.join(extra)})" if extra else ""
            text += [f"  - {line.name}{suffix}", f"    {line.link}"]
            items.append(
                f'<li><a href="{html.escape(line.link)}">{html.escape(line.name)}</a>'
                f"{html.escape(suffix)}</li>"
            )
        text.append("")
        parts.append(f"<ul>{''.join(items)}</ul>")
    text += [footer, ""]
    parts.append(f"<p>{html.escape(footer)}</p>")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(now.astimezone(UTC))
    domain = parseaddr(sender)[1].rpartition("@")[2] or "partnerhub"
    # The same id on every try: a mail client shows a message sent twice once.
    message["Message-ID"] = f"<attention-digest-{digest_id}@{domain}>"
    message["X-PartnerHub-Digest"] = day
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(text))
    message.add_alternative(
        "<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>", subtype="html"
    )
    return message


# ------------------------------------------------------------------ sending


@dataclass(frozen=True)
class DigestConfig:
    """What sending digests needs from the settings."""

    mail: MailConfig
    control_hub_url: str

    @classmethod
    def of(cls, settings: Settings) -> DigestConfig:
        return cls(MailConfig.of(settings), settings.control_hub_url)


def digest_days(now: datetime) -> list[date]:
    """The days a tick at `now` sends: the day just ended and the ones before it
    within CATCH_UP_DAYS, oldest first."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=n) for n in range(CATCH_UP_DAYS, 0, -1)]


async def _claim(admin_id: int, day: date, digest: Digest, now: datetime) -> int | None:
    """Insert the row of (admin, day): its id, or None when another run has it."""
    status = EmailDeliveryStatus.PENDING if digest.groups else EmailDeliveryStatus.SKIPPED
    reason = None if digest.groups else "Nothing to say: no customer entered an attention state."
    rows = await fetch_all(
        "INSERT INTO attention_digest"
        " (admin_id, day, status, event_count, attempts, last_error, created_at)"
        " VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT (admin_id, day) DO NOTHING RETURNING id",
        [admin_id, day, status.value, digest.entry_count, reason, now],
    )
    return int(rows[0]["id"]) if rows and digest.groups else None


async def open_digests(day: date, now: datetime, control_hub_url: str) -> list[int]:
    """Claim the digest of `day` for every admin who wants one and has no row for
    it yet: PENDING with what it will list, SKIPPED when it has nothing to say.
    Returns the ids of the PENDING rows this call inserted (another run's claim
    of the same admin and day inserts nothing)."""
    _, end = day_bounds(day)
    wanting = await NotificationPreference.filter(
        daily_digest=True,
        admin__removed_at__isnull=True,
        # Saved before the end of the day after: opting in brings the day just ended.
        updated_at__lt=end + timedelta(days=1),
    ).select_related("admin__partner")
    if not wanting:
        return []
    done = set(
        await AttentionDigest.filter(
            day=day, admin_id__in=[p.admin_id for p in wanting]
        ).values_list("admin_id", flat=True)
    )
    opened: list[int] = []
    for preference in sorted(wanting, key=lambda p: p.admin_id):
        admin = preference.admin
        if admin.id in done or not receives_attention_digest(admin):
            continue
        digest = await digest_of(admin, day, _topics_of(preference.topics), control_hub_url)
        claimed = await _claim(admin.id, day, digest, now)
        if claimed is not None:
            opened.append(claimed)
    return opened


def forget_before(today: date, retention_days: int) -> date:
    """The first day whose digest rows are kept: PARTNERHUB_ATTENTION_RETENTION_DAYS
    (the events they list are gone by then), never a day a tick still looks at."""
    return today - timedelta(days=max(retention_days, CATCH_UP_DAYS + 1))


async def forget_old_digests(before: date) -> int:
    """Delete the digest rows of days before `before`; returns how many."""
    return await AttentionDigest.filter(day__lt=before).delete()


async def waiting_digests(limit: int = 1000) -> list[int]:
    """Ids of the PENDING digests (their job may be lost), oldest first."""
    return await (
        AttentionDigest.filter(status=EmailDeliveryStatus.PENDING)
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )  # type: ignore[return-value]


def _as_claimed(row: AttentionDigest) -> Any:
    """The row as this run last read it: PENDING, its attempts, its try's start."""
    match = AttentionDigest.filter(
        id=row.id, status=EmailDeliveryStatus.PENDING, attempts=row.attempts
    )
    if row.sent_at is None:
        return match.filter(sent_at__isnull=True)
    return match.filter(sent_at=row.sent_at)


async def _finish(
    row: AttentionDigest,
    status: EmailDeliveryStatus,
    error: str | None,
    now: datetime,
    event_count: int | None = None,
) -> bool:
    """Record an outcome, unless another run moved the row on since this one read
    or claimed it (a try of its own, or a takeover after TRY_LEASE)."""
    changes: dict[str, Any] = {
        "status": status,
        "last_error": error,
        "sent_at": now if status == EmailDeliveryStatus.SENT else None,
    }
    if event_count is not None:
        changes["event_count"] = event_count
    return bool(await _as_claimed(row).update(**changes))


async def send_digest(digest_id: int, config: DigestConfig, now: datetime) -> Attempt:
    """One try of a PENDING digest; records its outcome on its row. A try in
    progress elsewhere (younger than TRY_LEASE) is left alone."""
    row = await AttentionDigest.get_or_none(id=digest_id)
    if row is None or row.status != EmailDeliveryStatus.PENDING:
        return Attempt(None)
    if row.sent_at is not None and now - row.sent_at < TRY_LEASE:
        return Attempt(None)
    if row.attempts >= MAX_ATTEMPTS:
        done = await _finish(row, EmailDeliveryStatus.FAILED, row.last_error, now)
        return Attempt("failed" if done else None)
    admin = await Admin.filter(id=row.admin_id).select_related("partner").first()  # type: ignore[attr-defined]
    preference = await NotificationPreference.get_or_none(admin_id=row.admin_id)
    skipped, digest = None, None
    if admin is None or not receives_attention_digest(admin):
        skipped = "Not sent: the admin was removed."
    elif preference is None or not preference.daily_digest:
        skipped = "Not sent: the admin turned the daily digest off."
    else:
        topics = _topics_of(preference.topics)
        digest = await digest_of(admin, row.day, topics, config.control_hub_url)
        if not digest.groups:
            skipped = "Nothing to say: no customer it sees entered an attention state."
    if skipped is not None or admin is None or digest is None:
        done = await _finish(row, EmailDeliveryStatus.SKIPPED, skipped, now, 0)
        return Attempt("skipped" if done else None)
    # The claim: only one run's UPDATE moves the attempts from what it read, and
    # `sent_at` says from when the try is in progress (until its outcome).
    claimed = await _as_claimed(row).update(attempts=row.attempts + 1, sent_at=now)
    if not claimed:
        return Attempt(None)
    row.attempts += 1
    row.sent_at = now
    message = compose_digest(
        digest, row.id, admin.email, admin.display_name, config.mail.sender, now
    )
    name = f"attention-digest-{row.day.isoformat()}-admin-{admin.id}.eml"
    try:
        path = await send_message(message, config.mail, name)
    except Refused as exc:
        error = str(exc)[:MAX_ERROR_LENGTH]
        await _finish(row, EmailDeliveryStatus.FAILED, error, now, digest.entry_count)
        log.warning("attention digest %s to %s refused: %s", row.day, admin.email, exc)
        return Attempt("failed")
    except (aiosmtplib.SMTPException, OSError) as exc:
        error = error_text(exc)
        if row.attempts >= MAX_ATTEMPTS:
            await _finish(row, EmailDeliveryStatus.FAILED, error, now, digest.entry_count)
            log.warning(
                "attention digest %s to %s failed after %d tries: %s",
                row.day,
                admin.email,
                row.attempts,
                error,
            )
            return Attempt("failed")
        await _finish(row, EmailDeliveryStatus.PENDING, error, now, digest.entry_count)
        retry_in = config.mail.retry_base_seconds * 2 ** (row.attempts - 1)
        log.info(
            "attention digest %s to %s not sent (try %d): %s; next try in %g s",
            row.day,
            admin.email,
            row.attempts,
            error,
            retry_in,
        )
        return Attempt("retry", retry_in)
    await _finish(row, EmailDeliveryStatus.SENT, None, now, digest.entry_count)
    where = f" (written to {path}: no PARTNERHUB_SMTP_HOST set)" if path else ""
    log.info(
        "attention digest %s sent to %s: %d customer(s)%s",
        row.day,
        admin.email,
        digest.customer_count,
        where,
    )
    return Attempt("sent")
