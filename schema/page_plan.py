"""Compiled plans: a customer page completed without graphql-core's per-field work.

A page of customers is read in a few statements into plain objects before any
of its fields resolves (`CustomerConnection.read`, `load_customer`); what is
left is graphql-core's completion of some 1,500 fields a page, each with its
own resolve info, path, argument dictionary and type dispatch. For a query
whose every root field is one of PLANNED_ROOTS (`customers`, `customer(id:)`,
plus `__typename`), this module compiles the selection once into a tree of
`_Field`/`_Out` nodes and completes the root fields' values by walking it.

The hook is graphql-core's executor class (`PagePlanExecutor`, given to the
Strawberry schema as `execution_context_class` in schema/root.py). It was
chosen over schema/asgi.py's `execute_single` or a Strawberry extension because
everything before and around the completion stays graphql-core's and
Strawberry's own: parsing and validation, the query-cost limits and
throttle (schema/limits.py runs in `on_execute` before the executor is built),
variable coercion, the root resolvers (with their strict-text argument checks,
schema/input_checks.py, and their database reads), error logging and policy,
metrics, `extensions.cost` and the response encoding. The executor replaces
only `complete_value` of a planned root field's resolved value.

Compilation (`_compile`) uses graphql-core's own `collect_fields` /
`collect_subfields` with the request's fragments and variables, so aliases,
named and inline fragments, type conditions, field merging and `@skip` /
`@include` are graphql-core's; nested field arguments are coerced with
graphql-core's `get_argument_values`. A plan therefore depends on the values of
the variables the nested selections use: the cache key is the operation node
(documents are cached by Strawberry's ParserCache, so the same text gives the
same node) and those values; PLAN_CACHE_SIZE plans are kept (LRU).

A document is not planned (graphql-core executes it as before) when anything
in it is outside what the walker does: a mutation or subscription, another root
field, a directive other than `@skip`/`@include`, a field returning an
interface or union, a field whose Strawberry resolver is async or carries
field extensions, graphql-core middleware.

The walk (`_Walk`) gets each value as graphql-core would: a Strawberry field
without resolver is read with `getattr` (what Strawberry's `_get_basic_result`
does). A field with a resolver whose arguments are plain scalars calls that
resolver as Strawberry's wrapper does (`get_arguments`, then `get_result`):
self or parent/root given the object, `info` a Strawberry Info over a resolve
info built by the executor's `build_resolve_info` with its real path, the
arguments converted by Strawberry's `convert_arguments` (once per plan) after
the strict-text check (schema/input_checks.py `arguments_fault`; a refused
value goes the wrapped way and answers its error). Any other resolver field
calls the GraphQL field's own `resolve` (Strawberry's wrapper, behind the
strict-text check when the field has one) with such a resolve info. Leaves
are coerced by their type's `coerce_output_value`; a `str` for String/ID, a
`bool` for Boolean and a 32-bit `int` for Int are what coercion returns
unchanged, so they are taken as they are, and enum values are coerced once per
value and remembered. Objects are checked with their type's `is_type_of`
(called without a resolve info: Strawberry's looks at the value only).

Whenever the walk meets anything it does not answer itself (a resolver
returning an awaitable, a null in a non-null position, any exception: a bad
`first`, an invalid cursor, a value a type refuses), it abandons that root
field and graphql-core completes the same resolved value from the start, so
errors, their paths and partial data are exactly graphql-core's. The resolvers
the walk may run twice answer from memory.

STATS counts planned completions and fallbacks (tests assert the plan ran),
`last_refusal` says why the last document compiled was not planned, and
`enabled = False` turns plans off (bench/spa_page.py times both paths).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Iterable
from keyword import iskeyword
from typing import Any

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetailsList,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined, is_iterable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments

from schema.input_checks import arguments_fault
from schema.memo import frozen, remember

# Root fields a plan completes; any other root field (but __typename) leaves
# the document to graphql-core.
PLANNED_ROOTS = frozenset({"customers", "customer"})
PLAN_CACHE_SIZE = 256
TYPENAME = "__typename"

# What the walk did, for tests and benchmarks: root fields completed by a plan,
# root fields given back to graphql-core mid-walk, operations not planned.
STATS = {"planned": 0, "fallback": 0, "unplanned": 0}

# Why the last document compiled was not planned (an _Unsupported or another error).
last_refusal: Exception | None = None

# Turned off (by a benchmark comparing both paths), every operation runs as before.
enabled = True

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# Kinds of output position.
_STR, _INT, _BOOL, _ENUM, _SCALAR, _LIST, _OBJECT = range(7)
# Kinds of field: an attribute, Strawberry's resolver called directly, the
# GraphQL field's own resolve (Strawberry's wrapper), __typename.
_ATTR, _CALL, _RESOLVE, _TYPENAME = range(4)
# Arguments Strawberry passes to a resolver as they come (no input type to build).
_PLAIN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})


class _Unsupported(Exception):
    """The document holds something a plan does not complete."""


class _GiveBack(Exception):
    """The walk met something graphql-core must complete itself."""


class _Out:
    """What a position of the answer holds: its kind, nullability and inner parts."""

    __slots__ = ("coerce", "enum_values", "kind", "non_null", "of", "paths", "plan")

    def __init__(self, kind: int, non_null: bool) -> None:
        self.kind = kind
        self.non_null = non_null
        # Whether a resolver below sees its path (else the walk builds none).
        self.paths = False
        self.of: _Out | None = None  # a list's items
        self.plan: _ObjectPlan | None = None  # an object's fields
        self.coerce: Any = None  # a leaf type's coerce_output_value
        self.enum_values: dict[tuple[type, Any], str] | None = None


class _Field:
    """One response key of an object: how its value is had and what it becomes."""

    __slots__ = (
        "args",
        "attribute",
        "definition",
        "field_def",
        "info_name",
        "key",
        "kind",
        "nodes",
        "out",
        "pass_self",
        "resolve",
        "source_names",
    )

    def __init__(self, key: str, kind: int) -> None:
        self.key = key
        self.kind = kind
        self.attribute = ""
        self.definition: Any = None  # the Strawberry field
        self.pass_self = False
        self.info_name: str | None = None
        self.source_names: tuple[str, ...] = ()
        self.field_def: GraphQLField | None = None
        self.nodes: list[FieldNode] = []
        self.args: dict[str, Any] = {}
        self.resolve: Any = None
        self.out: _Out | None = None


class _ObjectPlan:
    __slots__ = ("fields", "is_type_of", "name", "run", "type")

    def __init__(self, type_: GraphQLObjectType) -> None:
        self.type = type_
        self.name = type_.name
        self.is_type_of = type_.is_type_of
        self.fields: list[_Field] = []
        # The object's completion, generated from its fields (`_generate`):
        # run(walk, value, path) -> the answer's dict.
        self.run: Any = None


class _Plan:
    """The compiled operation: the plan of each planned root field, by response key."""

    __slots__ = ("operation", "roots")

    def __init__(self, operation: OperationDefinitionNode, roots: dict[str, _Out]) -> None:
        self.operation = operation  # kept alive: its id is part of the cache key
        self.roots = roots


# (id(operation), variable values) -> (operation, plan or None for a document
# not planned); the operation is kept so that its id names no other one.
_PLANS: OrderedDict[tuple[Any, ...], tuple[OperationDefinitionNode, _Plan | None]] = OrderedDict()
# id(operation) -> (operation, names of the variables a plan depends on).
_PLAN_VARIABLES: OrderedDict[int, tuple[OperationDefinitionNode, tuple[str, ...]]] = OrderedDict()
_MISSING = object()


class _Variables(Visitor):
    """Names of the variables used anywhere but in the root fields' own arguments."""

    def __init__(self, skip: set[int]) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.skip = skip

    def enter_argument(self, node: Any, *_: Any) -> Any:
        if id(node) in self.skip:
            return self.SKIP
        return None

    def enter_variable(self, node: Any, *_: Any) -> None:
        self.names.add(node.name.value)


