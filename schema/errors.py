"""Error policy.

Clients see their own mistakes in full (validation errors, the domain's
InvalidArgument and Forbidden, refusals of the limits) with a code in
`extensions.code`; such errors are logged as one line at INFO with the
operation name and the code, no traceback. A resolver that lost the database
(refused, cut, shut down) answers `UNAVAILABLE` with a message to retry (the
view then answers HTTP 503 with Retry-After: schema/asgi.py); the outage is
logged once, when it starts. Any other exception is logged once with its
traceback and the request id, and reaches the client as "Unexpected error."
with the same `extensions.requestId`.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from app.domain.errors import Forbidden, InvalidArgument
from app.middleware import DATABASE_OUTAGE, DATABASE_UNREACHABLE
from app.outage import database_unreachable

log = logging.getLogger("partnerhub.graphql")

UNEXPECTED = "Unexpected error."
UNAVAILABLE = "UNAVAILABLE"


def _is_statement_timeout(error: BaseException | None) -> bool:
    """PostgreSQL cancelled a statement of the request (statement_timeout)."""
    while error is not None:
        if type(error).__name__ == "QueryCanceledError" or "statement timeout" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _lost_database(error: GraphQLError) -> bool:
    """The resolver could not reach the database (a statement that was merely
    wrong is a bug, not this)."""
    original = error.original_error
    return (
        original is not None
        and not isinstance(original, GraphQLError | InvalidArgument)
        and database_unreachable(original)
    )


def is_unexpected(error: GraphQLError) -> bool:
    """True for an exception the client did not cause and we cannot name (a bug)."""
    original = error.original_error
    return not (
        original is None
        or isinstance(original, GraphQLError | InvalidArgument)
        or _is_statement_timeout(original)
        or _lost_database(error)
    )


def error_code(error: GraphQLError) -> str:
    """The code a client error carries in `extensions.code`."""
    given = (error.extensions or {}).get("code")
    if given:
        return str(given)
    original = error.original_error
    if isinstance(original, Forbidden):
        return "FORBIDDEN"
    if isinstance(original, InvalidArgument):
        return "INVALID"
    if _is_statement_timeout(original):
        return "TIMEOUT"
    if _lost_database(error):
        return UNAVAILABLE
    if error.path is None:
        return "GRAPHQL_VALIDATION_FAILED"
    return "INVALID"


def _request_id(execution_context: ExecutionContext | None) -> str | None:
    context = getattr(execution_context, "context", None)
    return getattr(context, "request_id", None)


def log_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """One INFO line per client error; the traceback of an unexpected one, once;
    a lost database once per outage."""
    operation = getattr(execution_context, "operation_name", None) or "-"
    for error in errors:
        if _lost_database(error):
            assert error.original_error is not None
            DATABASE_OUTAGE.failed(error.original_error)
        elif is_unexpected(error):
            log.error(
                "unexpected error in operation %s at %s (request %s)",
                operation,
                ".".join(str(p) for p in error.path or ()) or "-",
                _request_id(execution_context) or "-",
                exc_info=error.original_error,
            )
        else:
            log.info(
                "client error in operation %s: %s: %s",
                operation,
                error_code(error),
                error.message[:300],
            )


class ErrorPolicy(MaskErrors):
    """Masks unexpected errors (with the request id) and gives every other error
    its code."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return apply_policy(errors, _request_id(self.execution_context))


def apply_policy(errors: list[GraphQLError], request_id: str | None) -> list[GraphQLError]:
    """Unexpected errors masked (with the request id), every other error coded
    (a lost database `UNAVAILABLE`, its message replaced by one to retry).
    ErrorPolicy applies it within an operation; the view applies it again to
    what ends outside one (Strawberry answers some failures after the
    extensions' hooks)."""
    processed: list[GraphQLError] = []
    for error in errors:
        if is_unexpected(error):
            extensions: dict[str, Any] = {"code": "INTERNAL_SERVER_ERROR"}
            if request_id:
                extensions["requestId"] = request_id
            processed.append(_with_extensions(error, UNEXPECTED, extensions, original=False))
        elif not (error.extensions or {}).get("code"):
            extensions = {**(error.extensions or {}), "code": error_code(error)}
            message = {
                "TIMEOUT": "The operation ran past its time limit and was stopped.",
                UNAVAILABLE: DATABASE_UNREACHABLE,
            }.get(extensions["code"], error.message)
            processed.append(_with_extensions(error, message, extensions, original=True))
        else:
            processed.append(error)
    return processed


def _with_extensions(
    error: GraphQLError, message: str, extensions: dict[str, Any], *, original: bool
) -> GraphQLError:
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error if original else None,
        extensions=extensions,
    )


def is_unavailable(errors: list[GraphQLError] | None) -> bool:
    """True when an error of the answer is the database being away (the view
    answers HTTP 503 with Retry-After then)."""
    return any((e.extensions or {}).get("code") == UNAVAILABLE for e in errors or ())
