"""The static cost of a GraphQL operation, before it runs (README: query cost).

The conventions of Shopify's Admin API:
- a scalar or enum field costs 0;
- an object field costs 1 plus what is selected inside it;
- a connection (a field taking `first` that returns a `...Connection`) costs 2
  plus `first` (or its default page size) times the cost of one item selected
  in its `edges { node }` or `nodes`, plus the rest of its selection;
- a list of objects costs its declared maximum size (LIST_SIZES, or the
  `weeks` argument of a trend) times the cost of one item;
- each mutation field costs MUTATION_COST more, for the writes it makes.

Fragments and aliases count like fields written in place; a field skipped by
`@skip` / `@include` counts nothing; where fragments select on several
possible types of an interface, the costliest type counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast,
    value_from_ast_untyped,
)
from graphql.pyutils import Undefined as _UNDEFINED

from app.domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

CONNECTION_COST = 2
MUTATION_COST = 10
# A list of objects whose size no argument gives counts as this many items.
# Every object list of the schema has its own entry (tests/test_query_cost.py
# checks), so a new list gets a conscious number.
LIST_SIZES: dict[str, int] = {
    "Query.tags": 100,
    "Query.reportTemplates": 50,
    "Query.resources": 50,
    "Customer.tags": 20,  # PARTNERHUB_MAX_TAGS_PER_CUSTOMER's default
    "Customer.trials": 10,
    "Customer.partnerAdmins": 25,
    "Customer.externalAdmins": 25,
    "Customer.locations": 25,
    "CustomerSubscription.licenses": 10,
    "PartnerOrganization.subscriptions": 10,
    "OrganizationSubscription.licenses": 10,
    "CustomerSubscription.orders": 10,
    "Trial.products": 10,
    "ReportTemplate.columns": 60,
    "Report.columns": 60,
    "CallingAnalytics.qualityByEndpointType": 10,
    "CallingAnalytics.featureUse": 20,
    "CallingUsagePoint.usersByVolume": 10,
}
USER_ERRORS_SIZE = 5  # every payload's `userErrors`
TREND_ARGUMENT = "weeks"


class _Walk:
    """One cost computation: the schema, the document's fragments and the variables."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def selection_set(self, parent: GraphQLNamedType, selection_set: SelectionSetNode) -> int:
        """Fields on `parent` add up; fragments on another possible type of an
        interface count as the costliest such type."""
        common = 0
        by_type: dict[str, int] = {}
        for selection in selection_set.selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                common += self.field(parent, selection)
                continue
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None:
                    continue
                condition, inner = fragment.type_condition.name.value, fragment.selection_set
            else:
                assert isinstance(selection, InlineFragmentNode)
                condition = (
                    selection.type_condition.name.value if selection.type_condition else None
                )
                inner = selection.selection_set
            target = self.schema.get_type(condition) if condition else parent
            if target is None:
                continue
            cost = self.selection_set(target, inner)
            if condition is None or condition == parent.name or not _is_abstract(parent):
                common += cost
            else:
                by_type[condition] = by_type.get(condition, 0) + cost
        return common + max(by_type.values(), default=0)

    def field(self, parent: GraphQLNamedType, node: FieldNode) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
            return 0  # scalars and enums, and lists of them
        inner = self.selection_set(named, node.selection_set) if node.selection_set else 0
        if "first" in definition.args and named.name.endswith("Connection"):
            return CONNECTION_COST + self._connection(
                named, node, self._page_size(definition, node)
            )
        one = (0 if named.name.endswith("Edge") else 1) + inner
        if _is_list(definition.type):
            return self._list_size(parent, definition, node) * one
        return one

    def _connection(self, connection: GraphQLNamedType, node: FieldNode, size: int) -> int:
        """`edges` and `nodes` count `size` items; the rest of the selection once."""
        if node.selection_set is None:
            return 0
        total = 0
        for selection in node.selection_set.selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode) and selection.name.value in ("edges", "nodes"):
                definition = connection.fields[selection.name.value]  # type: ignore[union-attr]
                item = get_named_type(definition.type)
                inner = (
                    self.selection_set(item, selection.selection_set)
                    if selection.selection_set
                    else 0
                )
                total += size * ((0 if item.name.endswith("Edge") else 1) + inner)
            elif isinstance(selection, FieldNode):
                total += self.field(connection, selection)
            else:
                total += self.selection_set(connection, SelectionSetNode(selections=(selection,)))
        return total

    def _page_size(self, definition: GraphQLField, node: FieldNode) -> int:
        first = self._argument(definition, node, "first")
        if not isinstance(first, int) or isinstance(first, bool):
            return DEFAULT_PAGE_SIZE
        return max(0, min(first, MAX_PAGE_SIZE))

    def _list_size(
        self, parent: GraphQLNamedType, definition: GraphQLField, node: FieldNode
    ) -> int:
        if TREND_ARGUMENT in definition.args:
            weeks = self._argument(definition, node, TREND_ARGUMENT)
            if isinstance(weeks, int) and not isinstance(weeks, bool):
                return max(0, min(weeks, 520))
        if node.name.value == "userErrors":
            return USER_ERRORS_SIZE
        return LIST_SIZES.get(f"{parent.name}.{node.name.value}", max(LIST_SIZES.values()))

    def _argument(self, definition: GraphQLField, node: FieldNode, name: str) -> Any:
        argument = definition.args[name]
        for given in node.arguments or ():
            if given.name.value != name:
                continue
            if isinstance(given.value, VariableNode):
                value = self.variables.get(given.value.name.value)
                return argument.default_value if value is None else value
            return value_from_ast(given.value, argument.type, self.variables)
        default = argument.default_value
        return None if default is _UNDEFINED else default

    def included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            if isinstance(condition, VariableNode):
                value = self.variables.get(condition.name.value)
            else:
                value = getattr(condition, "value", None)
            if (name == "skip" and value is True) or (name == "include" and value is False):
                return False
        return True


def _is_abstract(type_: GraphQLNamedType) -> bool:
    return isinstance(type_, GraphQLInterfaceType | GraphQLUnionType)


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The static cost of the operation `operation_name` of a validated document
    (with no name and several operations: the costliest, whichever runs)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return max(
        (_operation_cost(schema, o, fragments, variables or {}) for o in operations), default=0
    )


def _operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    if root is None:
        return 0
    given = dict(variables)
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if given.get(name) is None and definition.default_value is not None:
            given[name] = value_from_ast_untyped(definition.default_value)
    walk = _Walk(schema, fragments, given)
    cost = walk.selection_set(root, operation.selection_set)
    if operation.operation is OperationType.MUTATION:
        cost += MUTATION_COST * sum(
            1
            for s in operation.selection_set.selections
            if isinstance(s, FieldNode) and walk.included(s)
        )
    return cost
