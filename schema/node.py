"""The Node interface and `node(id:)`: any object by its global id, within the
viewer's scope. Out of scope, malformed and unknown ids all answer null."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from app.domain.ids import decode_global_id
from schema.context import Info


@strawberry.interface(name="Node", description="An object with a global, opaque id.")
class Node:
    id: strawberry.ID


# Type name -> coroutine that loads that type for the viewer (None when out of scope).
NodeLoader = Callable[[Info, int], Awaitable[Any]]
_LOADERS: dict[str, NodeLoader] = {}


def node_loader(type_name: str) -> Callable[[NodeLoader], NodeLoader]:
    """Register how `node(id:)` loads objects of `type_name`."""

    def register(loader: NodeLoader) -> NodeLoader:
        _LOADERS[type_name] = loader
        return loader

    return register


async def resolve_node(info: Info, id: strawberry.ID) -> Node | None:
    decoded = decode_global_id(str(id))
    if decoded is None:
        return None
    type_name, pk = decoded
    loader = _LOADERS.get(type_name)
    if loader is None:
        return None
    return await loader(info, pk)
