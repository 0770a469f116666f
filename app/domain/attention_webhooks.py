"""Partner webhooks of the attention feed: a partner's FULL_ADMIN subscribes a
URL to topics (AttentionEventType values); each event of those topics is POSTed
there as JSON by the workers, from the outbox rows app/domain/attention.py
`write_events` writes (one PENDING AttentionDelivery per event and enabled
subscription of its topic).

Sending (`send_due_deliveries`, the workers' tick every few seconds):
- at least once: a delivery is PENDING until a 2xx answer, tried again with
  doubling delays (RETRY_BASE_SECONDS, then twice that, ...) up to the
  setting's number of attempts, then FAILED;
- in order per (subscription, customer): only the oldest PENDING delivery of a
  subscription and customer is tried; the later ones wait for it to end
  (DELIVERED or FAILED);
- once at a time: a worker claims a delivery with one compare-and-set UPDATE
  (its attempt count and due time), which moves its next try a lease ahead;
  of several workers (or ticks) only one UPDATE matches, and a worker that
  dies mid-try leaves it to be tried again once the lease has passed;
- signed like report webhooks (app/domain/webhooks.py): X-PartnerHub-Signature
  `sha256=<hex HMAC-SHA256 of "<X-PartnerHub-Timestamp>.<body>">` keyed with the
  subscription's signing secret, plus `Idempotency-Key: <event id>` and
  `X-PartnerHub-Topic`;
- to the same targets as report webhooks (app/domain/webhook_targets.py), the URL
  checked again, and resolved again, at every try;
- a subscription whose deliveries FAIL the setting's number of times in a row
  (a DELIVERED one resets the count) is disabled, with an audit event; its
  PENDING deliveries are FAILED, and it gets no new ones until re-enabled.

The payload is what leaves the service for a partner's systems: its ids are the
API's global ids (`payload`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.db import as_datetime, execute, fetch_all
from app.domain import audit
from app.domain.access import (
    CREATE_WEBHOOK_SUBSCRIPTION,
    DELETE_WEBHOOK_SUBSCRIPTION,
    UPDATE_WEBHOOK_SUBSCRIPTION,
    Viewer,
    require_attention_webhook_reader,
    visible_attention_webhooks,
)
from app.domain.audit import target_ref
from app.domain.errors import UserErrorCode, reject
from app.domain.ids import encode_global_id
from app.domain.mutations import Audited, Unaudited, audit_target, run_prepared_mutation
from app.domain.pagination import Page, keyset_page
from app.domain.report_schedules import MAX_WEBHOOK_URL_LENGTH, check_webhook_url
from app.domain.webhook_targets import SEND_TIMEOUT_SECONDS, TargetRefused, check_target, send
from app.domain.webhooks import signature
from app.models.attention import AttentionDelivery, AttentionWebhook
from app.models.enums import AttentionDeliveryStatus, AttentionEventType
from app.models.organization import PartnerOrganization

# The first retry of a failed try waits this long; each next one twice as long.
RETRY_BASE_SECONDS = 10.0
# A claimed delivery is the claiming worker's for this long (a try takes at most
# the resolver's and the POST's time limits): past it, another worker may try it.
LEASE_SECONDS = 120.0
# Deliveries one tick claims at most, and POSTs it has in flight at once.
CLAIM_BATCH = 200
CONCURRENT_SENDS = 10
# Rounds of one run: each tries the next delivery of every line whose last one ended.
MAX_ROUNDS = 20

PENDING = AttentionDeliveryStatus.PENDING
DELIVERED = AttentionDeliveryStatus.DELIVERED
FAILED = AttentionDeliveryStatus.FAILED

# detail keys that hold the plain key of an object: the payload gives its global id.
DETAIL_IDS = {"trialId": "Trial", "customerId": "Customer"}


# ------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class WebhookSubscriptionValue:
    """A webhook subscription as the API shows it."""

    id: int
    url: str
    topics: tuple[AttentionEventType, ...]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    created_by_id: int | None

    @classmethod
    def of(cls, hook: AttentionWebhook) -> WebhookSubscriptionValue:
        return cls(
            id=hook.id,
            url=hook.url,
            topics=_topics_of(hook.topics),
            enabled=hook.enabled,
            disabled_at=hook.disabled_at,
            disabled_reason=hook.disabled_reason,
            consecutive_failures=hook.consecutive_failures,
            created_at=hook.created_at,
            updated_at=hook.updated_at,
            created_by_id=hook.created_by_id,  # type: ignore[attr-defined]
        )


@dataclass(frozen=True, slots=True)
class WebhookDeliveryValue:
    """One event to one subscription, with its tries."""

    id: int
    webhook_id: int
    event_id: int
    customer_id: int
    status: AttentionDeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, delivery: AttentionDelivery) -> WebhookDeliveryValue:
        status = AttentionDeliveryStatus(delivery.status)
        return cls(
            id=delivery.id,
            webhook_id=delivery.webhook_id,  # type: ignore[attr-defined]
            event_id=delivery.event_id,  # type: ignore[attr-defined]
            customer_id=delivery.customer_id,
            status=status,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at if status is PENDING else None,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


def _topics_of(stored: Any) -> tuple[AttentionEventType, ...]:
    """The stored topics in the enum's order (unknown values, if any, left out)."""
    if isinstance(stored, str | bytes):
        stored = orjson.loads(stored)
    names = set(stored or ())
    return tuple(t for t in AttentionEventType if t.value in names)


