"""The one Relay connection of every list: `Connection[Node]` and `Edge[Node]`
(named `<Node>Connection` and `<Node>Edge` in the schema), with PageInfo."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Self, TypeVar

import strawberry

from app.domain.pagination import Page


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    cursors: strawberry.Private[Sequence[str]]

    @strawberry.field
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @strawberry.field
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None

    @classmethod
    def of(cls, page: Page) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            cursors=page.cursors,
        )


Node = TypeVar("Node")


@strawberry.type
class Edge(Generic[Node]):
    """A node with its cursor (made when a client reads it: `Cursors`)."""

    node: Node
    cursors: strawberry.Private[Sequence[str]]
    index: strawberry.Private[int]

    @strawberry.field
    def cursor(self) -> str:
        return self.cursors[self.index]


class Edges(Sequence[Any]):
    """A connection's edges, made the first time a client reads them (most
    selections read `nodes` only)."""

    __slots__ = ("_cursors", "_edge", "_made", "_nodes")

    def __init__(self, edge: type, nodes: list[Any], cursors: Sequence[str]) -> None:
        self._edge = edge
        self._nodes = nodes
        self._cursors = cursors
        self._made: list[Any] | None = None

    def _edges(self) -> list[Any]:
        if self._made is None:
            edge, cursors = self._edge, self._cursors
            self._made = [edge(node=n, cursors=cursors, index=i) for i, n in enumerate(self._nodes)]
        return self._made

    def __len__(self) -> int:
        return len(self._nodes)

    def __getitem__(self, index: Any) -> Any:
        return self._edges()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._edges())


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
        return cls(
            edges=Edges(cls._edge_type(), nodes, page.cursors),  # type: ignore[arg-type]
            nodes=nodes,
            page_info=PageInfo.of(page),
            total_count=page.total_count,
        )

    @classmethod
    def _edge_type(cls) -> type:
        return Edge
