"""Partner admins as other admins of the same partner see them."""

from __future__ import annotations

from app.domain.access import Viewer, visible_admins
from app.models.admins import Admin


async def get_admin(viewer: Viewer, admin_id: int) -> Admin | None:
    """An admin of the viewer's partner; an admin of another partner reads as not found."""
    return await visible_admins(viewer).get_or_none(id=admin_id)
