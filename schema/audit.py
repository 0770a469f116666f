"""The audit log: one event per successful mutation."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import audit
from app.domain.ids import encode_global_id
from app.domain.pagination import Page
from app.models.audit import AuditEvent as AuditEventModel
from schema.admins import Admin
from schema.context import Info
from schema.node import Node, node_loader
from schema.pagination import PageInfo, connection_parts


@strawberry.type(name="AuditEvent")
class AuditEvent(Node):
    model: strawberry.Private[AuditEventModel]
    at: datetime
    action: str = strawberry.field(
        description="e.g. tag.create, trial.start, admin.assign, report.generate."
    )
    target_id: strawberry.ID | None
    summary: str

    @classmethod
    def of(cls, event: AuditEventModel) -> AuditEvent:
        return cls(
            id=strawberry.ID(encode_global_id("AuditEvent", event.id)),
            model=event,
            at=event.at,
            action=event.action,
            target_id=strawberry.ID(event.target_id) if event.target_id else None,
            summary=event.summary,
        )

    @strawberry.field
    async def actor(self, info: Info) -> Admin | None:
        return await Admin.by_id(info, self.model.actor_id)


@node_loader("AuditEvent")
async def load_audit_event(info: Info, pk: int) -> AuditEvent | None:
    event = await audit.get_event(info.context.viewer, pk)
    return AuditEvent.of(event) if event else None


@strawberry.type(name="AuditEventEdge")
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type(name="AuditEventConnection")
class AuditEventConnection:
    edges: list[AuditEventEdge]
    nodes: list[AuditEvent]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[AuditEventModel]) -> AuditEventConnection:
        return cls(**connection_parts(page, AuditEvent.of, AuditEventEdge))


async def resolve_audit_log(
    info: Info, first: int | None = None, after: str | None = None
) -> AuditEventConnection:
    return AuditEventConnection.of(
        await audit.list_events(info.context.viewer, first=first, after=after)
    )
