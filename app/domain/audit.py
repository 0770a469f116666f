"""The audit trail: every successful mutation writes one event, naming what it
changed in domain terms (`target_ref`: "Kind:key", e.g. "Admin:5"); the trail
is read as `AuditEventValue`s."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from app.clock import utcnow
from app.domain.access import Viewer, reads_audit_log, visible_audit_events
from app.domain.errors import Forbidden
from app.domain.pagination import Page, keyset_page
from app.models.audit import AuditEvent

_REF = re.compile(r"([A-Z][A-Za-z0-9]*):([1-9][0-9]{0,18})")


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """What an event names: an object's kind (e.g. "Admin") and key."""

    kind: str
    key: int


def target_ref(kind: str, key: int) -> str:
    """How an event stores its target: "Kind:key"."""
    if not _REF.fullmatch(f"{kind}:{key}"):
        raise ValueError(f"not an audit target: {kind!r}, {key!r}")
    return f"{kind}:{key}"


def parse_target_ref(ref: str | None) -> AuditTarget | None:
    """The target a stored "Kind:key" names; None for none (or text that is not one)."""
    match = _REF.fullmatch(ref) if ref else None
    return AuditTarget(match[1], int(match[2])) if match else None


@dataclass(frozen=True, slots=True)
class AuditEventValue:
    id: int
    at: datetime
    actor_id: int | None
    action: str
    target: AuditTarget | None
    summary: str

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventValue:
        return cls(
            id=event.id,
            at=event.at,
            actor_id=event.actor_id,
            action=event.action,
            target=parse_target_ref(event.target_id),
            summary=event.summary,
        )


async def record(viewer: Viewer, action: str, target_id: str | None, summary: str) -> AuditEvent:
    """Write one audit event (`target_id` a `target_ref`). Only the mutation frame
    (app/domain/mutations.py) calls it, inside the mutation's transaction
    (tests/test_layout.py checks)."""
    return await AuditEvent.create(
        partner_id=viewer.partner_id,
        at=utcnow(),
        actor_id=viewer.admin.id,
        action=action,
        target_id=target_id,
        summary=summary[:500],
    )


async def record_unattended(
    partner_id: int, at: datetime, action: str, target_id: str | None, summary: str
) -> AuditEvent:
    """Write one audit event that no admin caused (a job acting on its own, e.g.
    the webhook sender disabling a failing subscription): no actor. Only the
    callers tests/test_layout.py names may use it."""
    return await AuditEvent.create(
        partner_id=partner_id,
        at=at,
        actor_id=None,
        action=action,
        target_id=target_id,
        summary=summary[:500],
    )


async def list_events(
    viewer: Viewer, *, first: int | None, after: str | None
) -> Page[AuditEventValue]:
    """The audit trail of the viewer's partner, newest first (FULL_ADMIN, READ_ONLY_ADMIN)."""
    if not reads_audit_log(viewer):
        raise Forbidden("The audit log is visible to FULL_ADMIN and READ_ONLY_ADMIN only.")
    query = visible_audit_events(viewer)
    page = await keyset_page(query, ("id",), first, after, "audit", descending=True)
    return replace(page, items=[AuditEventValue.of(event) for event in page.items])


async def get_event(viewer: Viewer, event_id: int) -> AuditEventValue | None:
    """One event of the viewer's audit trail; None when it is another partner's,
    missing, or the viewer's role does not read the audit trail."""
    event = await visible_audit_events(viewer).get_or_none(id=event_id)
    return AuditEventValue.of(event) if event else None
