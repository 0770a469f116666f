"""The audit log: one event per successful mutation. An event's target is kept
in domain terms ("Kind:key"); `targetId` is its global id."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import audit
from app.domain.audit import AuditEventValue
from app.domain.ids import encode_global_id
from schema.admins import Admin
from schema.context import Info
from schema.node import Node, node_loader
from schema.pagination import Connection


@strawberry.type(name="AuditEvent")
class AuditEvent(Node):
    value: strawberry.Private[AuditEventValue]
    at: datetime
    action: str = strawberry.field(
        description="e.g. tag.create, trial.start, admin.assign, report.generate."
    )
    target_id: strawberry.ID | None
    summary: str

    @classmethod
    def of(cls, event: AuditEventValue) -> AuditEvent:
        target = event.target
        return cls(
            id=strawberry.ID(encode_global_id("AuditEvent", event.id)),
            value=event,
            at=event.at,
            action=event.action,
            target_id=strawberry.ID(encode_global_id(target.kind, target.key)) if target else None,
            summary=event.summary,
        )

    @strawberry.field
    async def actor(self, info: Info) -> Admin | None:
        return await Admin.by_id(info, self.value.actor_id)


@node_loader("AuditEvent")
async def load_audit_event(info: Info, pk: int) -> AuditEvent | None:
    event = await audit.get_event(info.context.viewer, pk)
    return AuditEvent.of(event) if event else None


AuditEventConnection = Connection[AuditEvent]


async def resolve_audit_log(
    info: Info, first: int | None = None, after: str | None = None
) -> AuditEventConnection:
    page = await audit.list_events(info.context.viewer, first=first, after=after)
    return AuditEventConnection.of(page, AuditEvent.of)
