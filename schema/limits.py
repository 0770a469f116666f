"""Before an operation runs: a viewer, a cost within the maximum, and enough
points in the viewer's bucket (README: query cost and throttling).

Every answer carries `extensions.cost` (Shopify's shape): the requested and
actual cost and the bucket's state. A refusal runs no resolver and no SQL.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    Visitor,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.throttle import ThrottleStatus
from schema.context import Context
from schema.memo import frozen, remember
from schema.query_cost import query_cost


def _refusal(message: str, **extensions: Any) -> GraphQLExecutionResult:
    return GraphQLExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


# Per-document answers kept (bounded LRU, per process), by id of the parsed
# document (schema/root.py's ParserCache gives the same text the same node); the
# document (and schema) are kept with the answer so that their ids name no other.
DOCUMENT_ANSWERS_SIZE = 256
_EMPTY_SELECTION: OrderedDict[int, tuple[DocumentNode, bool]] = OrderedDict()
_COSTS: OrderedDict[tuple[Any, ...], tuple[GraphQLSchema, DocumentNode, int]] = OrderedDict()


def _has_empty_selection(document: DocumentNode) -> bool:
    """Whether a selection set of the document selects nothing (once per document)."""
    known = _EMPTY_SELECTION.get(id(document))
    if known is not None and known[0] is document:
        _EMPTY_SELECTION.move_to_end(id(document))
        return known[1]
    found = _find_empty_selection(document)
    remember(_EMPTY_SELECTION, id(document), (document, found), DOCUMENT_ANSWERS_SIZE)
    return found


def _cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> int:
    """`query_cost`, once per schema, document, operation name and variable values
    (it depends on nothing else)."""
    try:
        key: tuple[Any, ...] | None = (
            id(schema),
            id(document),
            operation_name,
            frozen(variables or {}),
        )
    except TypeError:  # a value that is no JSON value: computed every time
        key = None
    known = _COSTS.get(key) if key is not None else None
    if known is not None and known[0] is schema and known[1] is document:
        _COSTS.move_to_end(key)
        return known[2]
    cost = query_cost(schema, document, operation_name, variables)
    if key is not None:
        remember(_COSTS, key, (schema, document, cost), DOCUMENT_ANSWERS_SIZE)
    return cost


def _find_empty_selection(document: DocumentNode) -> bool:
    found = False

    class Empty(Visitor):
        def enter_selection_set(self, node: SelectionSetNode, *_: Any) -> None:
            nonlocal found
            found = found or not node.selections

    visit(document, Empty())
    return found


def cost_extension(requested: int, actual: int, status: ThrottleStatus | None) -> dict[str, Any]:
    """The `extensions.cost` of an answer."""
    throttle = (
        {
            "maximumAvailable": status.maximum_available,
            "currentlyAvailable": status.currently_available,
            "restoreRate": status.restore_rate,
        }
        if status is not None
        else None
    )
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": throttle,
    }


class OperationLimits(SchemaExtension):
    """Refuses an operation without a viewer (UNAUTHENTICATED), a document of
    several operations without `operationName` (BAD_REQUEST), one above the maximum
    cost (MAX_COST_EXCEEDED) or above what the viewer's bucket holds (THROTTLED,
    with Retry-After); otherwise takes its cost from the bucket."""

    def on_validate(self) -> Iterator[None]:
        """An empty selection set (`{}`) is refused before graphql-core's rules and
        Strawberry's depth limiter (which fails on one) see the document."""
        execution = self.execution_context
        if execution.graphql_document is not None and _has_empty_selection(
            execution.graphql_document
        ):
            execution.pre_execution_errors = [
                GraphQLError(
                    "A selection set ({ }) must select at least one field.",
                    extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
                )
            ]
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        refusal = await self._why_not()
        if refusal is not None:
            self.execution_context.result = refusal
        yield

    async def _why_not(self) -> GraphQLExecutionResult | None:
        """Why the operation may not run (as its answer), or None; sets
        `context.cost` for every operation it costs."""
        execution = self.execution_context
        context: Context = execution.context
        if getattr(context, "viewer", None) is None:
            return _refusal(
                "Sign in first: send `Authorization: Bearer <token>`.", code="UNAUTHENTICATED"
            )
        if execution.operation_type is OperationType.SUBSCRIPTION and context.response is not None:
            return _refusal(
                "Subscriptions run over the websocket (graphql-transport-ws at /graphql), "
                "not over HTTP.",
                code="BAD_REQUEST",
            )
        document = execution.graphql_document
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if execution._provided_operation_name is None and len(operations) > 1:
            return _refusal(
                "The document holds several operations: name the one to run in `operationName`.",
                code="BAD_REQUEST",
            )
        requested = _cost(
            execution.schema._schema, document, execution.operation_name, execution.variables
        )
        maximum = context.settings.max_query_cost
        if requested > maximum:
            context.cost = cost_extension(requested, 0, None)
            return _refusal(
                f"The query costs {requested} points, over the maximum of {maximum}: ask "
                "for smaller pages (`first`) or fewer nested fields.",
                code="MAX_COST_EXCEEDED",
                cost=requested,
                maxCost=maximum,
            )
        throttle = context.throttle
        status = (
            await throttle.take(f"admin:{context.viewer.admin.id}", requested)
            if throttle is not None
            else None
        )
        if status is not None and not status.allowed:
            context.cost = cost_extension(requested, 0, status)
            retry_after = max(1, math.ceil(status.retry_after))
            if context.response is not None:
                context.response.status_code = 429
                context.response.headers["Retry-After"] = str(retry_after)
            return _refusal(
                f"Throttled: the query costs {requested} points and {status.currently_available} "
                f"are available ({status.restore_rate:g} come back each second); retry in "
                f"{retry_after} s.",
                code="THROTTLED",
                retryAfterSeconds=retry_after,
            )
        context.cost = cost_extension(requested, requested, status)
        return None

    def get_results(self) -> dict[str, Any]:
        cost = getattr(self.execution_context.context, "cost", None)
        return {"cost": cost} if cost is not None else {}
