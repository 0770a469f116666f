"""UserError: a refused mutation input, as data."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from strawberry.utils.str_converters import to_camel_case

from app.domain.errors import MutationRejected
from app.domain.errors import UserError as UserErrorValue
from schema.enums import UserErrorCode


@strawberry.type(name="UserError")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input field at fault, e.g. ["input", "durationDays"].'
    )
    message: str
    code: UserErrorCode

    @classmethod
    def of(cls, error: UserErrorValue) -> UserError:
        """The domain's refusal with its field path in the schema's names: the
        domain says `("input", "customer_ids", "2")`, a client reads
        `["input", "customerIds", "2"]`."""
        return cls(
            field=[to_camel_case(part) for part in error.field] if error.field else None,
            message=error.message,
            code=error.code,
        )


@strawberry.type(name="DeletePayload")
class DeletePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.input(name="DeleteInput", description="Identifies the object to delete.")
class DeleteInput:
    id: strawberry.ID


P = TypeVar("P")
T = TypeVar("T")


async def mutate(
    payload: type[P], work: Callable[[], Awaitable[T]], shape: Callable[[T], dict]
) -> P:
    """Run a domain mutation: its result shaped into the payload, or its refusal
    as userErrors with every other payload field null."""
    try:
        result = await work()
    except MutationRejected as rejected:
        empty = {f.name: None for f in dataclasses.fields(payload) if f.name != "user_errors"}  # type: ignore[arg-type]
        return payload(**empty, user_errors=[UserError.of(e) for e in rejected.errors])
    return payload(**shape(result), user_errors=[])
