"""The Sunday 00:00 UTC refresh of the weekly calling rollups."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from app.clock import utcnow
from app.domain.calling_rollup import refreshed_week, rollup_week

log = logging.getLogger(__name__)


async def refresh_calling_week(ctx: dict[str, Any], now: str | None = None) -> str:
    """Roll up the week completed by the latest Sunday 00:00 (`now`: ISO datetime, for tests)."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    week = refreshed_week(moment)
    await rollup_week(week, now=moment)
    log.info("rolled up calling week %s", week)
    return week.isoformat()
