"""The daily attention digest by e-mail and the notification preferences that
ask for it: preferences read and set by every role (its own only), their bad
input; digests through a real SMTP server (aiosmtpd on 127.0.0.1) and a real
Valkey, for admins of every role and two partners, with external-admin grants:
each message lists exactly the customers a plain-Python recomputation of the
admin's scope and topics expects, grouped; opted-out and removed admins get
none; a day with nothing to say sends nothing and is recorded SKIPPED; two
ticks at once send once; an SMTP server that is down is tried again later and
nothing is sent twice; the catch-up window is bounded."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage

import httpx
import pytest

from app.clock import utcnow, utctoday
from app.config import Settings
from app.domain.attention import NewEvent, write_events
from app.domain.attention_digest import (
    CATCH_UP_DAYS,
    TRY_LEASE,
    DigestConfig,
    forget_before,
    open_digests,
    send_digest,
)
from app.domain.organization import launch_url
from app.domain.report_emails import MAX_ATTEMPTS
from app.models.admins import Admin, ExternalAdminGrant
from app.models.attention import AttentionDigest, NotificationPreference
from app.models.audit import AuditEvent
from app.models.customers import Customer
from app.models.enums import AdminRole, AttentionEventType, CustomerStatus, EmailDeliveryStatus
from app.models.organization import PartnerOrganization
from app.queue import JobQueue
from tests import factories
from tests.cli_process import free_port
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.graphql_client import data, gql
from tests.report_helpers import flush_queue, run_jobs
from tests.test_mutation_matrix import everything
from tests.test_report_emails import SmtpServer, smtp, with_smtp  # noqa: F401 (fixture)
from workers.attention_digest import attention_digest_tick

T = AttentionEventType
S = CustomerStatus

READ = "{ notificationPreferences { dailyDigest topics updatedAt } }"
UPDATE = """mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) {
    notificationPreferences { dailyDigest topics updatedAt }
    userErrors { field message code } } }"""

TITLES = {
    T.TRIAL_ENDING: "Trial ending soon",
    T.LOW_LICENSE_ASSIGNMENT: "Low license assignment",
    T.CALL_QUALITY_DECLINING: "Call quality declining",
}


def title(type: AttentionEventType, status: CustomerStatus | None) -> str:
    return f"Now {status.value}" if type is T.STATUS_GAINED and status else TITLES[type]


async def set_preferences(
    client: httpx.AsyncClient, token: str, daily_digest: bool, topics: list[str] | None = None
) -> dict:
    input: dict = {"dailyDigest": daily_digest}
    if topics is not None:
        input["topics"] = topics
    return (await data(client, token, UPDATE, {"input": input}))["updateNotificationPreferences"]


async def tick(redis_url: str, settings: Settings, now: datetime) -> int:
    queue = JobQueue(redis_url)
    try:
        return await attention_digest_tick({"settings": settings, "queue": queue}, now)
    finally:
        await queue.close()


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), UTC)


# ------------------------------------------------------------------ preferences


async def test_every_role_reads_and_sets_its_own_preferences_audited(
    db: Settings, client: httpx.AsyncClient
) -> None:
    northwind = await factories.partner("Northwind", "northwind.example")
    team = await factories.team(northwind)
    for member in team.values():
        answer = await data(client, member.token, READ)
        assert answer["notificationPreferences"] == {
            "dailyDigest": False,
            "topics": None,
            "updatedAt": None,
        }
    # Each role sets its own: a different choice each, so one cannot pass for another.
    choices: dict[AdminRole, tuple[bool, list[str] | None]] = {
        FULL: (True, None),
        ADMIN: (True, ["TRIAL_ENDING"]),
        READ_ONLY: (False, ["CALL_QUALITY_DECLINING", "STATUS_GAINED"]),
        SALES_FULL: (True, ["LOW_LICENSE_ASSIGNMENT", "TRIAL_ENDING"]),
        SALES: (False, None),
    }
    # Stored (and read back) in the order of the AttentionEventType enum.
    order = ["STATUS_GAINED", "TRIAL_ENDING", "LOW_LICENSE_ASSIGNMENT", "CALL_QUALITY_DECLINING"]
    before = utcnow()
    for role, (daily, topics) in choices.items():
        saved = await set_preferences(client, team[role].token, daily, topics)
        assert saved["userErrors"] == []
        expected_topics = None if topics is None else sorted(topics, key=order.index)
        prefs = saved["notificationPreferences"]
        assert (prefs["dailyDigest"], prefs["topics"]) == (daily, expected_topics)
        assert datetime.fromisoformat(prefs["updatedAt"]) >= before - timedelta(seconds=1)
    for role, (daily, topics) in choices.items():
        read = (await data(client, team[role].token, READ))["notificationPreferences"]
        expected_topics = None if topics is None else sorted(topics, key=order.index)
        assert (read["dailyDigest"], read["topics"]) == (daily, expected_topics), role
    rows = {p.admin_id: p for p in await NotificationPreference.all()}
    assert set(rows) == {m.admin.id for m in team.values()}
    # One audit event each, by the admin about itself.
    events = await AuditEvent.filter(action="notification_preferences.update").order_by("id")
    assert [(e.actor_id, e.target_id) for e in events] == [
        (team[r].admin.id, f"Admin:{team[r].admin.id}") for r in choices
    ]
    assert events[1].summary == "Daily attention digest on (TRIAL_ENDING)"
    assert events[4].summary == "Daily attention digest off (every topic)"

    # Saving the same again changes nothing and writes no event; a change does.
    again = await set_preferences(client, team[ADMIN].token, True, ["TRIAL_ENDING"])
    assert (
        again["notificationPreferences"]["updatedAt"]
        == ((await data(client, team[ADMIN].token, READ))["notificationPreferences"]["updatedAt"])
    )
    assert await AuditEvent.filter(action="notification_preferences.update").count() == 5
    changed = await set_preferences(client, team[ADMIN].token, True, None)
    assert changed["notificationPreferences"]["topics"] is None
    assert await AuditEvent.filter(action="notification_preferences.update").count() == 6
    # Nobody else's changed, nor another partner's admin's (still the defaults).
    for role in (FULL, READ_ONLY, SALES_FULL, SALES):
        read = (await data(client, team[role].token, READ))["notificationPreferences"]
        assert read["dailyDigest"] == choices[role][0]
    contoso = await factories.admin(await factories.partner("Contoso", "contoso.example"), FULL)
    read = (await data(client, contoso.token, READ))["notificationPreferences"]
    assert read == {"dailyDigest": False, "topics": None, "updatedAt": None}


async def test_bad_input_is_refused_and_changes_nothing(
    db: Settings, client: httpx.AsyncClient
) -> None:
    northwind = await factories.partner("Northwind", "northwind.example")
    full = await factories.admin(northwind, FULL)
    await set_preferences(client, full.token, True, ["TRIAL_ENDING"])
    before = await everything()
    path = ["input", "topics"]
    cases = [
        ([], [(path, "INVALID")]),
        (["TRIAL_ENDING", "TRIAL_ENDING"], [([*path, "1"], "INVALID")]),
        (["STATUS_LOST"], [([*path, "0"], "INVALID")]),
        (["STATUS_GAINED", "STATUS_LOST", "STATUS_GAINED"],
         [([*path, "1"], "INVALID"), ([*path, "2"], "INVALID")]),
    ]  # fmt: skip
    for topics, expected in cases:
        answer = await set_preferences(client, full.token, False, topics)
        assert answer["notificationPreferences"] is None, topics
        assert [(e["field"], e["code"]) for e in answer["userErrors"]] == expected, answer
    [empty] = (await set_preferences(client, full.token, False, []))["userErrors"]
    assert "at least one topic" in empty["message"]
    # An unknown topic, a missing dailyDigest, a null one: GraphQL errors.
    for input in (
        {"dailyDigest": True, "topics": ["NO_SUCH_TOPIC"]},
        {"topics": ["TRIAL_ENDING"]},
        {"dailyDigest": None},
    ):
        response = await gql(client, full.token, UPDATE, {"input": input})
        body = response.json()
        assert body.get("data") is None and body["errors"], input
    unknown = {"input": {"dailyDigest": True, "topics": ["NO_SUCH_TOPIC"]}}
    assert "NO_SUCH_TOPIC" in str((await gql(client, full.token, UPDATE, unknown)).json())
    assert await everything() == before

    # Before the organization's setup is completed, like every other mutation.
    pending = await factories.partner("Pending", "pending.example", setup_completed=False)
    newcomer = await factories.admin(pending, READ_ONLY)
    before = await everything()
    refused = await set_preferences(client, newcomer.token, True)
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    assert "setup is pending" in refused["userErrors"][0]["message"]
    assert await everything() == before


# ------------------------------------------------------------------ the world of digests


@dataclass
class DigestWorld:
    northwind: PartnerOrganization
    contoso: PartnerOrganization
    team: dict[AdminRole, factories.AdminWithToken]
    contoso_team: dict[AdminRole, factories.AdminWithToken]
    customers: dict[str, Customer]
    # Who sees which customer, by admin id (written out from the role table).
    scope: dict[int, set[str]]


async def build_world() -> DigestWorld:
    """Northwind (a team of every role) and Contoso (a team): Northwind's ADMIN and
    SALES_ADMIN are assigned `assigned`; its SALES_ADMIN created `created`; nobody
    is assigned `unassigned`; Contoso made Northwind's ADMIN an external admin of
    `granted`; `contoso` is Contoso's alone."""
    northwind = await factories.partner("Northwind", "northwind.example")
    contoso = await factories.partner("Contoso", "contoso.example")
    team = await factories.team(northwind)
    contoso_team = await factories.team(contoso)
    customers = {
        "assigned": await factories.customer(northwind, "Alpine Assigned"),
        "created": await factories.customer(
            northwind, "Birch Created", created_by=team[SALES].admin
        ),
        "unassigned": await factories.customer(northwind, "Cedar Unassigned"),
        "granted": await factories.customer(contoso, "Delta Granted"),
        "contoso": await factories.customer(contoso, "Elm Contoso"),
    }
    for role in (ADMIN, SALES):
        await factories.assign(team[role].admin, customers["assigned"])
    await ExternalAdminGrant.create(
        customer=customers["granted"],
        admin=team[ADMIN].admin,
        granted_by=contoso_team[FULL].admin,
        granted_at=utcnow(),
    )
    every_northwind = {"assigned", "created", "unassigned"}
    every_contoso = {"granted", "contoso"}
    scope = {
        team[FULL].admin.id: every_northwind,
        team[ADMIN].admin.id: {"assigned", "granted"},
        team[READ_ONLY].admin.id: every_northwind,
        team[SALES_FULL].admin.id: every_northwind,
        team[SALES].admin.id: {"assigned", "created"},
        **{member.admin.id: every_contoso for member in contoso_team.values()},
    }
    return DigestWorld(northwind, contoso, team, contoso_team, customers, scope)


