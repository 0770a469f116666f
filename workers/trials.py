"""Trial expiry: a trial past its end date becomes EXPIRED by itself. This job
runs it for a chosen day (tests, or queued by hand); the daily 00:05 UTC
occurrences, missed ones included, are run by workers/crons.py."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from app.clock import utctoday
from app.domain.trials import expire_due_trials

log = logging.getLogger(__name__)


async def expire_trials(ctx: dict[str, Any], today: str | None = None) -> int:
    """Expire every ACTIVE trial that ended before `today` (ISO date; default: today UTC)."""
    day = date.fromisoformat(today) if today else utctoday()
    expired = await expire_due_trials(day)
    log.info("expired %d trial(s) ending before %s", expired, day)
    return expired
