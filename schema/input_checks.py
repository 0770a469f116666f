"""Strict text in every argument a client sends, before any resolver runs.

Every String argument and String input field of the schema (variables and
literals alike, inside input objects and lists) is refused when it holds:

- a lone surrogate (U+D800 to U+DFFF): not a character, it cannot be stored;
- a control character: U+0000 to U+001F, U+007F, U+0080 to U+009F;
- a noncharacter: U+FDD0 to U+FDEF, and the last two code points of each plane;
- a line break or a tab (TAB, LF, CR, U+2028, U+2029) in a one-line value.
  Only the fields named in MULTI_LINE (tag descriptions) take several lines.

IDs are not checked here: they are decoded strictly where they are used, and an
id that is not one of ours reads as "no such object" (app/domain/ids.py).

A refused mutation field answers its payload with every other field null and
one INVALID user error whose `field` is the path of the value at fault (e.g.
["input", "name"]); any other field answers a GraphQL error naming the
argument. Either way no resolver runs for that field.

The check wraps the resolver of each field whose arguments can hold a String
(`install`, called once on the built schema), and of `__type(name:)`; every other
field resolves with no extra call (the check used to be graphql-core middleware,
which wraps every field of every answer).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    OperationType,
    TypeMetaFieldDef,
    default_field_resolver,
)

from app.domain.errors import InvalidArgument, UserErrorCode, reject
from app.domain.text import text_fault
from schema.payloads import mutate

# (input type, field): values that may span several lines (TAB, LF, CR, U+2028, U+2029).
MULTI_LINE: frozenset[tuple[str, str]] = frozenset(
    {("CreateTagInput", "description"), ("UpdateTagInput", "description")}
)

# Set on a resolver `install` made, so a field is never wrapped twice.
_CHECKED = "__input_checked__"


def _value_fault(
    type_: GraphQLInputType, value: Any, path: list[str], multi_line: bool
) -> tuple[list[str], str] | None:
    """(path, reason) of the first refused string in a coerced argument value."""
    if value is None:
        return None
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            fault = _value_fault(type_.of_type, item, [*path, str(index)], multi_line)
            if fault:
                return fault
        return None
    if isinstance(type_, GraphQLInputObjectType):
        for name, field in type_.fields.items():
            key = field.out_name or name
            if key in value:
                fault = _value_fault(
                    field.type, value[key], [*path, name], (type_.name, name) in MULTI_LINE
                )
                if fault:
                    return fault
        return None
    if type_ is GraphQLString and isinstance(value, str):
        reason = text_fault(value, multi_line=multi_line)
        return (path, reason) if reason else None
    return None


def arguments_fault(
    arguments: dict[str, GraphQLArgument], values: dict[str, Any]
) -> tuple[list[str], str] | None:
    """(path, reason) of the first refused string among a field's coerced arguments."""
    for name, argument in arguments.items():
        key = argument.out_name or name
        if key in values:
            fault = _value_fault(argument.type, values[key], [name], False)
            if fault:
                return fault
    return None


def _payload_class(info: GraphQLResolveInfo) -> type | None:
    """The payload class of a root mutation field that answers `userErrors`."""
    if info.operation.operation != OperationType.MUTATION or info.path.prev is not None:
        return None
    type_ = info.return_type
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLObjectType) or "userErrors" not in type_.fields:
        return None
    definition = (type_.extensions or {}).get("strawberry-definition")
    return getattr(definition, "origin", None)


def _refuse(info: GraphQLResolveInfo, path: list[str], reason: str) -> Awaitable[Any]:
    payload = _payload_class(info)
    if payload is None:
        raise InvalidArgument(f"Argument `{'.'.join(path)}` {reason}.")
    rejected = reject(path, f"`{path[-1]}` {reason}.", UserErrorCode.INVALID)

    async def refused() -> NoReturn:
        raise rejected

    return mutate(payload, refused, _unreachable)


def _unreachable(_: object) -> dict:
    raise AssertionError("a refused input has no result")


def _holds_strings(type_: GraphQLInputType, seen: set[str] | None = None) -> bool:
    """Whether a value of this input type can hold a String anywhere."""
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if type_ is GraphQLString:
        return True
    if isinstance(type_, GraphQLInputObjectType):
        seen = seen if seen is not None else set()
        if type_.name in seen:
            return False
        seen.add(type_.name)
        return any(_holds_strings(field.type, seen) for field in type_.fields.values())
    return False


def _checked(field: GraphQLField) -> Callable[..., Any]:
    """The field's resolver behind the argument check."""
    resolve = field.resolve or default_field_resolver
    arguments = field.args

    @functools.wraps(resolve)
    def checked(root: Any, info: GraphQLResolveInfo, **kwargs: Any) -> Any:
        if kwargs:
            fault = arguments_fault(arguments, kwargs)
            if fault is not None:
                return _refuse(info, *fault)
        return resolve(root, info, **kwargs)

    setattr(checked, _CHECKED, True)
    return checked


def _install_on(field: GraphQLField) -> None:
    if getattr(field.resolve, _CHECKED, False):
        return
    if any(_holds_strings(argument.type) for argument in field.args.values()):
        field.resolve = _checked(field)


def install(schema: GraphQLSchema) -> None:
    """Puts the check before the resolver of every field of the schema whose
    arguments can hold a String, and of `__type(name:)`.

    `__type` is graphql-core's own field definition, shared by every schema of
    the process: it is wrapped once, in place (the check is the same for all)."""
    for type_ in schema.type_map.values():
        if isinstance(type_, GraphQLObjectType):
            for field in type_.fields.values():
                _install_on(field)
    _install_on(TypeMetaFieldDef)
