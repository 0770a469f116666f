"""Tag: custom tags of the viewer's partner, over the domain's values
(app/domain/tags.py `TagValue`, or a customers page's `TagRow`), and the tag
mutations."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import tags
from app.domain.customer_pages import TagRow
from app.domain.ids import decode_id_of, encode_global_id
from app.domain.tags import TagValue
from schema.admins import Admin
from schema.context import Info
from schema.node import Node, node_loader
from schema.payloads import DeleteInput, DeletePayload, UserError, mutate


@strawberry.type(name="Tag")
class Tag(Node):
    pk: strawberry.Private[int]
    created_by_id: strawberry.Private[int | None]
    name: str
    description: str | None
    created_at: datetime
    # What the customers page reader loaded with the tag (app/domain/customer_pages.py).
    read: strawberry.Private[TagRow | None] = None

    @classmethod
    def of(cls, tag: TagValue | TagRow) -> Tag:
        """`tag`: a tag of the viewer's partner (a value of app/domain/tags.py, or a
        row the customers page reader read, with what it loaded)."""
        return cls(
            id=strawberry.ID(encode_global_id("Tag", tag.id)),
            pk=tag.id,
            created_by_id=tag.created_by_id,
            name=tag.name,
            description=tag.description,
            created_at=tag.created_at,
            read=tag if isinstance(tag, TagRow) else None,
        )

    # Each answers what the page reader loaded when it did (no task, no
    # coroutine); otherwise it returns the DataLoader's awaitable.

    @strawberry.field(description="Customers carrying the tag, among those the viewer sees.")
    def customer_count(self, info: Info) -> int:
        read = self.read
        if read is not None and read.customer_count is not None:
            return read.customer_count
        return info.context.loaders.tag_customer_counts.load(self.pk)  # type: ignore[return-value]

    @strawberry.field
    def created_by(self, info: Info) -> Admin | None:
        read = self.read
        if read is not None and read.created_by_loaded:
            return Admin.of(read.created_by) if read.created_by is not None else None
        return Admin.by_id(info, self.created_by_id)  # type: ignore[return-value]


@node_loader("Tag")
async def load_tag(info: Info, pk: int) -> Tag | None:
    tag = await tags.get_tag(info.context.viewer, pk)
    return Tag.of(tag) if tag else None


@strawberry.input(name="CreateTagInput")
class CreateTagInput:
    name: str
    description: str | None = None


@strawberry.input(name="UpdateTagInput")
class UpdateTagInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None


@strawberry.input(name="SetCustomerTagsInput")
class SetCustomerTagsInput:
    customer_id: strawberry.ID
    tag_ids: list[strawberry.ID]


@strawberry.type(name="TagPayload")
class TagPayload:
    tag: Tag | None
    user_errors: list[UserError]


async def resolve_tags(info: Info) -> list[Tag]:
    return [Tag.of(tag) for tag in await tags.list_tags(info.context.viewer)]


async def resolve_create_tag(info: Info, input: CreateTagInput) -> TagPayload:
    return await mutate(
        TagPayload,
        lambda: tags.create_tag(info.context.viewer, input.name, input.description),
        lambda tag: {"tag": Tag.of(tag)},
    )


async def resolve_update_tag(info: Info, input: UpdateTagInput) -> TagPayload:
    return await mutate(
        TagPayload,
        lambda: tags.update_tag(
            info.context.viewer, decode_id_of(str(input.id), "Tag"), input.name, input.description
        ),
        lambda tag: {"tag": Tag.of(tag)},
    )


async def resolve_delete_tag(info: Info, input: DeleteInput) -> DeletePayload:
    return await mutate(
        DeletePayload,
        lambda: tags.delete_tag(info.context.viewer, decode_id_of(str(input.id), "Tag")),
        lambda tag_id: {"deleted_id": strawberry.ID(encode_global_id("Tag", tag_id))},
    )
