"""The one Relay connection of every list: `Connection[Node]` and `Edge[Node]`
(named `<Node>Connection` and `<Node>Edge` in the schema), with PageInfo."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar

import strawberry

from app.domain.lookups import customers_by_ids
from app.domain.pagination import Page, offset_cursors, offset_window


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


Node = TypeVar("Node")


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    """A page of a list: its nodes (also as edges with their cursors), the page's
    place in the list and the list's total. A list whose node type's name is not
    the connection's prefix subclasses it with its own names."""

    edges: list[Edge[Node]]
    nodes: list[Node]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page, node: Callable[[Any], Node]) -> Self:
        """The connection of `page`, each item made a node by `node`."""
        nodes = [node(item) for item in page.items]
        edge = cls._edge_type()
        return cls(
            edges=[edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo.of(page),
            total_count=page.total_count,
        )

    @classmethod
    def _edge_type(cls) -> type:
        return Edge


def connection_parts(page: Page, node: Callable[[Any], Any], edge: type) -> dict[str, Any]:
    """edges, nodes, pageInfo and totalCount of a Relay connection over `page`."""
    nodes = [node(item) for item in page.items]
    return {
        "edges": [edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
        "nodes": nodes,
        "page_info": PageInfo.of(page),
        "total_count": page.total_count,
    }


async def customer_rows(
    connection: type,
    kind: str,
    first: int | None,
    after: str | None,
    fetch: Callable[[int, int], Awaitable[tuple[int, list]]],
    customer_id: Callable[[Any], int],
    node: Callable[[Any, Any], Any],
) -> Any:
    """A connection of analytics rows with offset cursors: `fetch(offset, size)`
    gives (total, rows); the rows' customers load in one query, so each section
    costs the same whatever the timing of the others."""
    offset, size = offset_window(first, after, kind)
    total, rows = await fetch(offset, size)
    customers = await customers_by_ids([customer_id(r) for r in rows])
    page = Page(
        items=rows,
        cursors=offset_cursors(kind, offset, len(rows)),
        has_next_page=offset + len(rows) < total,
        has_previous_page=offset > 0,
        total_count=total,
    )
    return connection(
        nodes=[node(r, customers[customer_id(r)]) for r in rows],
        page_info=PageInfo.of(page),
        total_count=total,
    )