@dataclass(frozen=True)
class Ev:
    customer: str
    type: AttentionEventType
    at: datetime
    status: CustomerStatus | None = None
    detail: dict | None = None


def day_events(day: date, edges: bool = False) -> list[Ev]:
    """Events of `day`; with `edges`, also the second before it (the day before's)
    and its end (the next day's start)."""
    events = [
        Ev("assigned", T.STATUS_GAINED, at(day, 1), S.EXPIRING_SOON),
        Ev("assigned", T.TRIAL_ENDING, at(day, 2), detail={
            "trialId": 7, "endDate": (day + timedelta(days=9)).isoformat(), "daysLeft": 9}),
        # Gained twice in the day (lost in between): listed once in its group.
        Ev("assigned", T.STATUS_LOST, at(day, 3), S.EXPIRING_SOON),
        Ev("assigned", T.STATUS_GAINED, at(day, 4), S.EXPIRING_SOON),
        Ev("created", T.LOW_LICENSE_ASSIGNMENT, at(day, 5), detail={"family": "CALLING"}),
        Ev("unassigned", T.STATUS_GAINED, at(day, 6), S.LICENSE_OVERAGE),
        Ev("unassigned", T.CALL_QUALITY_DECLINING, at(day, 23, 59, 59), detail={
            "week": "2030-01-07", "poorShare": 12.5, "previousPoorShare": 4.0, "risePoints": 8.5}),
        Ev("unassigned", T.STATUS_LOST, at(day, 7), S.ACTIVE),  # losses are never listed
        Ev("granted", T.STATUS_GAINED, at(day, 8), S.SUSPENDED),
        Ev("contoso", T.STATUS_GAINED, at(day, 9), S.EXPIRED),
    ]  # fmt: skip
    if edges:
        events += [
            Ev("created", T.STATUS_GAINED, at(day, 0) - timedelta(seconds=1), S.NO_RECENT_ACTIVITY),
            Ev("contoso", T.TRIAL_ENDING, at(day + timedelta(days=1), 0), detail={}),
        ]
    return events


