""" "Now" and "today" in UTC, in one place, so jobs and tests can pass a chosen clock."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def utctoday() -> date:
    return utcnow().date()
