"""Resources and help."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain.resources import ResourceValue, list_resources


@strawberry.type(name="Resource")
class Resource:
    title: str
    url: str
    section: str = strawberry.field(description="QUICK_LINK, FEATURED or GENERAL.")
    category: str | None
    description: str | None

    @classmethod
    def of(cls, row: ResourceValue) -> Resource:
        return cls(
            title=row.title,
            url=row.url,
            section=row.section.value,
            category=row.category,
            description=row.description,
        )


async def resolve_resources(
    search: str | None = None,
    section: str | None = None,
    category: Annotated[
        str | None,
        strawberry.argument(description="One category (e.g. Analytics), whatever its case."),
    ] = None,
) -> list[Resource]:
    return [Resource.of(row) for row in await list_resources(search, section, category)]
