"""UserError: a refused mutation input, as data."""

from __future__ import annotations

import strawberry

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
        return cls(
            field=list(error.field) if error.field else None, message=error.message, code=error.code
        )