def subscription_secret(key: str, subscription_id: int) -> str:
    """The signing secret of one webhook subscription, derived from the service key
    (its own label: no report schedule's secret is ever one of these)."""
    digest = hmac.new(key.encode(), f"attention-webhook:{subscription_id}".encode(), hashlib.sha256)
    return "whsec_" + digest.hexdigest()


# ------------------------------------------------------------------ validation


async def _checked_url(url: str | None, allowed_hosts: frozenset[str]) -> str:
    """A URL partner webhooks may go to: the target rules of report webhooks."""
    field = ("input", "url")
    if url is None or not url.strip():
        raise reject(field, "The webhook URL is required.", UserErrorCode.INVALID)
    checked = await check_webhook_url(url, field, allowed_hosts)
    assert checked is not None and len(checked) <= MAX_WEBHOOK_URL_LENGTH
    return checked


def _checked_topics(topics: Sequence[AttentionEventType]) -> list[str]:
    """The topics without repeats, in the enum's order; at least one."""
    if not topics:
        raise reject(
            ("input", "topics"),
            "Choose at least one topic (" + ", ".join(t.value for t in AttentionEventType) + ").",
            UserErrorCode.INVALID,
        )
    chosen = {AttentionEventType(t) for t in topics}
    return [t.value for t in AttentionEventType if t in chosen]


async def _own_subscription(viewer: Viewer, subscription_id: int | None) -> AttentionWebhook:
    hook = (
        await visible_attention_webhooks(viewer).select_for_update().get_or_none(id=subscription_id)
        if subscription_id
        else None
    )
    if hook is None:
        raise reject(("input", "id"), "No such webhook subscription.", UserErrorCode.NOT_FOUND)
    return hook


def _describe(hook: AttentionWebhook) -> str:
    return f"{hook.url} ({', '.join(t.value for t in _topics_of(hook.topics))})"


# ------------------------------------------------------------------ mutations


