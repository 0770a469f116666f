"""The strict-text check sits only on the fields whose arguments can hold a
String (schema/input_checks.py): each of those refuses bad text wherever it is
in a document, nested fields too; every other field resolves without it."""

from __future__ import annotations

import httpx
from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    TypeMetaFieldDef,
)

from app.models.enums import AdminRole
from schema.root import schema
from tests import factories
from tests.test_strict_input import post


def _reaches_string(type_: GraphQLInputType, seen: frozenset[str] = frozenset()) -> bool:
    if isinstance(type_, GraphQLNonNull | GraphQLList):
        return _reaches_string(type_.of_type, seen)
    if isinstance(type_, GraphQLInputObjectType):
        return type_.name not in seen and any(
            _reaches_string(f.type, seen | {type_.name}) for f in type_.fields.values()
        )
    return type_ is GraphQLString


def test_exactly_the_fields_with_string_arguments_are_checked() -> None:
    checked, unchecked = [], []
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType):
            continue
        for name, field in type_.fields.items():
            wanted = any(_reaches_string(a.type) for a in field.args.values())
            is_checked = getattr(field.resolve, "__input_checked__", False)
            assert is_checked == wanted, (type_.name, name)
            (checked if wanted else unchecked).append(f"{type_.name}.{name}")
    assert "Query.customers" in checked and "Customer.subscriptions" in checked
    assert "Mutation.createTag" in checked and "Customer.name" in unchecked
    assert len(unchecked) > 10 * len(checked)
    assert getattr(TypeMetaFieldDef.resolve, "__input_checked__", False)


async def test_a_nested_field_refuses_bad_text_and_a_clean_one_answers(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    await factories.customer(org, "Contoso")
    query = """query($after: String) { customers { nodes { name
      subscriptions(after: $after) { totalCount } } } }"""
    answer = await post(client, token, query, {"after": "x\u0085"})
    [error] = answer["errors"]
    assert error["message"].startswith("Argument `after` holds a control character"), error
    assert error["path"] == ["customers", "nodes", 0, "subscriptions"]
    answer = await post(client, token, query, {"after": None})
    assert "errors" not in answer, answer
    assert answer["data"]["customers"]["nodes"] == [
        {"name": "Contoso", "subscriptions": {"totalCount": 0}}
    ]
