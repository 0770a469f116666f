"""Custom tags: create, rename, describe, delete, and set a customer's tags
(replace semantics, like the Webex Partner Tags API).

Readers and mutations hand the API `TagValue`s (plain values). A customers
page reads its tags itself (app/domain/customer_pages.py `TagRow`, with the
tags' customer counts and creators when the page asks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.clock import utcnow
from app.db import execute, fetch_all, is_postgres
from app.domain.access import (
    CREATE_TAG,
    DELETE_TAG,
    TAG_CUSTOMERS,
    UPDATE_TAG,
    Viewer,
    managed_customer_scope,
)
from app.domain.customers import (
    CustomerFilter,
    CustomerRow,
    customer_row,
    filter_condition,
    get_managed_customer,
)
from app.domain.errors import InvalidArgument, MutationRejected, UserError, UserErrorCode, reject
from app.domain.mutations import Audited, audit_target, run_mutation
from app.domain.sql import one_of
from app.domain.statuses import StatusClock
from app.models.customers import Customer
from app.models.tags import CustomerTag, Tag

MAX_NAME_LENGTH = 40
MAX_DESCRIPTION_LENGTH = 500
# addTagToCustomers / removeTagFromCustomers: customers one call may cover, and
# how many refused ids it lists one by one (the rest are counted in one more error).
MAX_BULK_CUSTOMERS = 10_000
MAX_LISTED_ERRORS = 100


@dataclass(frozen=True, slots=True)
class TagValue:
    """A tag as the API shows it."""

    id: int
    name: str
    description: str | None
    created_at: datetime
    created_by_id: int | None

    @classmethod
    def of(cls, tag: Tag) -> TagValue:
        return cls(
            id=tag.id,
            name=tag.name,
            description=tag.description,
            created_at=tag.created_at,
            created_by_id=tag.created_by_id,  # type: ignore[attr-defined]
        )


async def list_tags(viewer: Viewer) -> list[TagValue]:
    """Every tag of the viewer's partner (visible to all its admins), by name."""
    found = await Tag.filter(partner_id=viewer.partner_id).order_by("name_key", "id")
    return [TagValue.of(t) for t in found]


async def get_tag(viewer: Viewer, tag_id: int | None) -> TagValue | None:
    """A tag of the viewer's partner."""
    if tag_id is None:
        return None
    tag = await Tag.get_or_none(id=tag_id, partner_id=viewer.partner_id)
    return TagValue.of(tag) if tag else None


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


async def create_tag(viewer: Viewer, name: str, description: str | None) -> TagValue:
    async def work() -> Audited[TagValue]:
        clean = _clean_name(name, ("input", "name"))
        text = _clean_description(description, ("input", "description"))
        await _ensure_name_free(viewer, clean)
        tag = await Tag.create(
            partner_id=viewer.partner_id,
            name=clean,
            name_key=clean.lower(),
            description=text,
            created_by_id=viewer.admin.id,
        )
        return Audited(TagValue.of(tag), audit_target("Tag", tag.id), f"Created tag {clean!r}")

    return await run_mutation(viewer, CREATE_TAG, "tag.create", work)


async def update_tag(
    viewer: Viewer, tag_id: int | None, name: str | None, description: str | None
) -> TagValue:
    async def work() -> Audited[TagValue]:
        clean = _clean_name(name, ("input", "name")) if name is not None else None
        text = _clean_description(description, ("input", "description"))
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
        return Audited(TagValue.of(tag), audit_target("Tag", tag.id), summary)

    return await run_mutation(viewer, UPDATE_TAG, "tag.update", work)


async def delete_tag(viewer: Viewer, tag_id: int | None) -> int:
    """Delete a tag and remove it from every customer; returns its id."""

    async def work() -> Audited[int]:
        tag = await _own_tag(viewer, tag_id, ("input", "id"))
        carried = await CustomerTag.filter(tag_id=tag.id).count()
        await CustomerTag.filter(tag_id=tag.id).delete()
        await tag.delete()
        return Audited(
            tag.id,
            audit_target("Tag", tag.id),
            f"Deleted tag {tag.name!r} (removed from {carried} customer(s))",
        )

    return await run_mutation(viewer, DELETE_TAG, "tag.delete", work)


