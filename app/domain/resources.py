"""Resources and help: quick links, featured resources, the searchable list."""

from __future__ import annotations

from tortoise.expressions import Q

from app.domain.errors import InvalidArgument
from app.models.enums import ResourceSection
from app.models.resources import Resource

MAX_SEARCH_LENGTH = 200


async def list_resources(search: str | None = None, section: str | None = None) -> list[Resource]:
    """Resources in their sections' order; `search` matches title, description or category."""
    query = Resource.all()
    if section is not None:
        if section not in ResourceSection.__members__:
            names = ", ".join(ResourceSection.__members__)
            raise InvalidArgument(f"`section` must be one of {names} (got {section[:50]!r})")
        query = query.filter(section=section)
    if search is not None:
        text = search.strip()
        if len(text) > MAX_SEARCH_LENGTH:
            raise InvalidArgument(f"`search` is at most {MAX_SEARCH_LENGTH} characters")
        if text:
            query = query.filter(
                Q(title__icontains=text)
                | Q(description__icontains=text)
                | Q(category__icontains=text)
            )
    rows = await query
    order = {section: n for n, section in enumerate(ResourceSection)}
    return sorted(rows, key=lambda r: (order[ResourceSection(r.section)], r.position, r.id))
