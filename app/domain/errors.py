"""Errors the domain raises for the client to read.

- `InvalidArgument`: a query argument the client must fix (a GraphQL error).
- `MutationRejected`: a mutation input that was refused; it carries user errors
  with the path of the field at fault, and nothing was changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class InvalidArgument(Exception):
    """A query argument the client must fix; the message is written for the client."""


class Forbidden(InvalidArgument):
    """A query the viewer's role may not make; the message says which roles may."""


class UserErrorCode(StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    CONFLICT = "CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    # A service the mutation needs (the job queue) does not answer; retry later.
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class UserError:
    field: tuple[str, ...] | None
    message: str
    code: UserErrorCode


class MutationRejected(Exception):
    def __init__(self, errors: Sequence[UserError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)


def reject(field: Sequence[str] | None, message: str, code: UserErrorCode) -> MutationRejected:
    return MutationRejected([UserError(tuple(field) if field else None, message, code)])
