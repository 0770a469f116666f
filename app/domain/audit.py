"""The audit trail: every successful mutation writes one event."""

from __future__ import annotations

from app.clock import utcnow
from app.domain.access import Viewer, reads_audit_log, visible_audit_events
from app.domain.errors import Forbidden
from app.domain.pagination import Page, keyset_page
from app.models.audit import AuditEvent


async def record(viewer: Viewer, action: str, target_id: str | None, summary: str) -> AuditEvent:
    """Write one audit event. Only the mutation frame (app/domain/mutations.py) calls
    it, inside the mutation's transaction (tests/test_layout.py checks)."""
    return await AuditEvent.create(
        partner_id=viewer.partner_id,
        at=utcnow(),
        actor_id=viewer.admin.id,
        action=action,
        target_id=target_id,
        summary=summary[:500],
    )


async def list_events(viewer: Viewer, *, first: int | None, after: str | None) -> Page[AuditEvent]:
    """The audit trail of the viewer's partner, newest first (FULL_ADMIN, READ_ONLY_ADMIN)."""
    if not reads_audit_log(viewer):
        raise Forbidden("The audit log is visible to FULL_ADMIN and READ_ONLY_ADMIN only.")
    query = visible_audit_events(viewer)
    return await keyset_page(query, ("id",), first, after, "audit", descending=True)


async def get_event(viewer: Viewer, event_id: int) -> AuditEvent | None:
    """One event of the viewer's audit trail; None when it is another partner's,
    missing, or the viewer's role does not read the audit trail."""
    return await visible_audit_events(viewer).get_or_none(id=event_id)