async def create_subscription(
    viewer: Viewer,
    url: str | None,
    topics: Sequence[AttentionEventType],
    now: datetime,
    *,
    allowed_hosts: frozenset[str] = frozenset(),
    per_partner: int = 10,
) -> WebhookSubscriptionValue:
    """A new, enabled subscription of the viewer's partner (FULL_ADMIN), at most
    `per_partner` of them."""

    async def prepare() -> tuple[str, list[str]]:
        chosen = _checked_topics(topics)
        return await _checked_url(url, allowed_hosts), chosen

    async def work(checked: tuple[str, list[str]]) -> Audited[WebhookSubscriptionValue]:
        checked_url, chosen = checked
        # The partner's row locked (PostgreSQL): two creations at once count in turn.
        await PartnerOrganization.select_for_update().get(id=viewer.partner_id)
        if await AttentionWebhook.filter(partner_id=viewer.partner_id).count() >= per_partner:
            raise reject(
                None,
                f"A partner may have at most {per_partner} webhook subscriptions: "
                "delete one first.",
                UserErrorCode.LIMIT_EXCEEDED,
            )
        hook = await AttentionWebhook.create(
            partner_id=viewer.partner_id,
            url=checked_url,
            topics=chosen,
            enabled=True,
            consecutive_failures=0,
            created_by_id=viewer.admin.id,
            created_at=now,
            updated_at=now,
        )
        return Audited(
            WebhookSubscriptionValue.of(hook),
            audit_target("WebhookSubscription", hook.id),
            f"Subscribed the webhook {_describe(hook)}",
        )

    return await run_prepared_mutation(
        viewer, CREATE_WEBHOOK_SUBSCRIPTION, "webhook_subscription.create", prepare, work
    )


async def update_subscription(
    viewer: Viewer,
    subscription_id: int | None,
    now: datetime,
    *,
    url: str | None = None,
    topics: Sequence[AttentionEventType] | None = None,
    enabled: bool | None = None,
    allowed_hosts: frozenset[str] = frozenset(),
) -> WebhookSubscriptionValue:
    """Change what is given. Enabling a disabled subscription starts its count of
    failures in a row again; disabling it FAILs its PENDING deliveries (it gets
    no new ones while disabled)."""

    async def prepare() -> tuple[str | None, list[str] | None]:
        chosen = _checked_topics(topics) if topics is not None else None
        checked_url = await _checked_url(url, allowed_hosts) if url is not None else None
        return checked_url, chosen

    async def work(
        checked: tuple[str | None, list[str] | None],
    ) -> Audited[WebhookSubscriptionValue] | Unaudited[WebhookSubscriptionValue]:
        checked_url, chosen = checked
        hook = await _own_subscription(viewer, subscription_id)
        changes: list[str] = []
        if checked_url is not None and checked_url != hook.url:
            hook.url = checked_url
            changes.append(f"URL {checked_url}")
        if chosen is not None and chosen != [t.value for t in _topics_of(hook.topics)]:
            hook.topics = chosen
            changes.append(f"topics {', '.join(chosen)}")
        if enabled is True and not hook.enabled:
            hook.enabled = True
            hook.consecutive_failures = 0
            hook.disabled_at = None
            hook.disabled_reason = None
            changes.append("enabled")
        elif enabled is False and hook.enabled:
            hook.enabled = False
            hook.disabled_at = now
            hook.disabled_reason = f"Disabled by {viewer.admin.email}."
            changes.append("disabled")
        if not changes:
            return Unaudited(WebhookSubscriptionValue.of(hook))
        hook.updated_at = now
        await hook.save()
        if not hook.enabled:
            await _fail_pending(hook.id, "The subscription was disabled.", now)
        return Audited(
            WebhookSubscriptionValue.of(hook),
            audit_target("WebhookSubscription", hook.id),
            f"Changed the webhook {_describe(hook)}: {'; '.join(changes)}",
        )

    return await run_prepared_mutation(
        viewer, UPDATE_WEBHOOK_SUBSCRIPTION, "webhook_subscription.update", prepare, work
    )


async def delete_subscription(viewer: Viewer, subscription_id: int | None) -> int:
    """Delete a subscription with its deliveries (the events stay)."""

    async def nothing() -> None:
        return None

    async def work(_: None) -> Audited[int]:
        hook = await _own_subscription(viewer, subscription_id)
        await hook.delete()
        return Audited(
            hook.id,
            audit_target("WebhookSubscription", hook.id),
            f"Deleted the webhook {_describe(hook)}",
        )

    return await run_prepared_mutation(
        viewer, DELETE_WEBHOOK_SUBSCRIPTION, "webhook_subscription.delete", nothing, work
    )


# ------------------------------------------------------------------ reading


