"""Resources and help: quick links, featured resources, the searchable list,
read as `ResourceValue`s.

The list itself is reference data: `partnerhub migrate` stores it on every
install (`ensure_reference_resources`), the demo as well, one copy either way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.domain.errors import InvalidArgument
from app.models.enums import ResourceSection
from app.models.resources import Resource

MAX_SEARCH_LENGTH = 200
MAX_CATEGORY_LENGTH = 100  # Resource.category's column


@dataclass(frozen=True, slots=True)
class ResourceValue:
    """A resource as the help page reads it."""

    title: str
    url: str
    section: ResourceSection
    category: str | None
    description: str | None

    @classmethod
    def of(cls, row: Resource) -> ResourceValue:
        return cls(
            title=row.title,
            url=row.url,
            section=ResourceSection(row.section),
            category=row.category,
            description=row.description,
        )


class ReferenceResource(NamedTuple):
    title: str
    url: str
    section: ResourceSection
    category: str
    description: str


REFERENCE_RESOURCES: tuple[ReferenceResource, ...] = tuple(
    ReferenceResource(*entry)
    for entry in (
        ("Partner Hub help", "https://help.webex.com/partner-hub", ResourceSection.QUICK_LINK,
         "Getting started", "Articles for partner administrators."),
        ("Cisco Commerce Workspace", "https://apps.cisco.com/Commerce", ResourceSection.QUICK_LINK,
         "Ordering", "Place and track orders."),
        ("Webex status", "https://status.webex.com", ResourceSection.QUICK_LINK,
         "Operations", "Service status and incidents."),
        ("Partner Helpdesk", "https://help.webex.com/partner-helpdesk", ResourceSection.QUICK_LINK,
         "Support", "Contact the Partner Helpdesk for Webex Calling and Contact Center."),
        ("What's new in Partner Hub", "https://help.webex.com/partner-hub-whats-new",
         ResourceSection.FEATURED, "Release notes", "Monthly feature updates."),
        ("Subscription analytics", "https://help.webex.com/partner-hub-analytics",
         ResourceSection.FEATURED, "Analytics", "Find customers at risk of churn."),
        ("Calling engagement", "https://help.webex.com/partner-calling-engagement",
         ResourceSection.FEATURED, "Analytics", "Weekly usage and call quality."),
        ("Start a Webex trial", "https://help.webex.com/partner-trials", ResourceSection.GENERAL,
         "Trials", "Offer customers a trial of up to 90 days."),
        ("Partner administrator roles", "https://help.webex.com/partner-roles",
         ResourceSection.GENERAL, "Administration", "What each partner role can see and do."),
        ("Custom tags", "https://help.webex.com/partner-tags", ResourceSection.GENERAL,
         "Customers", "Group customers by your own processes."),
        ("Partner reports", "https://help.webex.com/partner-reports", ResourceSection.GENERAL,
         "Reports", "Generate and schedule CSV reports."),
        ("Data residency", "https://help.webex.com/data-residency", ResourceSection.GENERAL,
         "Compliance", "Where customer data is stored."),
    )
)  # fmt: skip


async def ensure_reference_resources() -> None:
    """Store the reference resources that are missing and keep the stored ones
    current, matched by URL, in the list's order (run by `partnerhub migrate` and
    the demo: running it again changes nothing). A second copy of a reference
    resource (an install whose demo stored them before migrate did) goes;
    resources added by hand, with URLs of their own, stay."""
    async with in_transaction():
        stored: dict[str, list[Resource]] = {}
        for row in await Resource.all().order_by("id"):
            stored.setdefault(row.url, []).append(row)
        for position, item in enumerate(REFERENCE_RESOURCES):
            want = {
                "title": item.title,
                "section": item.section,
                "category": item.category,
                "description": item.description,
                "position": position,
            }
            rows = stored.get(item.url)
            if not rows:
                await Resource.create(url=item.url, **want)
                continue
            kept, *copies = rows
            if copies:
                await Resource.filter(id__in=[c.id for c in copies]).delete()
            have = {name: getattr(kept, name) for name in want}
            if have != want:
                await Resource.filter(id=kept.id).update(**want)


async def list_resources(
    search: str | None = None, section: str | None = None, category: str | None = None
) -> list[ResourceValue]:
    """Resources in their sections' order; `search` matches title, description or
    category; `category` is one category, whatever its case."""
    query = Resource.all()
    if section is not None:
        if section not in ResourceSection.__members__:
            names = ", ".join(ResourceSection.__members__)
            raise InvalidArgument(f"`section` must be one of {names} (got {section[:50]!r})")
        query = query.filter(section=section)
    if category is not None:
        name = category.strip()
        if not name:
            raise InvalidArgument("`category` must not be empty (leave it out for every category)")
        if len(name) > MAX_CATEGORY_LENGTH:
            raise InvalidArgument(f"`category` is at most {MAX_CATEGORY_LENGTH} characters")
        query = query.filter(category__iexact=name)
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
    rows.sort(key=lambda r: (order[ResourceSection(r.section)], r.position, r.id))
    return [ResourceValue.of(row) for row in rows]
