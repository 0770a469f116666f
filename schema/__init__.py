"""The GraphQL layer only: Strawberry types, inputs and resolvers that call app.domain."""

from schema.root import schema

__all__ = ["schema"]
