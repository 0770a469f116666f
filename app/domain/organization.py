"""The viewer's own partner organization (Account page)."""

from __future__ import annotations

from app.domain.access import Viewer, visible_organization
from app.models.organization import PartnerOrganization


async def get_organization(
    viewer: Viewer, organization_id: int | None = None
) -> PartnerOrganization | None:
    """The viewer's organization; any other id reads as not found."""
    if organization_id is not None and not visible_organization(viewer, organization_id):
        return None
    return await PartnerOrganization.get_or_none(id=viewer.partner_id)
