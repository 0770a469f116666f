"""Before an operation runs: a viewer, a cost within the maximum, and enough
points in the viewer's bucket (README: query cost and throttling).

Every answer carries `extensions.cost` (Shopify's shape): the requested and
actual cost and the bucket's state. A refusal runs no resolver and no SQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from app.throttle import ThrottleStatus
from schema.context import Context
from schema.query_cost import query_cost


def _refusal(message: str, **extensions: Any) -> GraphQLExecutionResult:
    return GraphQLExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


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

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context: Context = execution.context
        if getattr(context, "viewer", None) is None:
            execution.result = _refusal(
                "Sign in first: send `Authorization: Bearer <token>`.", code="UNAUTHENTICATED"
            )
            yield
            return
        operations = [
            d
            for d in execution.graphql_document.definitions
            if isinstance(d, OperationDefinitionNode)
        ]
        if execution._provided_operation_name is None and len(operations) > 1:
            execution.result = _refusal(
                "The document holds several operations: name the one to run in `operationName`.",
                code="BAD_REQUEST",
            )
            yield
            return
        settings = context.settings
        requested = query_cost(
            execution.schema._schema,
            execution.graphql_document,
            execution.operation_name,
            execution.variables,
        )
        maximum = settings.max_query_cost
        if requested > maximum:
            context.cost = cost_extension(requested, 0, None)
            execution.result = _refusal(
                f"The query costs {requested} points, over the maximum of {maximum}: ask "
                "for smaller pages (`first`) or fewer nested fields.",
                code="MAX_COST_EXCEEDED",
                cost=requested,
                maxCost=maximum,
            )
            yield
            return
        throttle = context.throttle
        status = (
            await throttle.take(f"admin:{context.viewer.admin.id}", requested)
            if throttle is not None
            else None
        )
        if status is not None and not status.allowed:
            context.cost = cost_extension(requested, 0, status)
            retry_after = max(1, int(status.retry_after + 0.999))
            if context.response is not None:
                context.response.status_code = 429
                context.response.headers["Retry-After"] = str(retry_after)
            execution.result = _refusal(
                f"Throttled: the query costs {requested} points and {status.currently_available} "
                f"are available ({status.restore_rate:g} come back each second); retry in "
                f"{retry_after} s.",
                code="THROTTLED",
                retryAfterSeconds=retry_after,
            )
            yield
            return
        context.cost = cost_extension(requested, requested, status)
        yield

    def get_results(self) -> dict[str, Any]:
        cost = getattr(self.execution_context.context, "cost", None)
        return {"cost": cost} if cost is not None else {}
