"""Each GraphQL operation in the metrics (app/metrics.py) and in the logs.

OperationMetrics counts every operation by name and outcome and times queries
and mutations; it also binds the operation name and the viewer's partner id
to the logging context (app/logs.py), so every line logged while the
operation runs, uvicorn's access line included, says which operation it
served and for whom.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType
from structlog.contextvars import bind_contextvars

from app.metrics import count_operation
from schema.errors import error_code, is_unexpected

# Codes an operator watches on their own; any other client error is `user_error`.
WATCHED_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "THROTTLED",
        "MAX_COST_EXCEEDED",
        "TIMEOUT",
        "UNAVAILABLE",
        "BAD_REQUEST",
        "GRAPHQL_VALIDATION_FAILED",
    }
)
# Refusals Strawberry raises (the view answers HTTP 400): no query, an unknown
# operationName, a mutation over GET.
REFUSED_REQUESTS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)
# The longest operation name written to the logs.
LOGGED_NAME_CHARS = 128


def outcome_of(errors: list[GraphQLError] | None) -> str:
    """`ok`, `INTERNAL` (an unexpected error), a watched code, or `user_error`."""
    if not errors:
        return "ok"
    codes = ["INTERNAL" if is_unexpected(error) else str(error_code(error)) for error in errors]
    if "INTERNAL" in codes or "INTERNAL_SERVER_ERROR" in codes:
        return "INTERNAL"
    return codes[0] if codes[0] in WATCHED_CODES else "user_error"


class OperationMetrics(SchemaExtension):
    """Counts and times each operation; binds its name and partner for the logs.
    Listed before ErrorPolicy, so it sees the errors as the client gets them."""

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        started = time.perf_counter()
        viewer = getattr(execution.context, "viewer", None)
        if viewer is not None:
            bind_contextvars(partner_id=viewer.partner_id)
        self._bind_name(execution.operation_name)
        outcome = None
        try:
            yield
        except (asyncio.CancelledError, GeneratorExit):
            # Stopped from outside: the operation time limit (schema/asgi.py),
            # or a subscription whose client went away.
            outcome = "ok" if self._is_subscription() else "TIMEOUT"
            raise
        except REFUSED_REQUESTS:
            outcome = "BAD_REQUEST"
            raise
        except BaseException:
            outcome = "INTERNAL"
            raise
        finally:
            result = execution.result
            subscription = self._is_subscription()
            count_operation(
                execution.operation_name,
                outcome or outcome_of(getattr(result, "errors", None)),
                None if subscription else time.perf_counter() - started,
            )

    def on_parse(self) -> Iterator[None]:
        yield
        # Named by the document when the request gave no operationName.
        self._bind_name(self.execution_context.operation_name)

    @staticmethod
    def _bind_name(name: str | None) -> None:
        if name:
            bind_contextvars(operation=name[:LOGGED_NAME_CHARS])

    def _is_subscription(self) -> bool:
        try:
            return self.execution_context.operation_type is OperationType.SUBSCRIPTION
        except Exception:  # no document, or no operation of that name
            return False