async def write(world: DigestWorld, events: list[Ev]) -> None:
    await write_events(
        [
            NewEvent(
                partner_id=world.customers[e.customer].partner_id,  # type: ignore[attr-defined]
                customer_id=world.customers[e.customer].id,
                type=e.type,
                occurred_at=e.at,
                status=e.status,
                detail=e.detail or {},
            )
            for e in events
        ]
    )


DIGEST_TYPES = (T.STATUS_GAINED, T.TRIAL_ENDING, T.LOW_LICENSE_ASSIGNMENT, T.CALL_QUALITY_DECLINING)


def expected_digest(
    world: DigestWorld, admin_id: int, events: list[Ev], day: date, topics: set | None
) -> dict[str, set[str]]:
    """Group title -> customer names, recomputed from the events in plain Python."""
    start = at(day, 0)
    groups: dict[str, set[str]] = {}
    for e in events:
        in_day = start <= e.at < start + timedelta(days=1)
        wanted = e.type in DIGEST_TYPES and (topics is None or e.type in topics)
        if in_day and wanted and e.customer in world.scope[admin_id]:
            groups.setdefault(title(e.type, e.status), set()).add(world.customers[e.customer].name)
    return groups


def parse(message: EmailMessage) -> dict[str, list[str]]:
    """Group title -> customer names, read from the plain-text part."""
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        heading = re.fullmatch(r"(\S.*) \((\d+)\)", line)
        item = re.fullmatch(r"  - (.+?)( \(.*\))?", line)
        if heading:
            current = groups.setdefault(heading[1], [])
        elif item and current is not None:
            current.append(item[1])
    return groups