async def set_customer_tags(
    viewer: Viewer, customer_id: int | None, tag_ids: Sequence[int | None], max_tags: int
) -> CustomerRow:
    """Replace the customer's tags with exactly these (duplicates count once)."""

    async def work() -> Audited[CustomerRow]:
        customer = await get_managed_customer(viewer, customer_id)
        if customer is None:
            raise reject(("input", "customer_id"), "No such customer.", UserErrorCode.NOT_FOUND)
        wanted = list(dict.fromkeys(tag_ids))
        if len(wanted) > max_tags:
            raise reject(
                ("input", "tag_ids"),
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
            UserError(("input", "tag_ids", str(n)), "No such tag.", UserErrorCode.NOT_FOUND)
            for n, tag_id in enumerate(tag_ids)
            if tag_id is None or tag_id not in found
        ]
        if errors:
            raise MutationRejected(errors)
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
        return Audited(
            customer_row(customer),
            audit_target("Customer", customer.id),
            f"Set the tags of {customer.name} to {', '.join(names) or 'none'}",
        )

    return await run_mutation(viewer, TAG_CUSTOMERS, "customer.tags.set", work)


# ------------------------------------------------------------------ many customers at once


@dataclass(frozen=True)
class BulkTagResult:
    tag: TagValue
    customer_count: int  # distinct customers the call covered
    changed_count: int  # of them, those that gained (or lost) the tag


def _by_index(
    indexes: Sequence[int], message: str, code: UserErrorCode, field: str = "customer_ids"
) -> MutationRejected:
    """One user error per refused position of the list (the first MAX_LISTED_ERRORS)."""
    errors = [
        UserError(("input", field, str(n)), message, code) for n in indexes[:MAX_LISTED_ERRORS]
    ]
    if len(indexes) > MAX_LISTED_ERRORS:
        rest = len(indexes) - MAX_LISTED_ERRORS
        errors.append(UserError(("input", field), f"{message} ({rest} more ids).", code))
    return MutationRejected(errors)


async def _chosen_customers(
    viewer: Viewer,
    customer_ids: Sequence[int | None] | None,
    flt: CustomerFilter | None,
    clock: StatusClock,
) -> list[int]:
    """The distinct customers a bulk call covers: its ids, every one in the viewer's
    scope (others NOT_FOUND by index, like a missing id), or every customer the
    filter of the `customers` query returns; at most MAX_BULK_CUSTOMERS either way.
    Only customers the viewer may change: one seen through an external-admin grant
    is NOT_FOUND by id and left out of a filter's customers."""
    if (customer_ids is None) == (flt is None):
        raise reject(
            ("input",), "Give either customerIds or filter (exactly one).", UserErrorCode.INVALID
        )
    scope = managed_customer_scope(viewer)
    if customer_ids is not None:
        if not customer_ids:
            raise reject(
                ("input", "customer_ids"), "Give at least one customer id.", UserErrorCode.INVALID
            )
        if len(customer_ids) > MAX_BULK_CUSTOMERS:
            raise reject(
                ("input", "customer_ids"),
                f"At most {MAX_BULK_CUSTOMERS} customers a call (got {len(customer_ids)}): "
                "split the list.",
                UserErrorCode.LIMIT_EXCEEDED,
            )
        wanted = list(dict.fromkeys(c for c in customer_ids if c is not None))
        where = scope & one_of("c.id", wanted)
        rows = await fetch_all(f"SELECT c.id FROM customer c WHERE {where.text}", where.params)
        found = {r["id"] for r in rows}
        missing = [n for n, c in enumerate(customer_ids) if c not in found]
        if missing:
            raise _by_index(missing, "No such customer.", UserErrorCode.NOT_FOUND)
        return wanted
    try:
        where = scope & filter_condition(viewer, flt, clock)  # type: ignore[arg-type]
    except InvalidArgument as refused:
        raise reject(("input", "filter"), str(refused), UserErrorCode.INVALID) from None
    rows = await fetch_all(
        f"SELECT c.id FROM customer c WHERE {where.text} ORDER BY c.id LIMIT ?",
        [*where.params, MAX_BULK_CUSTOMERS + 1],
    )
    if len(rows) > MAX_BULK_CUSTOMERS:
        raise reject(
            ("input", "filter"),
            f"The filter matches more than {MAX_BULK_CUSTOMERS} customers: narrow it "
            "(by region, status, product...) and run it again for each part.",
            UserErrorCode.LIMIT_EXCEEDED,
        )
    return [r["id"] for r in rows]


