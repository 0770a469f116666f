"""The audit trail: every successful mutation writes one event."""

from __future__ import annotations

from app.clock import utcnow
from app.domain.access import AUDIT_ROLES, Viewer
from app.domain.errors import Forbidden
from app.domain.pagination import Page, keyset_page
from app.models.audit import AuditEvent


async def record(viewer: Viewer, action: str, target_id: str | None, summary: str) -> AuditEvent:
    """Write one audit event (call it inside the mutation's transaction)."""
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
    if viewer.role not in AUDIT_ROLES:
        raise Forbidden("The audit log is visible to FULL_ADMIN and READ_ONLY_ADMIN only.")
    query = AuditEvent.filter(partner_id=viewer.partner_id)
    return await keyset_page(query, ("id",), first, after, "audit", descending=True)
