"""The weekly calling rollup as a job of its own, run with a chosen moment (tests,
or queued by hand). The Sunday 00:00 UTC occurrences, missed ones included,
are run by workers/crons.py."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from app.clock import utcnow
from app.domain.calling_rollup import ROLLUP_WAIT_SECONDS, refreshed_week, rollup_week

log = logging.getLogger(__name__)


async def refresh_calling_week(ctx: dict[str, Any], now: str | None = None) -> str:
    """Roll up the week completed by the latest Sunday 00:00 (`now`: ISO datetime, for tests)."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    week = refreshed_week(moment)
    settings = ctx.get("settings")
    wait = settings.job_timeout_seconds if settings else ROLLUP_WAIT_SECONDS
    await rollup_week(week, now=moment, wait_seconds=wait)
    log.info("rolled up calling week %s", week)
    return week.isoformat()
