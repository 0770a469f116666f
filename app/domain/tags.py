"""Custom tags: create, rename, describe, delete, and set a customer's tags
(replace semantics, like the Webex Partner Tags API)."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.transactions import in_transaction

from app.domain import audit
from app.domain.access import TAG_ROLES, Viewer, require_role, require_setup_completed
from app.domain.customers import get_customer
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.ids import encode_global_id
from app.models.customers import Customer
from app.models.tags import CustomerTag, Tag

MAX_NAME_LENGTH = 40
MAX_DESCRIPTION_LENGTH = 500


async def list_tags(viewer: Viewer) -> list[Tag]:
    """Every tag of the viewer's partner (visible to all its admins), by name."""
    return await Tag.filter(partner_id=viewer.partner_id).order_by("name_key", "id")


def _clean_name(name: str | None, field: tuple[str, ...]) -> str:
    cleaned = " ".join((name or "").split())
    if not 1 <= len(cleaned) <= MAX_NAME_LENGTH:
        raise reject(
            field, f"A tag name is 1 to {MAX_NAME_LENGTH} characters.", UserErrorCode.INVALID
        )
    return cleaned


def _clean_description(description: str | None, field: tuple[str, ...]) -> str | None:
    if description is None:
        return None
    cleaned = description.strip()
    if len(cleaned) > MAX_DESCRIPTION_LENGTH:
        raise reject(
            field,
            f"A tag description is at most {MAX_DESCRIPTION_LENGTH} characters.",
            UserErrorCode.INVALID,
        )
    return cleaned or None


async def _ensure_name_free(viewer: Viewer, name: str, except_id: int | None = None) -> None:
    clash = Tag.filter(partner_id=viewer.partner_id, name_key=name.lower())
    if except_id is not None:
        clash = clash.exclude(id=except_id)
    if await clash.exists():
        raise reject(
            ("input", "name"), f"A tag named {name!r} already exists.", UserErrorCode.CONFLICT
        )


async def _own_tag(viewer: Viewer, tag_id: int | None, field: tuple[str, ...]) -> Tag:
    tag = await Tag.get_or_none(id=tag_id, partner_id=viewer.partner_id) if tag_id else None
    if tag is None:
        raise reject(field, "No such tag.", UserErrorCode.NOT_FOUND)
    return tag


def _check(viewer: Viewer, action: str) -> None:
    require_setup_completed(viewer)
    require_role(viewer, TAG_ROLES, action)


async def create_tag(viewer: Viewer, name: str, description: str | None) -> Tag:
    _check(viewer, "Creating tags")
    clean = _clean_name(name, ("input", "name"))
    text = _clean_description(description, ("input", "description"))
    async with in_transaction():
        await _ensure_name_free(viewer, clean)
        tag = await Tag.create(
            partner_id=viewer.partner_id,
            name=clean,
            name_key=clean.lower(),
            description=text,
            created_by_id=viewer.admin.id,
        )
        await audit.record(
            viewer, "tag.create", encode_global_id("Tag", tag.id), f"Created tag {clean!r}"
        )
    return tag


async def update_tag(
    viewer: Viewer, tag_id: int | None, name: str | None, description: str | None
) -> Tag:
    _check(viewer, "Editing tags")
    clean = _clean_name(name, ("input", "name")) if name is not None else None
    text = _clean_description(description, ("input", "description"))
    async with in_transaction():
        tag = await _own_tag(viewer, tag_id, ("input", "id"))
        changes = []
        if clean is not None and clean != tag.name:
            await _ensure_name_free(viewer, clean, except_id=tag.id)
            changes.append(f"renamed {tag.name!r} to {clean!r}")
            tag.name, tag.name_key = clean, clean.lower()
        if description is not None and text != tag.description:
            changes.append("changed its description")
            tag.description = text
        await tag.save(update_fields=["name", "name_key", "description"])
        summary = f"Tag {tag.name!r}: " + (", ".join(changes) or "no change")
        await audit.record(viewer, "tag.update", encode_global_id("Tag", tag.id), summary)
    return tag


async def delete_tag(viewer: Viewer, tag_id: int | None) -> int:
    """Delete a tag and remove it from every customer; returns its id."""
    _check(viewer, "Deleting tags")
    async with in_transaction():
        tag = await _own_tag(viewer, tag_id, ("input", "id"))
        carried = await CustomerTag.filter(tag_id=tag.id).count()
        await CustomerTag.filter(tag_id=tag.id).delete()
        await tag.delete()
        await audit.record(
            viewer,
            "tag.delete",
            encode_global_id("Tag", tag.id),
            f"Deleted tag {tag.name!r} (removed from {carried} customer(s))",
        )
    return tag.id


async def set_customer_tags(
    viewer: Viewer, customer_id: int | None, tag_ids: Sequence[int | None], max_tags: int
) -> Customer:
    """Replace the customer's tags with exactly these (duplicates count once)."""
    _check(viewer, "Tagging customers")
    customer = await get_customer(viewer, customer_id) if customer_id else None
    if customer is None:
        raise reject(("input", "customerId"), "No such customer.", UserErrorCode.NOT_FOUND)
    wanted = list(dict.fromkeys(tag_ids))
    if len(wanted) > max_tags:
        raise reject(
            ("input", "tagIds"),
            f"A customer carries at most {max_tags} tags (got {len(wanted)}).",
            UserErrorCode.LIMIT_EXCEEDED,
        )
    found = {
        t.id: t
        for t in await Tag.filter(
            partner_id=viewer.partner_id, id__in=[t for t in wanted if t is not None]
        )
    }
    errors = [
        UserError(("input", "tagIds", str(n)), "No such tag.", UserErrorCode.NOT_FOUND)
        for n, tag_id in enumerate(tag_ids)
        if tag_id is None or tag_id not in found
    ]
    if errors:
        raise MutationRejected(errors)
    async with in_transaction():
        current = set(
            await CustomerTag.filter(customer_id=customer.id).values_list("tag_id", flat=True)
        )
        target = set(found)
        await CustomerTag.filter(
            customer_id=customer.id, tag_id__in=list(current - target)
        ).delete()
        for tag_id in sorted(target - current):
            await CustomerTag.create(customer_id=customer.id, tag_id=tag_id)
        names = sorted(found[t].name for t in target)
        await audit.record(
            viewer,
            "customer.tags.set",
            encode_global_id("Customer", customer.id),
            f"Set the tags of {customer.name} to {', '.join(names) or 'none'}",
        )
    return customer
