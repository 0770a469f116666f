"""Notification preferences: the viewer's own choice of the daily attention
digest by e-mail (app/domain/attention_digest.py), read and set by every role."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import attention_digest
from app.domain.attention_digest import NotificationPreferencesValue
from app.models import enums
from schema.context import Info
from schema.enums import AttentionEventType
from schema.payloads import UserError, mutate


@strawberry.type(
    name="NotificationPreferences",
    description="The viewer's choice of the daily attention digest by e-mail: once a day "
    "(UTC), the customers it sees that entered an attention state the day before, grouped, "
    "with links; nothing is sent on a day with nothing to say.",
)
class NotificationPreferences:
    daily_digest: bool = strawberry.field(description="The digest is e-mailed (default false).")
    topics: list[AttentionEventType] | None = strawberry.field(
        description="The event types the digest covers; null: every type it lists "
        "(STATUS_GAINED, TRIAL_ENDING, LOW_LICENSE_ASSIGNMENT, CALL_QUALITY_DECLINING)."
    )
    updated_at: datetime | None = strawberry.field(
        description="When the viewer last saved them; null: never (these are the defaults)."
    )

    @classmethod
    def of(cls, value: NotificationPreferencesValue) -> NotificationPreferences:
        return cls(
            daily_digest=value.daily_digest,
            topics=None if value.topics is None else list(value.topics),  # type: ignore[arg-type]
            updated_at=value.updated_at,
        )


@strawberry.input(name="UpdateNotificationPreferencesInput")
class UpdateNotificationPreferencesInput:
    daily_digest: bool = strawberry.field(description="E-mail the daily attention digest.")
    topics: list[AttentionEventType] | None = strawberry.field(
        default=None,
        description="The event types the digest covers; null or left out: every type. "
        "At least one; each once; STATUS_LOST is no topic of the digest.",
    )


@strawberry.type(name="UpdateNotificationPreferencesPayload")
class UpdateNotificationPreferencesPayload:
    notification_preferences: NotificationPreferences | None
    user_errors: list[UserError]


async def resolve_notification_preferences(info: Info) -> NotificationPreferences:
    value = await attention_digest.notification_preferences(info.context.viewer)
    return NotificationPreferences.of(value)


async def resolve_update_notification_preferences(
    info: Info, input: UpdateNotificationPreferencesInput
) -> UpdateNotificationPreferencesPayload:
    return await mutate(
        UpdateNotificationPreferencesPayload,
        lambda: attention_digest.update_notification_preferences(
            info.context.viewer,
            input.daily_digest,
            None if input.topics is None else [enums.AttentionEventType(t) for t in input.topics],
        ),
        lambda saved: {"notification_preferences": NotificationPreferences.of(saved)},
    )
