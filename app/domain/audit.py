"""The audit trail: every successful mutation writes one event."""

from __future__ import annotations

from app.clock import utcnow
from app.domain.access import Viewer
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
