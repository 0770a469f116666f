"""Partner webhooks of the attention feed: the tick (every 5 s, standing
workers only) that sends the due deliveries (app/domain/attention_webhooks.py:
claimed one worker at a time, in order per subscription and customer, retried
with doubling delays, a subscription disabled after too many failures)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from app.clock import utcnow
from app.config import Settings
from app.domain.attention_webhooks import SendConfig, send_due_deliveries
from workers.runtime import rides_out_database_outages

log = logging.getLogger(__name__)


def send_config(settings: Settings) -> SendConfig:
    """The sender's terms from the settings."""
    return SendConfig(
        key=settings.signing_key(),
        allowed_hosts=settings.webhook_allowed_hosts,
        max_attempts=settings.attention_webhook_max_attempts,
        failures_to_disable=settings.attention_webhook_failures_to_disable,
    )


@rides_out_database_outages
async def attention_webhook_tick(ctx: dict[str, Any], now: str | None = None) -> int:
    """Every 5 s: try the due attention webhook deliveries; returns how many were
    tried."""
    settings: Settings = ctx["settings"]
    moment = datetime.fromisoformat(now) if now else utcnow()
    summary = await send_due_deliveries(send_config(settings), moment)
    for hook in summary.disabled:
        log.warning("webhook subscription %s disabled: too many failed deliveries in a row", hook)
    return summary.delivered + summary.retrying + summary.failed