async def list_subscriptions(
    viewer: Viewer, *, first: int | None, after: str | None
) -> Page[WebhookSubscriptionValue]:
    """The partner's subscriptions, newest first (FULL_ADMIN; Forbidden otherwise)."""
    require_attention_webhook_reader(viewer)
    page = await keyset_page(
        visible_attention_webhooks(viewer),
        ("id",),
        first,
        after,
        "webhook_subscriptions",
        descending=True,
    )
    return replace(page, items=[WebhookSubscriptionValue.of(h) for h in page.items])


async def get_subscription(
    viewer: Viewer, subscription_id: int | None
) -> WebhookSubscriptionValue | None:
    """A subscription of the viewer's partner; None when missing, another partner's,
    or the viewer is no FULL_ADMIN."""
    if subscription_id is None:
        return None
    hook = await visible_attention_webhooks(viewer).get_or_none(id=subscription_id)
    return WebhookSubscriptionValue.of(hook) if hook else None


async def list_deliveries(
    viewer: Viewer,
    subscription_id: int,
    *,
    first: int | None,
    after: str | None,
    status: AttentionDeliveryStatus | None = None,
) -> Page[WebhookDeliveryValue]:
    """The deliveries of one subscription, newest first, of one status if given."""
    require_attention_webhook_reader(viewer)
    hooks = visible_attention_webhooks(viewer).filter(id=subscription_id).values("id")
    query = AttentionDelivery.filter(webhook_id__in=Subquery(hooks))
    if status is not None:
        query = query.filter(status=status)
    page = await keyset_page(query, ("id",), first, after, "webhook_deliveries", descending=True)
    return replace(page, items=[WebhookDeliveryValue.of(d) for d in page.items])


# ------------------------------------------------------------------ the payload


@dataclass(frozen=True)
class EventData:
    """What one delivery POSTs: its event with its customer."""

    event_id: int
    type: AttentionEventType
    status: str | None
    detail: dict[str, Any]
    occurred_at: datetime
    customer_id: int
    customer_name: str
    customer_org_id: str


def payload(event: EventData) -> bytes:
    """The JSON body of one event: ids are the API's global ids (the event's is also
    the Idempotency-Key header)."""
    detail = {
        key: encode_global_id(DETAIL_IDS[key], value)
        if key in DETAIL_IDS and isinstance(value, int)
        else value
        for key, value in event.detail.items()
    }
    return orjson.dumps(
        {
            "id": event_global_id(event.event_id),
            "topic": event.type.value,
            "occurredAt": event.occurred_at.isoformat(),
            "customer": {
                "id": encode_global_id("Customer", event.customer_id),
                "name": event.customer_name,
                "orgId": event.customer_org_id,
            },
            "status": event.status,
            "detail": detail,
        }
    )


def event_global_id(event_id: int) -> str:
    """The global id of an attention event (the payload's `id`, its Idempotency-Key)."""
    return encode_global_id("AttentionEvent", event_id)


def headers(
    delivery_id: int, event: EventData, body: bytes, secret: str, timestamp: int
) -> dict[str, str]:
    """The headers of one try: those of report webhooks (signed), the topic and
    the event's id as Idempotency-Key."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "PartnerHub-Webhook/1",
        "X-PartnerHub-Event": "attention.event",
        "X-PartnerHub-Topic": event.type.value,
        "X-PartnerHub-Delivery": str(delivery_id),
        "X-PartnerHub-Timestamp": str(timestamp),
        "X-PartnerHub-Signature": signature(secret, timestamp, body),
        "Idempotency-Key": event_global_id(event.event_id),
    }


# ------------------------------------------------------------------ sending


@dataclass(frozen=True)
class SendConfig:
    """What the sender needs of the settings."""

    key: str
    allowed_hosts: frozenset[str]
    max_attempts: int
    failures_to_disable: int
    retry_base_seconds: float = RETRY_BASE_SECONDS
    lease_seconds: float = LEASE_SECONDS


@dataclass(frozen=True)
class SendSummary:
    """What one run of the sender did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    webhook_id: int
    partner_id: int
    url: str
    attempts: int  # this try's number (1 = the first)
    event: EventData


