"""Tag (read side): custom tags of the viewer's partner."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.ids import encode_global_id
from app.models.tags import Tag as TagModel
from schema.admins import Admin
from schema.context import Info
from schema.node import Node, node_loader


@strawberry.type(name="Tag")
class Tag(Node):
    model: strawberry.Private[TagModel]
    name: str
    description: str | None
    created_at: datetime

    @classmethod
    def of(cls, tag: TagModel) -> Tag:
        return cls(
            id=strawberry.ID(encode_global_id("Tag", tag.id)),
            model=tag,
            name=tag.name,
            description=tag.description,
            created_at=tag.created_at,
        )

    @strawberry.field(description="Customers carrying the tag, among those the viewer sees.")
    async def customer_count(self, info: Info) -> int:
        return await info.context.loaders.tag_customer_counts.load(self.model.id)

    @strawberry.field
    async def created_by(self, info: Info) -> Admin | None:
        if self.model.created_by_id is None:
            return None
        admin = await info.context.loaders.admins.load(self.model.created_by_id)
        return Admin.from_model(admin) if admin else None


@node_loader("Tag")
async def load_tag(info: Info, pk: int) -> Tag | None:
    tag = await TagModel.get_or_none(id=pk, partner_id=info.context.viewer.partner_id)
    return Tag.of(tag) if tag else None