# ------------------------------------------------------------------ digests


async def test_each_admin_gets_exactly_its_customers_grouped_once(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    await flush_queue(redis_url)
    settings = with_smtp(http_settings, smtp.port)
    w = await build_world()
    day = utctoday() + timedelta(days=10)
    events = day_events(day, edges=True)
    await write(w, events)
    topics: dict[int, set | None] = {}
    # Every Northwind role opts in (SALES_FULL_ADMIN for two topics only); so do
    # Contoso's FULL_ADMIN and its READ_ONLY_ADMIN (low assignment only: nothing
    # for it that day). Contoso's ADMIN opts in and out again; its SALES_FULL_ADMIN
    # never opts in; its SALES_ADMIN opts in and is removed.
    for role, member in w.team.items():
        chosen = ["TRIAL_ENDING", "CALL_QUALITY_DECLINING"] if role is SALES_FULL else None
        await set_preferences(client, member.token, True, chosen)
        topics[member.admin.id] = None if chosen is None else {T(t) for t in chosen}
    await set_preferences(client, w.contoso_team[FULL].token, True)
    topics[w.contoso_team[FULL].admin.id] = None
    await set_preferences(client, w.contoso_team[READ_ONLY].token, True, ["LOW_LICENSE_ASSIGNMENT"])
    await set_preferences(client, w.contoso_team[ADMIN].token, True)
    await set_preferences(client, w.contoso_team[ADMIN].token, False)
    await set_preferences(client, w.contoso_team[SALES].token, True)
    await Admin.filter(id=w.contoso_team[SALES].admin.id).update(removed_at=utcnow())

    # The tick of the next morning; then the jobs it queued.
    # The day before is looked at too (its last second had an event): the
    # FULL_ADMIN, READ_ONLY_ADMIN and SALES_ADMIN see that customer.
    sent_at = at(day + timedelta(days=1), 0, 7, 20)
    assert await tick(redis_url, settings, sent_at) == 6 + 3
    await run_jobs(redis_url, settings)

    receivers = [*w.team.values(), w.contoso_team[FULL]]
    of_day = [r for r in smtp.received if r.message["X-PartnerHub-Digest"] == day.isoformat()]
    by_address = {r.envelope_to[0]: r.message for r in of_day}
    assert sorted(by_address) == sorted(m.admin.email for m in receivers)
    assert len(of_day) == len(receivers)
    day_before = (day - timedelta(days=1)).isoformat()
    before = [r for r in smtp.received if r.message["X-PartnerHub-Digest"] == day_before]
    assert sorted(r.envelope_to[0] for r in before) == sorted(
        w.team[r].admin.email for r in (FULL, READ_ONLY, SALES)
    )
    for received in before:
        assert parse(received.message) == {"Now NO_RECENT_ACTIVITY": ["Birch Created"]}
        assert received.message["Subject"] == (
            f"Partner Hub: 1 customer entered an attention state on {day_before}"
        )
    assert len(smtp.received) == len(receivers) + 3
    for member in receivers:
        message = by_address[member.admin.email]
        expected = expected_digest(w, member.admin.id, events, day, topics[member.admin.id])
        got = parse(message)
        assert {k: set(v) for k, v in got.items()} == expected, member.admin.role
        # Each customer once per group, in name order.
        assert all(v == sorted(set(v)) for v in got.values()), got
        count = len(set().union(*expected.values()))
        noun = "customer" if count == 1 else "customers"
        assert message["Subject"] == (
            f"Partner Hub: {count} {noun} entered an attention state on {day.isoformat()}"
        )
        assert message["From"] == "Partner Hub <reports@partnerhub.example>"
        assert message["To"] == member.admin.email
        # Each line's link is the customer's Control Hub launch link, in both parts.
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for names in expected.values():
            for name in names:
                customer = next(c for c in w.customers.values() if c.name == name)
                link = launch_url(settings.control_hub_url, customer.org_id)
                assert link in text and f'href="{link}"' in html.replace("&amp;", "&")
                assert f">{name}</a>" in html
    # What the lines say, on the ADMIN's digest (its granted customer marked as such).
    admin_text = by_address[w.team[ADMIN].admin.email].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "  - Delta Granted (external admin)" in admin_text
    assert (
        f"  - Alpine Assigned (trial ends {(day + timedelta(days=9)).isoformat()}, 9 days left)"
        in admin_text
    )
    full_text = by_address[w.team[FULL].admin.email].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "  - Birch Created (CALLING licenses)" in full_text
    assert (
        "  - Cedar Unassigned (poor-quality calls 12.5% in the week of 2030-01-07 (was 4%))"
        in full_text
    )
    # Groups: statuses in their order, then the types.
    assert list(parse(by_address[w.team[FULL].admin.email])) == [
        "Now EXPIRING_SOON", "Now LICENSE_OVERAGE", "Trial ending soon",
        "Low license assignment", "Call quality declining",
    ]  # fmt: skip

    # One row per admin who wanted a digest: SENT, SKIPPED (nothing to say).
    rows = {d.admin_id: d for d in await AttentionDigest.filter(day=day)}
    assert {a: r.status for a, r in rows.items()} == {
        **{m.admin.id: EmailDeliveryStatus.SENT for m in receivers},
        w.contoso_team[READ_ONLY].admin.id: EmailDeliveryStatus.SKIPPED,
    }
    assert all(
        r.day == day and r.attempts == (1 if r.status == "SENT" else 0) for r in rows.values()
    )
    full_row = rows[w.team[FULL].admin.id]
    assert full_row.event_count == 5 and full_row.sent_at is not None

    # Later ticks of the same day and the next ones send nothing more.
    for later in (sent_at + timedelta(hours=1), sent_at + timedelta(hours=23)):
        await tick(redis_url, settings, later)
        await run_jobs(redis_url, settings)
    assert len(smtp.received) == len(receivers) + 3
    assert await AttentionDigest.filter(day=day).count() == len(rows)


async def test_a_day_with_nothing_to_say_sends_nothing(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    await flush_queue(redis_url)
    settings = with_smtp(http_settings, smtp.port)
    w = await build_world()
    day = utctoday() + timedelta(days=10)
    # Events of other days only, and a loss in the day (never listed).
    await write(w, [
        Ev("assigned", T.STATUS_GAINED, at(day, 0) - timedelta(days=1, seconds=1),
           S.EXPIRING_SOON),
        Ev("assigned", T.STATUS_LOST, at(day, 12), S.EXPIRING_SOON),
        Ev("assigned", T.TRIAL_ENDING, at(day + timedelta(days=1), 0)),
    ])  # fmt: skip
    for member in w.team.values():
        await set_preferences(client, member.token, True)
    now = at(day + timedelta(days=1), 0, 7)
    assert await tick(redis_url, settings, now) == 0
    await run_jobs(redis_url, settings)
    assert smtp.received == [] and smtp.tries == 0
    # Both days of the window looked at, each recorded SKIPPED for each admin.
    rows = await AttentionDigest.all()
    assert sorted((r.day, r.admin_id) for r in rows) == sorted(
        (d, m.admin.id) for d in (day - timedelta(days=1), day) for m in w.team.values()
    )
    assert {r.status for r in rows} == {EmailDeliveryStatus.SKIPPED}
    assert all(r.event_count == 0 and r.attempts == 0 and r.last_error for r in rows)
    # Not evaluated again: the next tick adds and sends nothing.
    assert await tick(redis_url, settings, now + timedelta(hours=1)) == 0
    assert await AttentionDigest.all().count() == 2 * len(w.team)
    assert smtp.received == []


async def test_two_ticks_at_once_send_each_digest_once(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    await flush_queue(redis_url)
    settings = with_smtp(http_settings, smtp.port)
    w = await build_world()
    day = utctoday() + timedelta(days=10)
    await write(w, day_events(day))
    for member in w.team.values():
        await set_preferences(client, member.token, True)
    now = at(day + timedelta(days=1), 0, 7)
    counts = await asyncio.gather(tick(redis_url, settings, now), tick(redis_url, settings, now))
    assert sum(counts) >= len(w.team)
    assert await AttentionDigest.filter(day=day).count() == len(w.team)
    # Two workers running the jobs, and each job queued again under other ids.
    queue = JobQueue(redis_url)
    try:
        for digest in await AttentionDigest.all():
            await queue.enqueue("send_attention_digest", digest.id, job_id=f"again:{digest.id}")
    finally:
        await queue.close()
    await asyncio.gather(run_jobs(redis_url, settings), run_jobs(redis_url, settings))
    assert sorted(r.envelope_to[0] for r in smtp.received) == sorted(
        m.admin.email for m in w.team.values()
    )
    assert {d.attempts for d in await AttentionDigest.filter(day=day)} == {1}

    # Two tries of one PENDING digest at once: one claims it, the other does nothing.
    await AttentionDigest.all().delete()
    assert len(await open_digests(day, now, settings.control_hub_url)) == len(w.team)
    opened = (await AttentionDigest.get(admin_id=w.team[FULL].admin.id)).id
    config = DigestConfig.of(settings)
    smtp.received.clear()
    outcomes = await asyncio.gather(
        send_digest(opened, config, now), send_digest(opened, config, now)
    )
    assert sorted(str(o.outcome) for o in outcomes) == ["None", "sent"]
    assert [r.envelope_to[0] for r in smtp.received] == [w.team[FULL].admin.email]

    # A try in progress (its worker died mid-try, say) is left alone for
    # TRY_LEASE; then another run takes it over, once.
    smtp.received.clear()
    opened = (await AttentionDigest.get(admin_id=w.team[ADMIN].admin.id, day=day)).id
    await AttentionDigest.filter(id=opened).update(attempts=1, sent_at=now)
    for moment in (now, now + TRY_LEASE - timedelta(seconds=1)):
        assert (await send_digest(opened, config, moment)).outcome is None
    assert smtp.received == []
    later = now + TRY_LEASE
    outcomes = await asyncio.gather(
        send_digest(opened, config, later), send_digest(opened, config, later)
    )
    assert sorted(str(o.outcome) for o in outcomes) == ["None", "sent"]
    assert [r.envelope_to[0] for r in smtp.received] == [w.team[ADMIN].admin.email]
    row = await AttentionDigest.get(id=opened)
    assert (row.status, row.attempts, row.sent_at) == (EmailDeliveryStatus.SENT, 2, later)


async def test_an_smtp_server_that_is_down_is_tried_again_later_and_nothing_twice(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    await flush_queue(redis_url)
    w = await build_world()
    day = utctoday() + timedelta(days=10)
    await write(w, day_events(day))
    full = w.team[FULL]
    await set_preferences(client, full.token, True)
    now = at(day + timedelta(days=1), 0, 7)
    down = with_smtp(http_settings, free_port())  # nothing listens there
    config = DigestConfig.of(down)

    # The first try fails (no connection): PENDING, with the error, a retry due.
    [opened] = await open_digests(day, now, down.control_hub_url)
    first = await send_digest(opened, config, now)
    assert first.outcome == "retry" and first.retry_in == 0.05
    row = await AttentionDigest.get(id=opened)
    assert row.status == EmailDeliveryStatus.PENDING and row.attempts == 1
    assert row.last_error and "connect" in row.last_error.lower()

    # Later the server is back: the next tick queues the waiting digest, sent once.
    up = with_smtp(http_settings, smtp.port)
    assert await tick(redis_url, up, now + timedelta(hours=1)) == 1
    await run_jobs(redis_url, up)
    assert [r.envelope_to[0] for r in smtp.received] == [full.admin.email]
    row = await AttentionDigest.get(id=opened)
    assert (row.status, row.attempts, row.last_error) == (EmailDeliveryStatus.SENT, 2, None)
    assert await tick(redis_url, up, now + timedelta(hours=2)) == 0
    await run_jobs(redis_url, up)
    assert len(smtp.received) == 1

    # A server that answers 451 then 250: the job tries again after its delay.
    smtp.answers, smtp.tries = ["451 4.3.0 Try again later", "250 OK"], 0
    smtp.received.clear()
    await AttentionDigest.all().delete()
    await flush_queue(redis_url)
    assert await tick(redis_url, up, now) == 1
    await run_jobs(redis_url, up)
    assert smtp.tries == 2 and len(smtp.received) == 1
    assert (await AttentionDigest.get(day=day)).attempts == 2

    # Down for good: FAILED after MAX_ATTEMPTS tries, with doubling delays.
    await AttentionDigest.all().delete()
    [opened] = await open_digests(day, now, down.control_hub_url)
    tries = [await send_digest(opened, config, now) for _ in range(MAX_ATTEMPTS + 1)]
    assert [(t.outcome, t.retry_in) for t in tries] == [
        ("retry", 0.05), ("retry", 0.1), ("retry", 0.2), ("retry", 0.4), ("failed", None),
        (None, None),
    ]  # fmt: skip
    row = await AttentionDigest.get(id=opened)
    assert row.status == EmailDeliveryStatus.FAILED and row.attempts == MAX_ATTEMPTS
    # A 5xx answer is final at once.
    smtp.answers, smtp.tries = ["554 5.7.1 Rejected by policy"], 0
    await AttentionDigest.all().delete()
    [opened] = await open_digests(day, now, up.control_hub_url)
    refused = await send_digest(opened, DigestConfig.of(up), now)
    assert refused.outcome == "failed"
    row = await AttentionDigest.get(id=opened)
    assert (row.status, row.last_error) == (
        EmailDeliveryStatus.FAILED,
        "SMTP 554 5.7.1 Rejected by policy",
    )


async def test_an_admin_who_opts_out_or_is_removed_before_the_send_is_skipped(
    db: Settings,
    client: httpx.AsyncClient,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    settings = with_smtp(http_settings, smtp.port)
    w = await build_world()
    day = utctoday() + timedelta(days=10)
    await write(w, day_events(day))
    await set_preferences(client, w.team[FULL].token, True)
    await set_preferences(client, w.team[ADMIN].token, True)
    now = at(day + timedelta(days=1), 0, 7)
    opened = await open_digests(day, now, settings.control_hub_url)
    assert len(opened) == 2
    await set_preferences(client, w.team[FULL].token, False)
    await Admin.filter(id=w.team[ADMIN].admin.id).update(removed_at=utcnow())
    config = DigestConfig.of(settings)
    assert [(await send_digest(i, config, now)).outcome for i in opened] == ["skipped"] * 2
    assert smtp.received == []
    assert {d.status for d in await AttentionDigest.all()} == {EmailDeliveryStatus.SKIPPED}


async def test_without_smtp_the_digest_is_written_to_the_outbox(
    db: Settings, client: httpx.AsyncClient, http_settings: Settings
) -> None:
    assert http_settings.smtp_host is None  # the embedded default
    w = await build_world()
    day = utctoday() + timedelta(days=10)
    await write(w, day_events(day))
    await set_preferences(client, w.team[SALES].token, True)
    now = at(day + timedelta(days=1), 0, 7)
    [opened] = await open_digests(day, now, http_settings.control_hub_url)
    assert (await send_digest(opened, DigestConfig.of(http_settings), now)).outcome == "sent"
    [path] = (http_settings.var_dir / "mail").glob("attention-digest-*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert {k: set(v) for k, v in parse(message).items()} == expected_digest(
        w, w.team[SALES].admin.id, day_events(day), day, None
    )


async def test_the_catch_up_is_bounded_and_opting_in_brings_the_day_just_ended(
    db: Settings,
    client: httpx.AsyncClient,
    redis_url: str,
    http_settings: Settings,
    smtp: SmtpServer,
) -> None:
    await flush_queue(redis_url)
    settings = with_smtp(http_settings, smtp.port)
    w = await build_world()
    full = w.team[FULL]
    first = utctoday() + timedelta(days=10)
    days = [first + timedelta(days=n) for n in range(4)]
    await write(w, [Ev("assigned", T.STATUS_GAINED, at(d, 12), S.EXPIRING_SOON) for d in days])
    await set_preferences(client, full.token, True)
    # No worker up for days; the first tick after the fourth day sends only the
    # last CATCH_UP_DAYS days.
    now = at(days[-1] + timedelta(days=1), 3)
    # Rows of days past the retention (90 days) go; the last day within it stays
    # (and never a day the tick still looks at, whatever the setting).
    retention = settings.attention_retention_days
    assert forget_before(now.date(), 1) == now.date() - timedelta(days=CATCH_UP_DAYS + 1)
    for age in (retention, retention + 1):
        await AttentionDigest.create(
            admin_id=full.admin.id,
            day=now.date() - timedelta(days=age),
            status=EmailDeliveryStatus.SENT,
            created_at=now,
        )
    assert await tick(redis_url, settings, now) == CATCH_UP_DAYS
    await run_jobs(redis_url, settings)
    sent = sorted(r.message["X-PartnerHub-Digest"] for r in smtp.received)
    assert sent == [d.isoformat() for d in days[-CATCH_UP_DAYS:]]
    assert sorted(d.day for d in await AttentionDigest.all()) == [
        now.date() - timedelta(days=retention),
        *days[-CATCH_UP_DAYS:],
    ]

    # An admin who opts in now gets the day just ended, not the one before it.
    await AttentionDigest.all().delete()
    smtp.received.clear()
    today = utctoday()
    await write(w, [
        Ev("assigned", T.STATUS_GAINED, at(today - timedelta(days=n), 12), S.LICENSE_OVERAGE)
        for n in (1, 2)
    ])  # fmt: skip
    await set_preferences(client, w.team[READ_ONLY].token, True)
    assert await tick(redis_url, settings, utcnow()) == 2
    await run_jobs(redis_url, settings)
    assert sorted(r.envelope_to[0] for r in smtp.received) == sorted(
        w.team[r].admin.email for r in (FULL, READ_ONLY)
    )
    assert {r.message["X-PartnerHub-Digest"] for r in smtp.received} == {
        (today - timedelta(days=1)).isoformat()
    }
    assert {d.day for d in await AttentionDigest.all()} == {today - timedelta(days=1)}


@pytest.mark.parametrize("role", list(AdminRole))
async def test_the_digest_lists_what_the_role_sees_through_the_api(
    db: Settings, client: httpx.AsyncClient, http_settings: Settings, role: AdminRole
) -> None:
    """The digest's scope is the API's: the customers each role reads in
    `customers` (and those of its grants) are those its digest may list."""
    w = await build_world()
    day = utctoday() + timedelta(days=10)
    names = {c: w.customers[c].name for c in w.customers}
    await write(w, [Ev(c, T.STATUS_GAINED, at(day, 10), S.SUSPENDED) for c in names])
    member = w.team[role]
    await set_preferences(client, member.token, True)
    listed = await data(client, member.token, "{ customers(first: 50) { nodes { name } } }")
    seen = {n["name"] for n in listed["customers"]["nodes"]}
    [opened] = await open_digests(
        day, at(day + timedelta(days=1), 1), http_settings.control_hub_url
    )
    await send_digest(opened, DigestConfig.of(http_settings), at(day + timedelta(days=1), 1))
    [path] = (http_settings.var_dir / "mail").glob("attention-digest-*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert (
        set(parse(message)["Now SUSPENDED"]) == seen == {names[c] for c in w.scope[member.admin.id]}
    )


def test_the_tick_runs_hourly_on_standing_workers_only(redis_url: str) -> None:
    """Hourly at minute 7 (so the first tick of a day, 00:07:20 UTC, sends the day
    just ended), once per occurrence whatever the number of workers; a burst
    worker (tests, `partnerhub worker --burst`) runs none of the clock's ticks."""
    from workers.settings import build_worker

    standing = build_worker(redis_url, in_process=True)
    burst = build_worker(redis_url, in_process=True, burst=True)
    [job] = [j for j in standing.cron_jobs if j.name.endswith(":attention_digest_tick")]
    assert (job.hour, job.minute, job.second, job.unique) == (None, 7, 20, True)
    assert burst.cron_jobs == [] and "send_attention_digest" in burst.functions