def retry_delay(config: SendConfig, attempts: int) -> float:
    """Seconds from the `attempts`-th failed try to the next one."""
    return config.retry_base_seconds * 2 ** (attempts - 1)


async def send_due_deliveries(config: SendConfig, now: datetime | None = None) -> SendSummary:
    """Try every due delivery whose turn it is (the oldest PENDING one of its
    subscription and customer), each claimed first, and record each outcome; in
    rounds, so a delivered one's successor goes out in the same run (at most
    MAX_ROUNDS of them)."""
    now = now or utcnow()
    await _fail_pending_of_disabled(now)
    gate = asyncio.Semaphore(CONCURRENT_SENDS)

    async def one(c: _Claimed) -> tuple[bool, bool, int | None]:
        async with gate:
            status_code, error = await _post(config, c)
        return await _record(config, c, status_code, error, now)

    outcomes: list[tuple[bool, bool, int | None]] = []
    for _ in range(MAX_ROUNDS):
        claimed = await _claim_due(config, now)
        if not claimed:
            break
        outcomes += await asyncio.gather(*(one(c) for c in claimed))
    return SendSummary(
        delivered=sum(1 for ok, _, _ in outcomes if ok),
        retrying=sum(1 for ok, final, _ in outcomes if not ok and not final),
        failed=sum(1 for ok, final, _ in outcomes if not ok and final),
        disabled=tuple(sorted({hook for _, _, hook in outcomes if hook is not None})),
    )


async def _claim_due(config: SendConfig, now: datetime) -> list[_Claimed]:
    """The due deliveries at the head of their (subscription, customer) line,
    each claimed by moving its next try a lease ahead and counting the try: the
    UPDATE matches only while the row is as read, so one worker claims it."""
    rows = await fetch_all(
        "SELECT d.id, d.webhook_id, d.attempts, w.partner_id, w.url,"
        " e.id AS event_id, e.type, e.status AS event_status, e.detail, e.occurred_at,"
        " c.id AS customer_id, c.name AS customer_name, c.org_id"
        " FROM attention_delivery d"
        " JOIN attention_webhook w ON w.id = d.webhook_id"
        " JOIN attention_event e ON e.id = d.event_id"
        " JOIN customer c ON c.id = e.customer_id"
        " WHERE d.status = ? AND d.next_attempt_at <= ? AND w.enabled"
        " AND NOT EXISTS (SELECT 1 FROM attention_delivery p"
        "  WHERE p.webhook_id = d.webhook_id AND p.customer_id = d.customer_id"
        "  AND p.status = ? AND p.id < d.id)"
        " ORDER BY d.next_attempt_at, d.id LIMIT ?",
        [PENDING.value, now, PENDING.value, CLAIM_BATCH],
    )
    lease_until = now + timedelta(seconds=config.lease_seconds)
    claimed: list[_Claimed] = []
    for row in rows:
        won = await AttentionDelivery.filter(
            id=row["id"], status=PENDING, attempts=row["attempts"], next_attempt_at__lte=now
        ).update(attempts=row["attempts"] + 1, next_attempt_at=lease_until)
        if not won:
            continue
        detail = row["detail"]
        if isinstance(detail, str | bytes):
            detail = orjson.loads(detail)
        claimed.append(
            _Claimed(
                delivery_id=int(row["id"]),
                webhook_id=int(row["webhook_id"]),
                partner_id=int(row["partner_id"]),
                url=row["url"],
                attempts=int(row["attempts"]) + 1,
                event=EventData(
                    event_id=int(row["event_id"]),
                    type=AttentionEventType(row["type"]),
                    status=row["event_status"],
                    detail=detail or {},
                    occurred_at=as_datetime(row["occurred_at"]),
                    customer_id=int(row["customer_id"]),
                    customer_name=row["customer_name"],
                    customer_org_id=str(row["org_id"]),
                ),
            )
        )
    return claimed