async def add_tag_to_customers(
    viewer: Viewer,
    tag_id: int | None,
    customer_ids: Sequence[int | None] | None,
    flt: CustomerFilter | None,
    clock: StatusClock,
    max_tags: int,
) -> BulkTagResult:
    """Give the tag to every chosen customer that does not carry it yet, all or
    nothing: a customer that would carry more than `max_tags` refuses the call.
    A few statements whatever the number of customers."""

    async def work() -> Audited[BulkTagResult]:
        tag = await _own_tag(viewer, tag_id, ("input", "tag_id"))
        chosen = await _chosen_customers(viewer, customer_ids, flt, clock)
        ids = one_of("ct.customer_id", chosen)
        has_tag = "SUM(CASE WHEN ct.tag_id = ? THEN 1 ELSE 0 END)"
        rows = await fetch_all(
            f"SELECT ct.customer_id, COUNT(*) AS n, {has_tag} AS has FROM customer_tag ct"
            f" WHERE {ids.text} GROUP BY ct.customer_id"
            f" HAVING {has_tag} > 0 OR COUNT(*) >= ?",
            [tag.id, *ids.params, tag.id, max_tags],
        )
        carrying = {r["customer_id"] for r in rows if r["has"]}
        full = {r["customer_id"] for r in rows if not r["has"]}
        if full:
            raise await _over_limit(chosen, customer_ids, full, max_tags)
        where = one_of("c.id", chosen)
        await execute(
            "INSERT INTO customer_tag (customer_id, tag_id, tagged_at)"
            f" SELECT c.id, CAST(? AS INTEGER), {_timestamp_param()} FROM customer c"
            f" WHERE ({where.text}) AND NOT EXISTS (SELECT 1 FROM customer_tag x"
            " WHERE x.customer_id = c.id AND x.tag_id = ?)",
            [tag.id, utcnow(), *where.params, tag.id],
        )
        added = len(chosen) - len(carrying)
        return Audited(
            BulkTagResult(TagValue.of(tag), len(chosen), added),
            audit_target("Tag", tag.id),
            f"Added tag {tag.name!r} to {added} customer(s)"
            + _covered(len(chosen), len(carrying), "already carried it", flt is not None),
        )

    return await run_mutation(viewer, TAG_CUSTOMERS, "customer.tags.add", work)


async def remove_tag_from_customers(
    viewer: Viewer,
    tag_id: int | None,
    customer_ids: Sequence[int | None] | None,
    flt: CustomerFilter | None,
    clock: StatusClock,
) -> BulkTagResult:
    """Take the tag off every chosen customer (those without it stay as they are)."""

    async def work() -> Audited[BulkTagResult]:
        tag = await _own_tag(viewer, tag_id, ("input", "tag_id"))
        chosen = await _chosen_customers(viewer, customer_ids, flt, clock)
        ids = one_of("customer_id", chosen)
        [count] = await fetch_all(
            f"SELECT COUNT(*) AS n FROM customer_tag WHERE tag_id = ? AND {ids.text}",
            [tag.id, *ids.params],
        )
        removed = int(count["n"])
        await execute(
            f"DELETE FROM customer_tag WHERE tag_id = ? AND {ids.text}", [tag.id, *ids.params]
        )
        return Audited(
            BulkTagResult(TagValue.of(tag), len(chosen), removed),
            audit_target("Tag", tag.id),
            f"Removed tag {tag.name!r} from {removed} customer(s)"
            + _covered(len(chosen), len(chosen) - removed, "did not carry it", flt is not None),
        )

    return await run_mutation(viewer, TAG_CUSTOMERS, "customer.tags.remove", work)


def _timestamp_param() -> str:
    # PostgreSQL cannot infer a parameter's type in a SELECT list; SQLite would
    # turn a CAST to a timestamp into a number.
    return "CAST(? AS TIMESTAMPTZ)" if is_postgres() else "?"


def _covered(chosen: int, unchanged: int, why: str, by_filter: bool) -> str:
    how = "matched by a customer filter" if by_filter else "chosen"
    return f" ({chosen} {how}; {unchanged} {why})" if unchanged else f" ({chosen} {how})"


async def _over_limit(
    chosen: Sequence[int],
    customer_ids: Sequence[int | None] | None,
    full: set[int],
    max_tags: int,
) -> MutationRejected:
    message = f"The customer already carries the maximum of {max_tags} tags."
    if customer_ids is not None:
        return _by_index(
            [n for n, c in enumerate(customer_ids) if c in full],
            message,
            UserErrorCode.LIMIT_EXCEEDED,
        )
    first = [c for c in chosen if c in full][:5]
    names = [c.name for c in await Customer.filter(id__in=first).order_by("name")]
    more = f" and {len(full) - len(names)} more" if len(full) > len(names) else ""
    return reject(
        ("input", "filter"),
        f"{len(full)} customer(s) the filter matches already carry the maximum of "
        f"{max_tags} tags: {', '.join(names)}{more}. Nothing was changed.",
        UserErrorCode.LIMIT_EXCEEDED,
    )
