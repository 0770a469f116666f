"""PageInfo, shared by every connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from app.domain.pagination import Page


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )


def connection_parts(page: Page, node: Callable[[Any], Any], edge: type) -> dict[str, Any]:
    """edges, nodes, pageInfo and totalCount of a Relay connection over `page`."""
    nodes = [node(item) for item in page.items]
    return {
        "edges": [edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
        "nodes": nodes,
        "page_info": PageInfo.of(page),
        "total_count": page.total_count,
    }