def _plan_variables(
    operation: OperationDefinitionNode, fragments: Iterable[Any]
) -> tuple[str, ...]:
    root_arguments = {
        id(argument)
        for selection in operation.selection_set.selections
        if isinstance(selection, FieldNode)
        for argument in selection.arguments or ()
    }
    found = _Variables(root_arguments)
    visit(operation.selection_set, found)
    for fragment in fragments:
        visit(fragment, found)
    return tuple(sorted(found.names))


def _no_resolver(*_: Any) -> None:
    return None


def _has_middleware(executor: Any) -> bool:
    """Whether graphql-core middleware wraps the resolvers (Strawberry always passes
    a manager; an empty one gives each resolver back unwrapped)."""
    manager = executor.middleware_manager
    return manager is not None and manager.get_field_resolver(_no_resolver) is not _no_resolver


class PagePlanExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's graphql-core executor, completing planned root fields by their plan."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        plan = self._plan() if enabled else None
        if plan is None:
            STATS["unplanned"] += 1
        else:
            self._page_plan = plan
            strawberry_schema = (self.schema.extensions or {}).get("strawberry-definition")
            self.page_plan_info_class = (
                strawberry_schema.config.info_class if strawberry_schema is not None else None
            )
            self._given_back: set[str | int] = set()
            # Shadows the method for this execution only: every other
            # executor completes exactly as graphql-core does.
            self.complete_value = self._complete_planned  # type: ignore[method-assign]
        result = super().execute_operation(serially)
        if plan is None:
            return result
        if self.is_awaitable(result):
            return self._unshadow_after(result)
        self._unshadow()
        return result

    def _unshadow(self) -> None:
        """Drops the shadowing bound method (a cycle through the executor)."""
        self.__dict__.pop("complete_value", None)

    async def _unshadow_after(self, result: Any) -> Any:
        try:
            return await result
        finally:
            self._unshadow()

    def _plan(self) -> _Plan | None:
        operation = self.operation
        if operation.operation != OperationType.QUERY:
            return None
        if operation.directives or _has_middleware(self):
            return None
        known = _PLAN_VARIABLES.get(id(operation))
        if known is None or known[0] is not operation:
            known = (
                operation,
                _plan_variables(operation, self.fragment_definitions.values()),
            )
            remember(_PLAN_VARIABLES, id(operation), known, PLAN_CACHE_SIZE)
        coerced = self.variable_values.coerced
        try:
            key: tuple[Any, ...] | None = (
                id(operation),
                *(frozen(coerced.get(name, _MISSING)) for name in known[1]),
            )
            hash(key)
        except TypeError:
            key = None
        cached = _PLANS.get(key) if key is not None else None
        if cached is not None and cached[0] is operation:
            _PLANS.move_to_end(key)
            return cached[1]
        try:
            plan: _Plan | None = self._compile()
        except Exception as refused:  # anything the plan does not know: graphql-core answers
            global last_refusal
            last_refusal = refused
            plan = None
        if key is not None:
            remember(_PLANS, key, (operation, plan), PLAN_CACHE_SIZE)
        return plan

    def _compile(self) -> _Plan:
        schema = self.schema
        root_type = schema.query_type
        assert root_type is not None
        grouped, defers, forbidden = collect_fields(
            schema,
            self.fragments,
            self.variable_values,
            root_type,
            self.operation,
            self.hide_suggestions,
        )
        if defers or forbidden:
            raise _Unsupported
        roots: dict[str, _Out] = {}
        for key, details in grouped.items():
            name = details[0].node.name.value
            if name == TYPENAME:
                continue
            if name not in PLANNED_ROOTS:
                raise _Unsupported
            field_def = root_type.fields[name]
            roots[key] = self._out(field_def.type, details)
        if not roots:
            raise _Unsupported
        return _Plan(self.operation, roots)

    def _out(self, type_: GraphQLOutputType, details: FieldDetailsList) -> _Out:
        non_null = isinstance(type_, GraphQLNonNull)
        if non_null:
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            out = _Out(_LIST, non_null)
            out.of = self._out(type_.of_type, details)
            out.paths = out.of.paths
            return out
        if isinstance(type_, GraphQLEnumType):
            out = _Out(_ENUM, non_null)
            out.coerce = type_.coerce_output_value
            out.enum_values = {}
            return out
        if isinstance(type_, GraphQLScalarType):
            kind = (
                _STR
                if type_ is GraphQLString or type_ is GraphQLID
                else _INT
                if type_ is GraphQLInt
                else _BOOL
                if type_ is GraphQLBoolean
                else _SCALAR
            )
            out = _Out(kind, non_null)
            out.coerce = type_.coerce_output_value
            return out
        if isinstance(type_, GraphQLObjectType):
            out = _Out(_OBJECT, non_null)
            out.plan = self._object_plan(type_, details)
            out.paths = any(
                f.kind in (_CALL, _RESOLVE) or (f.out is not None and f.out.paths)
                for f in out.plan.fields
            )
            return out
        raise _Unsupported  # an interface or a union

    def _object_plan(self, type_: GraphQLObjectType, details: FieldDetailsList) -> _ObjectPlan:
        grouped, defers, forbidden = collect_subfields(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            type_,
            details,
            self.hide_suggestions,
        )
        if defers or forbidden:
            raise _Unsupported
        plan = _ObjectPlan(type_)
        for key, field_details in grouped.items():
            first = field_details[0]
            if first.fragment_variable_values is not None or first.defer_usage is not None:
                raise _Unsupported
            node = first.node
            name = node.name.value
            if name == TYPENAME:
                plan.fields.append(_Field(key, _TYPENAME))
                continue
            field_def = type_.fields.get(name)
            if field_def is None:
                raise _Unsupported
            definition = (field_def.extensions or {}).get("strawberry-definition")
            if definition is None or definition.extensions or definition.is_async:
                raise _Unsupported
            resolve = field_def.resolve
            if resolve is None:
                raise _Unsupported
            if getattr(resolve, "_is_default", False) and not definition.base_resolver:
                field = _Field(key, _ATTR)
                field.attribute = definition.python_name
            else:
                args = (
                    get_argument_values(
                        field_def, node, self.variable_values, None, self.hide_suggestions
                    )
                    if field_def.args or node.arguments
                    else {}
                )
                field = self._direct_call(key, definition, field_def, args)
                if field is None:
                    field = _Field(key, _RESOLVE)
                    field.resolve = resolve
                    field.args = args
                field.field_def = field_def
                field.nodes = [d.node for d in field_details]
            field.out = self._out(field_def.type, field_details)
            plan.fields.append(field)
        plan.run = _generate(plan)
        return plan

    def _direct_call(
        self, key: str, definition: Any, field_def: GraphQLField, args: dict[str, Any]
    ) -> _Field | None:
        """The field's Strawberry resolver called as Strawberry's wrapper calls it
        (`get_arguments`, then `field.get_result`), with the arguments converted
        once by Strawberry's `convert_arguments`, when nothing else stands
        between: plain scalar arguments that pass the strict-text check, no field
        extension, no exception handler. None: call the GraphQL field's resolve."""
        resolver = definition.base_resolver
        strawberry_schema = (self.schema.extensions or {}).get("strawberry-definition")
        if resolver is None or strawberry_schema is None or strawberry_schema.exception_handlers:
            return None
        for argument in field_def.args.values():
            type_ = argument.type
            if isinstance(type_, GraphQLNonNull):
                type_ = type_.of_type
            if not isinstance(type_, GraphQLScalarType) or type_.name not in _PLAIN_SCALARS:
                return None
        if getattr(field_def.resolve, "__input_checked__", False) and arguments_fault(
            field_def.args, args
        ):
            return None  # the wrapped resolve answers the refusal
        field = _Field(key, _CALL)
        field.definition = definition
        field.resolve = resolver.wrapped_func
        field.args = convert_arguments(
            args,
            definition.arguments,
            scalar_registry=strawberry_schema.schema_converter.scalar_registry,
            config=strawberry_schema.config,
        )
        field.pass_self = resolver.self_parameter is not None
        field.info_name = resolver.info_parameter.name if resolver.info_parameter else None
        field.source_names = tuple(
            parameter.name
            for parameter in (resolver.parent_parameter, resolver.root_parameter)
            if parameter is not None
        )
        return field

    def _complete_planned(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        out = self._page_plan.roots.get(path.key) if path.prev is None else None
        if out is not None and path.key not in self._given_back:
            try:
                completed = _Walk(self).complete(out, result, path)
            except Exception:
                STATS["fallback"] += 1
                # graphql-core completes a non-null root through this method again.
                self._given_back.add(path.key)
            else:
                STATS["planned"] += 1
                return completed
        return StrawberryGraphQLCoreExecutionContext.complete_value(
            self, return_type, field_details_list, info, path, result, position_context
        )


class _Walk:
    """One root field's value completed by its plan.

    Paths are built only where a resolver below can see them (`_Out.paths`)."""

    __slots__ = ("build_info", "info_class", "is_awaitable", "lazy_info")

    def __init__(self, executor: PagePlanExecutor) -> None:
        self.build_info = executor.build_resolve_info
        self.is_awaitable = executor.is_awaitable
        self.info_class = executor.page_plan_info_class
        self.lazy_info = _lazy_info_class(self.info_class)

    def complete(self, out: _Out, value: Any, path: Path | None) -> Any:
        if value is None or value is Undefined:
            if out.non_null:
                raise _GiveBack
            return None
        kind = out.kind
        if kind == _STR:
            return value if type(value) is str else _leaf(out, value)
        if kind == _OBJECT:
            return out.plan.run(self, value, path)  # type: ignore[union-attr]
        if kind == _LIST:
            if type(value) is not list and type(value) is not tuple:
                if isinstance(value, Exception) or not is_iterable(value):
                    raise _GiveBack
            inner: _Out = out.of  # type: ignore[assignment]
            complete = self.complete
            if inner.paths:
                return [complete(inner, item, Path(path, i, None)) for i, item in enumerate(value)]
            if inner.kind == _ENUM:
                return [_enum(inner, item) for item in value]
            return [complete(inner, item, None) for item in value]
        if kind == _ENUM:
            return _enum(out, value)
        if kind == _INT:
            if type(value) is int and _INT_MIN <= value <= _INT_MAX:
                return value
            return _leaf(out, value)
        if kind == _BOOL and type(value) is bool:
            return value
        return _leaf(out, value)


# Info classes whose resolve info is built when a resolver first reads it, by
# the Strawberry Info class they extend.
_LAZY_INFO: dict[Any, Any] = {}


def _lazy_info_class(info_class: Any) -> Any:
    """A subclass of the schema's Info class whose `_raw_info` (graphql-core's
    resolve info, with its path) is built by the executor's `build_resolve_info`
    the first time the resolver reads it: a resolver answering from memory never
    does. Whatever it reads is what an eagerly built Info would hold."""
    if info_class is None:
        return None
    found = _LAZY_INFO.get(info_class)
    if found is not None:
        return found

    class LazyInfo(info_class):  # type: ignore[misc, valid-type]
        def __init__(
            self, walk: _Walk, field: _Field, plan: _ObjectPlan, parent: Any, path: Any
        ) -> None:
            self._field = field.definition
            self._lazy = (walk, field, plan, parent, path)

        @property  # type: ignore[misc]
        def _raw_info(self) -> GraphQLResolveInfo:
            built = self.__dict__.get("_built")
            if built is None:
                walk, field, plan, parent, path = self._lazy
                if path is None:
                    path = Path(parent, field.key, plan.name)
                built = self.__dict__["_built"] = walk.build_info(
                    field.field_def,  # type: ignore[arg-type]
                    field.nodes,
                    plan.type,
                    path,
                )
            return built

    LazyInfo.__name__ = LazyInfo.__qualname__ = f"Lazy{info_class.__name__}"
    _LAZY_INFO[info_class] = LazyInfo
    return LazyInfo


def _not_type(matches: Any) -> None:
    """is_type_of refused the value (or answered an awaitable): graphql-core completes."""
    if inspect.iscoroutine(matches):
        matches.close()
    raise _GiveBack


def _awaited(result: Any) -> None:
    """A resolver answered an awaitable: graphql-core completes."""
    if inspect.iscoroutine(result):
        result.close()
    raise _GiveBack


def _generate(plan: _ObjectPlan) -> Any:
    """The completion of one object of `plan` as a Python function, generated
    once per plan: each field read, resolved and completed in turn, as the
    interpreting walk (`_Walk.complete`) would, with no per-field dispatch.

    Every value the fast paths below do not take as it is goes through
    `_Walk.complete`, so both give the same answer and give back alike."""
    constants: dict[str, Any] = {
        "Path": Path,
        "Undefined": Undefined,
        "_GiveBack": _GiveBack,
        "_enum": _enum,
        "_not_type": _not_type,
        "_awaited": _awaited,
        "NAME": plan.name,
        "PLAN": plan,
        "is_type_of": plan.is_type_of,
    }
    body = ["    if isinstance(value, Exception):", "        raise _GiveBack"]
    if plan.is_type_of is not None:
        body += ["    matches = is_type_of(value, None)", "    if matches is not True:"]
        body += ["        _not_type(matches)"]
    if any(f.kind in (_CALL, _RESOLVE) for f in plan.fields):
        body.append("    is_awaitable = walk.is_awaitable")
    keys = []
    for i, field in enumerate(plan.fields):
        v = f"v{i}"
        constants[f"F{i}"] = field
        constants[f"K{i}"] = field.key
        keys.append(f"K{i}: {v}")
        if field.kind == _TYPENAME:
            body.append(f"    {v} = NAME")
            continue
        out: _Out = field.out  # type: ignore[assignment]
        constants[f"O{i}"] = out
        path = f"Path(path, K{i}, NAME)" if out.paths else "None"
        if field.kind == _ATTR:
            constants[f"A{i}"] = field.attribute
            attribute = field.attribute
            if attribute.isidentifier() and not iskeyword(attribute) and "__" not in attribute:
                body.append(f"    {v} = value.{attribute}")
            else:
                body.append(f"    {v} = getattr(value, A{i})")
        elif field.kind == _CALL:
            constants[f"R{i}"] = field.resolve
            constants[f"G{i}"] = field.args
            if out.paths:
                body.append(f"    p{i} = {path}")
                path = f"p{i}"
            lazy = f"walk.lazy_info(walk, F{i}, PLAN, path, {path})"
            names = [*([field.info_name] if field.info_name else []), *field.source_names]
            if (
                not field.args
                and all(_plain_name(name) for name in names)
                and len(set(names)) == len(names)
            ):
                # Each keyword written out: no dictionary to build and unpack.
                given = [f"{field.info_name}={lazy}"] if field.info_name is not None else []
                given += [f"{name}=value" for name in field.source_names]
            else:
                body.append(f"    kw = dict(G{i})" if field.args else "    kw = {}")
                if field.info_name is not None:
                    constants[f"I{i}"] = field.info_name
                    body.append(f"    kw[I{i}] = {lazy}")
                for n, name in enumerate(field.source_names):
                    constants[f"S{i}_{n}"] = name
                    body.append(f"    kw[S{i}_{n}] = value")
                given = ["**kw"]
            call = f"R{i}({', '.join((['value'] if field.pass_self else []) + given)})"
            body += [f"    {v} = {call}", f"    if is_awaitable({v}):"]
            body.append(f"        _awaited({v})")
        else:  # _RESOLVE: the GraphQL field's own resolve, with a resolve info
            constants[f"R{i}"] = field.resolve
            constants[f"G{i}"] = field.args
            body.append(f"    p{i} = Path(path, K{i}, NAME)")
            path = f"p{i}"
            info = f"walk.build_info(F{i}.field_def, F{i}.nodes, PLAN.type, p{i})"
            body += [f"    {v} = R{i}(value, {info}, **G{i})", f"    if is_awaitable({v}):"]
            body.append(f"        _awaited({v})")
        body += _completion(v, out, f"O{i}", path, constants)
    body.append("    return {" + ", ".join(keys) + "}")
    source = "def run(walk, value, path):\n" + "\n".join(body) + "\n"
    namespace = dict(constants)
    exec(compile(source, f"<page plan {plan.name}>", "exec"), namespace)
    return namespace["run"]


def _plain_name(name: str) -> bool:
    """Whether `name` can be written as a keyword argument in generated code."""
    return name.isidentifier() and not iskeyword(name)


def _completion(v: str, out: _Out, name: str, path: str, constants: dict[str, Any]) -> list[str]:
    """Lines completing the value in variable `v` at an output position `out`
    (the constant `name`), taking as they are the values coercion keeps."""
    kind = out.kind
    slow = f"{v} = walk.complete({name}, {v}, {path})"
    if kind == _STR:
        return [f"    if type({v}) is not str:", f"        {slow}"]
    if kind == _INT:
        return [
            f"    if type({v}) is not int or not {_INT_MIN} <= {v} <= {_INT_MAX}:",
            f"        {slow}",
        ]
    if kind == _BOOL:
        return [f"    if type({v}) is not bool:", f"        {slow}"]
    if kind == _ENUM:
        # The value's coercion remembered by `_enum` (None is never remembered).
        constants[f"{name}_memo"] = out.enum_values
        return [
            f"    e = {name}_memo.get((type({v}), {v}))",
            f"    {v} = e if e is not None else _enum({name}, {v})",
        ]
    if kind == _OBJECT:
        constants[f"{name}_run"] = out.plan.run  # type: ignore[union-attr]
        return [
            f"    if {v} is None or {v} is Undefined:",
            f"        {slow}",
            "    else:",
            f"        {v} = {name}_run(walk, {v}, {path})",
        ]
    if kind == _LIST:
        inner: _Out = out.of  # type: ignore[assignment]
        constants[f"{name}_of"] = inner
        if inner.kind == _OBJECT and not inner.paths:
            constants[f"{name}_run"] = inner.plan.run  # type: ignore[union-attr]
            item = (
                f"{name}_run(walk, x, None) if x is not None and x is not Undefined"
                f" else walk.complete({name}_of, x, None)"
            )
        elif inner.kind == _ENUM:
            item = f"_enum({name}_of, x)"
        else:
            return [f"    {slow}"]
        return [
            f"    if type({v}) is list or type({v}) is tuple:",
            f"        {v} = [{item} for x in {v}]",
            "    else:",
            f"        {slow}",
        ]
    return [f"    {slow}"]


def _leaf(out: _Out, value: Any) -> Any:
    if isinstance(value, Exception):
        raise _GiveBack
    coerced = out.coerce(value)
    if coerced is None or coerced is Undefined:
        raise _GiveBack
    return coerced


def _enum(out: _Out, value: Any) -> Any:
    """An enum value coerced by its type, once per value and plan (the coercion
    depends on nothing but the value)."""
    if value is None:
        if out.non_null:
            raise _GiveBack
        return None
    memo: dict[tuple[type, Any], str] = out.enum_values  # type: ignore[assignment]
    key = (type(value), value)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _leaf(out, value)
    return found