async def _post(config: SendConfig, c: _Claimed) -> tuple[int | None, str | None]:
    """One POST: (status code, None) when delivered, else (status code or None, why)."""
    body = payload(c.event)
    secret = subscription_secret(config.key, c.webhook_id)
    sent_headers = headers(c.delivery_id, c.event, body, secret, int(time.time()))
    status_code = None
    try:
        target = await check_target(c.url, config.allowed_hosts)
        status_code = await send(target, body, sent_headers)
    except TargetRefused as exc:
        return None, f"Refused: the webhook URL {exc}."
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    except TimeoutError:
        return None, f"No answer within {SEND_TIMEOUT_SECONDS:g} s"
    if 300 <= status_code < 400:
        return status_code, f"HTTP {status_code} (redirects are not followed)"
    if not 200 <= status_code < 300:
        return status_code, f"HTTP {status_code}"
    return status_code, None


async def _record(
    config: SendConfig, c: _Claimed, status_code: int | None, error: str | None, now: datetime
) -> tuple[bool, bool, int | None]:
    """Store one try's outcome (only while the claim is still this try's) with what
    it does to its subscription, in one transaction: returns (delivered, final,
    the subscription's id when this disabled it)."""
    async with in_transaction():
        mine = AttentionDelivery.filter(id=c.delivery_id, status=PENDING, attempts=c.attempts)
        if error is None:
            if await mine.update(
                status=DELIVERED,
                delivered_at=now,
                last_status_code=status_code,
                last_error=None,
                next_attempt_at=now,
            ):
                await AttentionWebhook.filter(id=c.webhook_id).update(consecutive_failures=0)
            return True, True, None
        if c.attempts < config.max_attempts:
            await mine.update(
                last_status_code=status_code,
                last_error=error,
                next_attempt_at=now + timedelta(seconds=retry_delay(config, c.attempts)),
            )
            return False, False, None
        if not await mine.update(
            status=FAILED, last_status_code=status_code, last_error=error, next_attempt_at=now
        ):
            return False, True, None
        disabled = await _count_failure(config, c, error, now)
        return False, True, c.webhook_id if disabled else None


async def _count_failure(config: SendConfig, c: _Claimed, error: str, now: datetime) -> bool:
    """One more FAILED delivery in a row; at the limit the subscription is disabled
    (its PENDING deliveries FAILED, an audit event written). True when it was."""
    await execute(
        "UPDATE attention_webhook SET consecutive_failures = consecutive_failures + 1 WHERE id = ?",
        [c.webhook_id],
    )
    limit = config.failures_to_disable
    reason = (
        f"{limit} deliveries in a row failed after {config.max_attempts} tries each (last: {error})"
    )[:500]
    disabled = await AttentionWebhook.filter(
        id=c.webhook_id, enabled=True, consecutive_failures__gte=limit
    ).update(enabled=False, disabled_at=now, disabled_reason=reason, updated_at=now)
    if not disabled:
        return False
    await _fail_pending(c.webhook_id, "The subscription was disabled.", now)
    await _record_disabled(c, reason, now)
    return True


async def _record_disabled(c: _Claimed, reason: str, now: datetime) -> None:
    """The audit event of a subscription the sender disabled (no admin acted)."""
    await audit.record_unattended(
        c.partner_id,
        now,
        "webhook_subscription.disable",
        target_ref("WebhookSubscription", c.webhook_id),
        f"Disabled the webhook {c.url}: {reason}",
    )


async def _fail_pending(webhook_id: int, reason: str, now: datetime) -> None:
    await AttentionDelivery.filter(webhook_id=webhook_id, status=PENDING).update(
        status=FAILED, last_error=reason, next_attempt_at=now
    )


async def _fail_pending_of_disabled(now: datetime) -> None:
    """PENDING deliveries of a disabled subscription (written while it was being
    disabled) are FAILED: a disabled subscription is sent nothing."""
    disabled = AttentionWebhook.filter(enabled=False).values("id")
    await AttentionDelivery.filter(status=PENDING, webhook_id__in=Subquery(disabled)).update(
        status=FAILED, last_error="The subscription was disabled.", next_attempt_at=now
    )
