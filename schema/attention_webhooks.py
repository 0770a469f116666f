"""Partner webhooks of the attention feed (FULL_ADMIN): the subscriptions of the
partner by topic, their deliveries with each outcome, and the mutations that
create, change and delete them (app/domain/attention_webhooks.py)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import attention_webhooks
from app.domain.attention_webhooks import (
    WebhookDeliveryValue,
    WebhookSubscriptionValue,
    subscription_secret,
)
from app.domain.ids import decode_id_of, encode_global_id
from app.models import enums
from schema.admins import Admin
from schema.context import Info
from schema.enums import AttentionEventType, WebhookDeliveryStatus
from schema.node import Node, node_loader
from schema.pagination import Connection
from schema.payloads import DeleteInput, DeletePayload, UserError, mutate


@strawberry.type(
    name="WebhookEventDelivery",
    description="One attention event POSTed to one webhook subscription, with its tries.",
)
class WebhookEventDelivery:
    id: strawberry.ID
    event_id: strawberry.ID = strawberry.field(
        description="The AttentionEvent's id (also the Idempotency-Key header and the "
        "payload's `id`)."
    )
    status: WebhookDeliveryStatus
    attempts: int = strawberry.field(description="Tries made so far.")
    last_status_code: int | None = strawberry.field(
        description="The HTTP status of the last try; null when it got no answer."
    )
    last_error: str | None = strawberry.field(
        description="Why the last try failed; null once DELIVERED."
    )
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is tried next (PENDING only; a later one of the same customer "
        "waits for the earlier ones)."
    )
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, delivery: WebhookDeliveryValue) -> WebhookEventDelivery:
        return cls(
            id=strawberry.ID(encode_global_id("WebhookEventDelivery", delivery.id)),
            event_id=strawberry.ID(encode_global_id("AttentionEvent", delivery.event_id)),
            status=delivery.status,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


WebhookEventDeliveryConnection = Connection[WebhookEventDelivery]


@strawberry.type(
    name="WebhookSubscription",
    description="A URL of the partner that receives a signed POST for each attention event "
    "of its topics (FULL_ADMIN).",
)
class WebhookSubscription(Node):
    value: strawberry.Private[WebhookSubscriptionValue]
    url: str
    topics: list[AttentionEventType]
    enabled: bool = strawberry.field(
        description="False: it gets no deliveries (disabled by an admin, or after too many "
        "failed deliveries in a row: see disabledReason)."
    )
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int = strawberry.field(
        description="Deliveries that FAILED in a row (a DELIVERED one resets it)."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, hook: WebhookSubscriptionValue) -> WebhookSubscription:
        return cls(
            id=strawberry.ID(encode_global_id("WebhookSubscription", hook.id)),
            value=hook,
            url=hook.url,
            topics=list(hook.topics),
            enabled=hook.enabled,
            disabled_at=hook.disabled_at,
            disabled_reason=hook.disabled_reason,
            consecutive_failures=hook.consecutive_failures,
            created_at=hook.created_at,
            updated_at=hook.updated_at,
        )

    @strawberry.field(
        description="Key of the X-PartnerHub-Signature header: HMAC-SHA256 of "
        '"<X-PartnerHub-Timestamp>.<body>", hex, as `sha256=<hex>`.'
    )
    def signing_secret(self, info: Info) -> str:
        return subscription_secret(info.context.settings.signing_key(), self.value.id)

    @strawberry.field
    async def created_by(self, info: Info) -> Admin | None:
        return await Admin.by_id(info, self.value.created_by_id)

    @strawberry.field(description="Its deliveries, newest first; of one status if given.")
    async def deliveries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: WebhookDeliveryStatus | None = None,
    ) -> WebhookEventDeliveryConnection:
        page = await attention_webhooks.list_deliveries(
            info.context.viewer,
            self.value.id,
            first=first,
            after=after,
            status=enums.AttentionDeliveryStatus(status) if status is not None else None,
        )
        return WebhookEventDeliveryConnection.of(page, WebhookEventDelivery.of)


WebhookSubscriptionConnection = Connection[WebhookSubscription]


@node_loader("WebhookSubscription")
async def load_subscription(info: Info, pk: int) -> WebhookSubscription | None:
    hook = await attention_webhooks.get_subscription(info.context.viewer, pk)
    return WebhookSubscription.of(hook) if hook else None


async def resolve_webhook_subscriptions(
    info: Info, first: int | None = None, after: str | None = None
) -> WebhookSubscriptionConnection:
    page = await attention_webhooks.list_subscriptions(
        info.context.viewer, first=first, after=after
    )
    return WebhookSubscriptionConnection.of(page, WebhookSubscription.of)


# ---------------------------------------------------------------- mutations


@strawberry.input(name="CreateWebhookSubscriptionInput")
class CreateWebhookSubscriptionInput:
    url: str = strawberry.field(
        description="https:// URL of a public host (the target rules of report webhooks)."
    )
    topics: list[AttentionEventType] = strawberry.field(
        description="The event types it receives (at least one)."
    )


@strawberry.input(name="UpdateWebhookSubscriptionInput")
class UpdateWebhookSubscriptionInput:
    id: strawberry.ID
    url: str | None = None
    topics: list[AttentionEventType] | None = strawberry.field(
        default=None, description="The topics again (replacing them; at least one)."
    )
    enabled: bool | None = strawberry.field(
        default=None,
        description="true re-enables a disabled subscription (its count of failures starts "
        "again); false disables it (its PENDING deliveries FAIL).",
    )


@strawberry.type(name="WebhookSubscriptionPayload")
class WebhookSubscriptionPayload:
    subscription: WebhookSubscription | None
    user_errors: list[UserError]


def _topics(topics: list[AttentionEventType] | None) -> list[enums.AttentionEventType] | None:
    return None if topics is None else [enums.AttentionEventType(t) for t in topics]


async def resolve_create_webhook_subscription(
    info: Info, input: CreateWebhookSubscriptionInput
) -> WebhookSubscriptionPayload:
    settings = info.context.settings
    return await mutate(
        WebhookSubscriptionPayload,
        lambda: attention_webhooks.create_subscription(
            info.context.viewer,
            input.url,
            _topics(input.topics) or [],
            info.context.clock.now,
            allowed_hosts=settings.webhook_allowed_hosts,
            per_partner=settings.attention_webhooks_per_partner,
        ),
        lambda hook: {"subscription": WebhookSubscription.of(hook)},
    )


async def resolve_update_webhook_subscription(
    info: Info, input: UpdateWebhookSubscriptionInput
) -> WebhookSubscriptionPayload:
    return await mutate(
        WebhookSubscriptionPayload,
        lambda: attention_webhooks.update_subscription(
            info.context.viewer,
            decode_id_of(str(input.id), "WebhookSubscription"),
            info.context.clock.now,
            url=input.url,
            topics=_topics(input.topics),
            enabled=input.enabled,
            allowed_hosts=info.context.settings.webhook_allowed_hosts,
        ),
        lambda hook: {"subscription": WebhookSubscription.of(hook)},
    )


async def resolve_delete_webhook_subscription(info: Info, input: DeleteInput) -> DeletePayload:
    return await mutate(
        DeletePayload,
        lambda: attention_webhooks.delete_subscription(
            info.context.viewer, decode_id_of(str(input.id), "WebhookSubscription")
        ),
        lambda pk: {"deleted_id": strawberry.ID(encode_global_id("WebhookSubscription", pk))},
    )
