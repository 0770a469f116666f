"""The one Relay connection of every list: `Connection[Node]` and `Edge[Node]`
(named `<Node>Connection` and `<Node>Edge` in the schema), with PageInfo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

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
