"""Strict decoding of everything a client sends, on both databases: global ids
and cursors in their canonical form only, with values of the right kind and
range; text without lone surrogates, control characters or noncharacters
(line breaks only where a value is multi-line); download signatures compared
with the canonical encoding. Each refusal is the documented answer (null, a
GraphQL error naming the argument, or a user error naming the input field),
never "Unexpected error.", and changes nothing."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from app.clock import utcnow
from app.config import Settings
from app.domain.downloads import sign_download
from app.domain.ids import MAX_PK, decode_global_id, max_pk
from app.domain.ids import encode_global_id as gid
from app.domain.pagination import MAX_SQL_INTEGER, encode_cursor
from app.models.enums import AdminRole
from app.models.tags import CustomerTag, Tag
from schema.input_checks import MULTI_LINE, arguments_fault, text_fault
from schema.root import schema
from tests import factories
from tests.graphql_client import data
from tests.test_mutation_matrix import MUTATIONS, TARGETLESS, build_matrix, everything

UNEXPECTED = "Unexpected error."
# Digits of other scripts that str.isdigit() and int() accept: U+FF10.., U+0660..
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


async def post(
    client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> dict:
    """The JSON answer; the body is written with \\u escapes, so lone surrogates
    travel as a client's JSON encoder sends them."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode("ascii")
    response = await client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert UNEXPECTED not in response.text, answer
    answer.pop("extensions", None)  # query cost: not what these tests look at
    return answer


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def unused_bit_variants(encoded: str) -> list[str]:
    """Other spellings of the same bytes: the last character with other unused bits."""
    pad = "=" * (-len(encoded) % 4)
    same = base64.urlsafe_b64decode(encoded + pad)
    return [
        encoded[:-1] + c
        for c in BASE64URL
        if c != encoded[-1] and base64.urlsafe_b64decode(encoded[:-1] + c + pad) == same
    ]


def id_variants(type_name: str, pk: int) -> dict[str, str]:
    """Non-canonical or out-of-range spellings of `gid(type_name, pk)`."""
    canonical = gid(type_name, pk)
    other = "Admin" if type_name != "Admin" else "Customer"
    variants = {
        "padded": canonical + "=" * (-len(canonical) % 4),
        "padding only": canonical + "==",
        "non-alphabet character": canonical[:3] + "." + canonical[3:],
        "standard alphabet +": canonical[:3] + "+" + canonical[3:],
        "trailing newline": canonical + "\n",
        "leading space": " " + canonical,
        "leading zero": b64(f"{type_name}:0{pk}"),
        "plus sign": b64(f"{type_name}:+{pk}"),
        "space before the number": b64(f"{type_name}: {pk}"),
        "space after the number": b64(f"{type_name}:{pk} "),
        "negative": b64(f"{type_name}:-{pk}"),
        "fullwidth digits": b64(f"{type_name}:{str(pk).translate(FULLWIDTH)}"),
        "arabic-indic digits": b64(f"{type_name}:{str(pk).translate(ARABIC_INDIC)}"),
        "superscript two": b64(f"{type_name}:²"),
        "zero": b64(f"{type_name}:0"),
        "2^31": b64(f"{type_name}:{2**31}"),
        "2^63": b64(f"{type_name}:{2**63}"),
        "2^64": b64(f"{type_name}:{2**64}"),
        "lower-case type": b64(f"{type_name.lower()}:{pk}"),
        "another kind": gid(other, pk),
        "over-long": canonical + "A" * 200,
        "lone surrogate": canonical + "\ud800",
        "NUL": canonical + "\x00",
    }
    for n, variant in enumerate(unused_bit_variants(canonical)):
        variants[f"unused bits {n}"] = variant
    return {label: v for label, v in variants.items() if v != canonical}


# ---------------------------------------------------------------- global ids


@pytest.mark.parametrize("pk", [1, 7, 42, 123, 9_999, MAX_PK])
def test_a_global_id_decodes_only_in_its_canonical_form(pk: int) -> None:
    assert decode_global_id(gid("Customer", pk)) == ("Customer", pk)
    variants = id_variants("Customer", pk)
    assert any(label.startswith("unused bits") for label in variants) == (
        len(f"Customer:{pk}") % 3 != 0
    )
    for label, variant in variants.items():
        decoded = decode_global_id(variant)
        assert decoded is None or decoded[0] != "Customer", (label, variant)


# The model behind each type a global id names.
ID_MODELS = {
    "Admin": "Admin",
    "AdminAssignment": "CustomerAssignment",
    "AttentionEvent": "AttentionEvent",
    "ApiToken": "ApiToken",
    "AuditEvent": "AuditEvent",
    "Customer": "Customer",
    "CustomerSubscription": "Subscription",
    "PartnerOrganization": "PartnerOrganization",
    "Report": "Report",
    "ReportSchedule": "ReportSchedule",
    "ReportTemplate": "ReportTemplate",
    "Tag": "Tag",
    "Trial": "Trial",
    "WebhookEventDelivery": "AttentionDelivery",
    "WebhookSubscription": "AttentionWebhook",
}


def _encoded_type_names() -> set[str]:
    """Every type name the code passes to encode_global_id."""
    root = Path(__file__).resolve().parent.parent
    return {
        name
        for folder in ("app", "schema")
        for source in (root / folder).rglob("*.py")
        for name in re.findall(r'encode_global_id\(\s*"(\w+)"', source.read_text())
    }


async def test_each_type_decodes_the_primary_keys_its_table_can_hold(db: Settings) -> None:
    """`max_pk` follows the models: a larger key would fail in PostgreSQL."""
    from tortoise import Tortoise

    encoded = _encoded_type_names()
    assert encoded <= ID_MODELS.keys(), encoded - ID_MODELS.keys()
    models = Tortoise.apps["models"]
    for type_name in encoded:
        limit = models[ID_MODELS[type_name]]._meta.pk.constraints["le"]
        assert max_pk(type_name) == limit, type_name


NODE = "query($id: ID!) { node(id: $id) { id } customer(id: $id) { id } }"


async def test_queries_answer_null_for_every_other_spelling_of_an_id(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await factories.admin(org, AdminRole.FULL_ADMIN)
    customer = await factories.customer(org, "Acme")
    today = datetime.now(UTC).date()
    await factories.trial(customer, today, today + timedelta(days=20))
    tag = await Tag.create(partner=org, name="Gold", name_key="gold")
    await CustomerTag.create(customer=customer, tag=tag)

    canonical = gid("Customer", customer.id)
    found = await post(client, viewer.token, NODE, {"id": canonical})
    assert found == {"data": {"node": {"id": canonical}, "customer": {"id": canonical}}}
    for label, variant in id_variants("Customer", customer.id).items():
        answer = await post(client, viewer.token, NODE, {"id": variant})
        if label == "another kind":  # node(id:) answers any kind: here, the viewer
            assert answer["data"]["customer"] is None
            continue
        assert answer == {"data": {"node": None, "customer": None}}, label

    tagged = """query($tag: ID!, $customer: ID!) {
      customers(filter: {tagIds: [$tag]}) { totalCount }
      trials(filter: {customerId: $customer}) { totalCount } }"""
    both = {"tag": gid("Tag", tag.id), "customer": canonical}
    assert (await post(client, viewer.token, tagged, both))["data"] == {
        "customers": {"totalCount": 1},
        "trials": {"totalCount": 1},
    }
    tag_variants = id_variants("Tag", tag.id)
    customer_variants = id_variants("Customer", customer.id)
    for label in tag_variants.keys() & customer_variants.keys():
        variables = {"tag": tag_variants[label], "customer": customer_variants[label]}
        answer = await post(client, viewer.token, tagged, variables)
        assert answer == {"data": {"customers": {"totalCount": 0}, "trials": {"totalCount": 0}}}, (
            label
        )


def _id_fields(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of the global ids in a mutation's variables."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _id_fields(v, (*path, k))]
    if isinstance(value, list):
        return [p for n, v in enumerate(value) for p in _id_fields(v, (*path, str(n)))]
    return [path] if isinstance(value, str) and decode_global_id(value) else []


def _replaced(value: Any, path: tuple[str, ...], new: str) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        return [_replaced(v, rest, new) if str(n) == head else v for n, v in enumerate(value)]
    return {k: _replaced(v, rest, new) if k == head else v for k, v in value.items()}


ID_MUTATIONS = [m for m in MUTATIONS if m.name not in TARGETLESS]


@pytest.mark.parametrize("mutation", ID_MUTATIONS, ids=[m.name for m in ID_MUTATIONS])
async def test_mutations_answer_not_found_for_every_other_spelling_of_an_id(
    client: httpx.AsyncClient, mutation: Any
) -> None:
    """Every spelling but the canonical one of the very id the mutation would act
    on: NOT_FOUND naming that field, and nothing changed."""
    matrix = await build_matrix()
    token = matrix.team[AdminRole.FULL_ADMIN].token
    variables = mutation.variables(matrix, "in_scope")
    query = mutation.query.replace("userErrors { code }", "userErrors { field code message }")
    before = await everything()
    paths = _id_fields(variables)
    assert paths, mutation.name
    for path in paths:
        type_name, pk = decode_global_id(_get(variables, path))  # type: ignore[misc]
        for label, variant in id_variants(type_name, pk).items():
            answer = await post(client, token, query, _replaced(variables, path, variant))
            payload = answer["data"][mutation.name]
            assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
                (list(path), "NOT_FOUND")
            ], (label, payload)
            assert all(v is None for k, v in payload.items() if k != "userErrors"), label
    assert await everything() == before


def _get(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


REPORT_MUTATIONS = {
    "generateReport": "mutation($input: GenerateReportInput!) { generateReport(input: $input) "
    "{ report { id } userErrors { field code } } }",
    "createReportSchedule": "mutation($input: CreateReportScheduleInput!) { "
    "createReportSchedule(input: $input) { schedule { id } userErrors { field code } } }",
    "updateReportSchedule": "mutation($input: UpdateReportScheduleInput!) { "
    "updateReportSchedule(input: $input) { schedule { id } userErrors { field code } } }",
    "deleteReportSchedule": "mutation($input: DeleteInput!) { "
    "deleteReportSchedule(input: $input) { deletedId userErrors { field code } } }",
}


async def test_report_mutations_answer_not_found_for_other_spellings_of_their_ids(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    templates = await data(client, token, "{ reportTemplates { id reportType } }")
    template = next(t["id"] for t in templates["reportTemplates"] if t["reportType"] == "DEVICES")
    created = await data(
        client,
        token,
        REPORT_MUTATIONS["createReportSchedule"],
        {"input": {"templateId": template, "frequency": "DAILY", "hourUtc": 6}},
    )
    schedule = created["createReportSchedule"]["schedule"]["id"]
    cases = [
        ("generateReport", {"templateId": template}, "templateId"),
        (
            "createReportSchedule",
            {"templateId": template, "frequency": "DAILY", "hourUtc": 7},
            "templateId",
        ),
        ("updateReportSchedule", {"id": schedule, "hourUtc": 9}, "id"),
        ("deleteReportSchedule", {"id": schedule}, "id"),
    ]
    before = await everything()
    for name, input, key in cases:
        type_name, pk = decode_global_id(input[key])  # type: ignore[misc]
        for label, variant in id_variants(type_name, pk).items():
            answer = await post(
                client, token, REPORT_MUTATIONS[name], {"input": input | {key: variant}}
            )
            payload = answer["data"][name]
            assert payload["userErrors"] == [{"field": ["input", key], "code": "NOT_FOUND"}], (
                name,
                label,
            )
            assert all(v is None for k, v in payload.items() if k != "userErrors")
    assert await everything() == before


# ---------------------------------------------------------------- cursors


def forge(payload: list[Any]) -> str:
    """A cursor as encode_cursor would spell it, for any JSON payload (orjson
    refuses integers beyond 64 bits)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _non_canonical(cursor: str) -> dict[str, str]:
    payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    spaced = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    variants = {
        "padded": cursor + "=" * (-len(cursor) % 4),
        "padding only": cursor + "==",
        "non-alphabet character": cursor[:3] + "." + cursor[3:],
        "trailing newline": cursor + "\n",
        "JSON with spaces": spaced,
        "standard base64": base64.b64encode(orjson.dumps(payload)).decode(),
    }
    for n, variant in enumerate(unused_bit_variants(cursor)):
        variants[f"unused bits {n}"] = variant
    return {k: v for k, v in variants.items() if v != cursor}


def _numbers(kind: str, *before: Any, low: int, high: int) -> list[list[Any]]:
    """Payloads whose last value is a number of the wrong kind or out of `low..high`."""
    return [
        [kind, *before, value]
        for value in (
            low - 1,
            high + 1,
            -(2**63) - 1,
            2**63,
            2**64 - 1,
            2**64,
            10**30,
            True,
            False,
            1.0,
            1.5,
            "1",
            "²",
            "\u0661",
            None,
            [1],
            {"n": 1},
        )
    ]


def _texts(kind: str, *after: Any, max_length: int | None = None) -> list[list[Any]]:
    texts: list[Any] = ["a\x00b", 5, None, True, ["x"]]
    if max_length:
        texts.append("x" * (max_length + 1))
    return [[kind, text, *after] for text in texts]


def _dates(kind: str, *after: Any) -> list[list[Any]]:
    days = ["2026-11-21garbage", "20261121", "2026-W47-6", "2026-11-21T00:00:00", "2026-02-30",
            "2026".translate(FULLWIDTH) + "-11-21", " 2026-11-21", "", 20261121, None]  # fmt: skip
    return [[kind, day, *after] for day in days]


CUSTOMERS = """query($after: String, $orderBy: CustomerOrder) {
  customers(first: 1, after: $after, orderBy: $orderBy) { pageInfo { endCursor } } }"""
LISTS = {
    "admins": "query($after: String) { admins(first: 1, after: $after) { pageInfo { endCursor } } }",
    "trials": "query($after: String) { trials(first: 1, after: $after) { pageInfo { endCursor } } }",
    "reports": "query($after: String) { reports(first: 1, after: $after) { pageInfo { endCursor } } }",
    "audit": "query($after: String) { auditLog(first: 1, after: $after) { pageInfo { endCursor } } }",
    "schedules": "query($after: String) { reportSchedules(first: 1, after: $after) { pageInfo { endCursor } } }",
    "subscriptions": """query($id: ID!, $after: String) { customer(id: $id) {
      subscriptions(first: 1, after: $after) { pageInfo { endCursor } } } }""",
    "calling-usage": """query($after: String) { callingAnalytics(region: US) {
      customersUsage(first: 1, after: $after) { totalCount } } }""",
}  # fmt: skip

FORGED: dict[str, list[list[Any]]] = {
    "admins": _texts("admins", max_length=254),
    "trials": [
        *_dates("trials", 1),
        *_numbers("trials", "2026-11-21", low=1, high=MAX_PK),
        ["trials", "2026-11-21"],
        ["trials", "2026-11-21", 1, 1],
    ],
    "reports": _numbers("reports", low=1, high=MAX_PK),
    "audit": _numbers("audit", low=1, high=MAX_SQL_INTEGER),
    "schedules": _numbers("schedules", low=1, high=MAX_PK),
    "subscriptions": [
        *_numbers("subscriptions", low=0, high=MAX_SQL_INTEGER - 1),
        ["subscriptions"],
        ["subscriptions", 0, 0],
    ],
    "calling-usage": _numbers("calling-usage", low=0, high=MAX_SQL_INTEGER - 1),
}


def _refused_cursor(answer: dict, after: str, label: object) -> None:
    """The list answered an error: a cursor that is not one of its own, or (for
    a cursor with a line break) the text check that runs before any resolver."""
    assert answer["data"] in (None, {"customer": None}), (label, answer)
    [error] = answer["errors"]
    expected = (
        "Argument `after` holds" if text_fault(after) else "`after` is not a cursor of this list"
    )
    assert expected in error["message"], (label, error)


async def test_forged_and_non_canonical_cursors_are_refused_by_every_list(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    team = await factories.team(org)
    token = team[AdminRole.FULL_ADMIN].token
    customer = await factories.customer(org, "Acme")
    today = datetime.now(UTC).date()
    for n in range(2):
        await factories.trial(await factories.customer(org), today, today + timedelta(days=9 + n))
    await data(client, token, 'mutation { createTag(input: {name: "T"}) { tag { id } } }')
    await data(client, token, 'mutation { createTag(input: {name: "U"}) { tag { id } } }')
    customer_id = gid("Customer", customer.id)
    assert forge(["trials", "2026-11-21", 5]) == encode_cursor(["trials", "2026-11-21", 5])

    for kind, query in LISTS.items():
        extra = {"id": customer_id} if kind == "subscriptions" else {}
        # The lists' own cursors still work (a forged payload fails on its values).
        first = await post(client, token, query, extra)
        assert "errors" not in first, (kind, first)
        real = next(iter(_walk_cursors(first["data"])), None)
        if real is not None:
            assert "errors" not in await post(client, token, query, extra | {"after": real})
            for label, variant in _non_canonical(real).items():
                answer = await post(client, token, query, extra | {"after": variant})
                _refused_cursor(answer, variant, (kind, label))
        for payload in FORGED[kind]:
            forged = forge(payload)
            answer = await post(client, token, query, extra | {"after": forged})
            _refused_cursor(answer, forged, payload)


def _walk_cursors(value: Any) -> list[str]:
    if isinstance(value, dict):
        if value.get("endCursor"):
            return [value["endCursor"]]
        return [c for v in value.values() for c in _walk_cursors(v)]
    return []


CUSTOMER_FORGED: list[tuple[str, list[Any]]] = [
    *[("NAME", ["customers", "NAME:ASC", *p[1:]]) for p in _texts("customers", 1)],
    *[("NAME", p) for p in _numbers("customers", "NAME:ASC", "acme", low=1, high=MAX_PK)],
    ("NAME", ["customers", "NAME:ASC", "acme"]),
    ("NAME", ["customers", "NAME:ASC", "acme", 1, 1]),
    ("CREATED_AT", ["customers", "CREATED_AT:ASC", "2026-08-13", 1]),
    ("CREATED_AT", ["customers", "CREATED_AT:ASC", "2026-08-13T12:00:00", 1]),
    ("CREATED_AT", ["customers", "CREATED_AT:ASC", "2026-08-13 12:00:00+00:00", 1]),
    ("CREATED_AT", ["customers", "CREATED_AT:ASC", "20260813T120000+0000", 1]),
    ("CREATED_AT", ["customers", "CREATED_AT:ASC", "2026-13-13T12:00:00+00:00", 1]),
    ("CREATED_AT", ["customers", "CREATED_AT:ASC", 1786622400, 1]),
    *[
        ("NEXT_END_DATE", ["customers", "NEXT_END_DATE:ASC", *p[1:]])
        for p in _dates("customers", 1)
    ],
    *[
        ("TOTAL_LICENSES", ["customers", "TOTAL_LICENSES:ASC", p[-1], 1])
        for p in _numbers("customers", low=0, high=MAX_SQL_INTEGER)
    ],
]


@pytest.mark.parametrize("field", ["NAME", "CREATED_AT", "NEXT_END_DATE", "TOTAL_LICENSES"])
async def test_the_customer_list_refuses_forged_and_non_canonical_cursors(
    client: httpx.AsyncClient, field: str
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    for name in ("Acme", "Bolt", "Cirrus"):
        await factories.customer(org, name)
    order = {"orderBy": {"field": field, "direction": "ASC"}}
    first = await post(client, token, CUSTOMERS, order)
    real = first["data"]["customers"]["pageInfo"]["endCursor"]
    second = await post(client, token, CUSTOMERS, order | {"after": real})
    assert "errors" not in second and second["data"]["customers"]["pageInfo"]["endCursor"]
    for label, variant in _non_canonical(real).items():
        answer = await post(client, token, CUSTOMERS, order | {"after": variant})
        _refused_cursor(answer, variant, label)
    for kind, payload in CUSTOMER_FORGED:
        if kind == field:
            forged = forge(payload)
            answer = await post(client, token, CUSTOMERS, order | {"after": forged})
            _refused_cursor(answer, forged, payload)


async def test_cursors_of_the_longest_names_are_accepted(client: httpx.AsyncClient) -> None:
    """200 characters of 4 UTF-8 bytes, or of escaped controls, still make a
    cursor the list takes back."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    names = ["😀" * 200, "😀" * 199 + "😁", "\x01" * 200, "\x01" * 199 + "\x02"]
    for name in names:
        await factories.customer(org, name)
    after, seen = None, 0
    while True:
        answer = await post(client, token, CUSTOMERS, {"after": after})
        assert "errors" not in answer, answer
        after = answer["data"]["customers"]["pageInfo"]["endCursor"]
        if after is None:
            break
        seen += 1
    assert seen == len(names)


# ---------------------------------------------------------------- text

REFUSED_TEXT = {
    "lone high surrogate": "a\ud800b",
    "lone low surrogate": "\udfff",
    "reversed surrogate pair": "\ude00\ud83d",
    "NUL": "a\x00b",
    "escape": "\x1b[31mred",
    "DEL": "a\x7f",
    "C1 NEL": "a\x85b",
    "C1 CSI": "\x9b",
    "noncharacter FFFE": "a\ufffe",
    "noncharacter FDD0": "\ufdd0",
    "noncharacter of plane 16": "\U0010ffff",
}
ONE_LINE_ONLY = {
    "tab": "a\tb",
    "newline": "a\nb",
    "carriage return": "a\rb",
    "CRLF": "a\r\nb",
    "line separator": "a\u2028b",
    "paragraph separator": "a\u2029b",
}
ACCEPTED_TEXT = ["Zoë", "東京", "😀", "👩‍💻", "Ağ İ", "x" * 50, "a b", "\u200b"]


@pytest.mark.parametrize(
    ("label", "text"), [*REFUSED_TEXT.items(), *ONE_LINE_ONLY.items()], ids=lambda x: str(x)
)
def test_text_fault_names_the_character(label: str, text: str) -> None:
    reason = text_fault(text)
    assert reason is not None
    bad = next(c for c in text if text_fault(c) is not None)
    assert f"U+{ord(bad):04X}" in reason
    assert (text_fault(text, multi_line=True) is None) == (label in ONE_LINE_ONLY)


@pytest.mark.parametrize("text", ACCEPTED_TEXT)
def test_text_fault_accepts_text(text: str) -> None:
    assert text_fault(text) is None and text_fault(text, multi_line=True) is None


QUERY_ARGUMENTS = [
    ("customers(filter: {search: $s}) { totalCount }", "filter.search"),
    ("customers(filter: {email: $s}) { totalCount }", "filter.email"),
    ("customers(after: $s) { totalCount }", "after"),
    ("admins(filter: {search: $s}) { totalCount }", "filter.search"),
    ("resources(search: $s) { title }", "search"),
    ("resources(section: $s) { title }", "section"),
    ("resources(category: $s) { title }", "category"),
]


async def test_query_arguments_refuse_bad_text_naming_the_argument(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    for selection, argument in QUERY_ARGUMENTS:
        query = f"query($s: String) {{ {selection} }}"
        for label, text in {**REFUSED_TEXT, **ONE_LINE_ONLY}.items():
            answer = await post(client, token, query, {"s": text})
            assert answer["data"] is None, (selection, label)
            [error] = answer["errors"]
            assert error["message"].startswith(f"Argument `{argument}` holds "), error
            assert f"U+{ord(_first_refused(text)):04X}" in error["message"], (label, error)
        for text in ACCEPTED_TEXT:
            answer = await post(client, token, query, {"s": text})
            assert "errors" not in answer or "Argument" not in str(answer["errors"]), text


def _first_refused(text: str) -> str:
    return next(c for c in text if text_fault(c) is not None)


async def test_literals_are_checked_like_variables(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    for escaped, code in (("\\u0000", "U+0000"), ("\\u001b", "U+001B"), ("\\n", "U+000A")):
        answer = await post(
            client, token, f'{{ customers(filter: {{search: "a{escaped}"}}) {{ totalCount }} }}'
        )
        [error] = answer["errors"]
        assert error["message"].startswith("Argument `filter.search` holds"), error
        assert code in error["message"]
    # GraphQL itself refuses a lone surrogate escaped in a literal: a syntax error.
    answer = await post(client, token, '{ customers(filter: {search: "\\ud800"}) { totalCount } }')
    assert "Invalid Unicode escape sequence" in answer["errors"][0]["message"]


async def test_introspection_arguments_pass_the_checks(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    query = """{ __type(name: "CreateTagInput") { name inputFields { name } }
      __schema { queryType { fields(includeDeprecated: true) { name } } } }"""
    answer = await post(client, token, query)
    assert "errors" not in answer, answer
    assert answer["data"]["__type"]["name"] == "CreateTagInput"
    answer = await post(client, token, '{ __type(name: "Tag\\u0000") { name } }')
    assert answer["errors"][0]["message"].startswith("Argument `name` holds a control character")


CREATE_TAG = """mutation($input: CreateTagInput!) { createTag(input: $input) {
  tag { name description } userErrors { field message code } } }"""


async def test_mutation_inputs_refuse_bad_text_as_a_user_error_and_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    customer = await factories.customer(org, "Acme")
    tag = await Tag.create(partner=org, name="Gold", name_key="gold")
    cases: list[tuple[str, str, dict, list[str]]] = [
        ("createTag", "CreateTagInput", {"name": "{}"}, ["input", "name"]),
        ("createTag", "CreateTagInput", {"name": "ok", "description": "{}"}, ["input", "description"]),
        ("updateTag", "UpdateTagInput", {"id": gid("Tag", tag.id), "name": "{}"}, ["input", "name"]),
        ("createAdmin", "CreateAdminInput",
         {"email": "{}", "displayName": "New", "role": "ADMIN"}, ["input", "email"]),
        ("createAdmin", "CreateAdminInput",
         {"email": "new@northwind.example", "displayName": "{}", "role": "ADMIN"},
         ["input", "displayName"]),
        ("startTrial", "StartTrialInput",
         {"newCustomer": {"name": "{}", "adminEmail": "it@acme.example", "region": "US"},
          "products": [{"product": "CALLING", "licenses": 5}], "durationDays": 30},
         ["input", "newCustomer", "name"]),
        ("createReportTemplate", "CreateReportTemplateInput",
         {"name": "Mine", "reportType": "DEVICES", "columnKeys": ["customer", "{}"]},
         ["input", "columnKeys", "1"]),
        ("completeOrganizationSetup", "CompleteSetupInput",
         {"acceptTerms": True, "industry": "{}"}, ["input", "industry"]),
    ]  # fmt: skip
    before = await everything()
    for name, input_type, template, field in cases:
        query = f"""mutation($input: {input_type}!) {{ {name}(input: $input) {{
          __typename userErrors {{ field message code }} }} }}"""
        multi_line = tuple(field[-2:]) == ("input", "description")
        refused = REFUSED_TEXT if multi_line else {**REFUSED_TEXT, **ONE_LINE_ONLY}
        for label, text in refused.items():
            answer = await post(client, token, query, {"input": _filled(template, text)})
            payload = answer["data"][name]
            [error] = payload["userErrors"]
            assert error["field"] == field and error["code"] == "INVALID", (name, label, error)
            assert f"`{field[-1]}` holds" in error["message"], error
            assert f"U+{ord(_first_refused(text)):04X}" in error["message"], error
    assert await everything() == before
    assert customer.id  # the world above was not touched

    # Descriptions are multi-line: tabs and line breaks are kept.
    for n, text in enumerate(ONE_LINE_ONLY.values()):
        answer = await post(
            client, token, CREATE_TAG, {"input": {"name": f"T{n}", "description": text}}
        )
        assert answer["data"]["createTag"]["userErrors"] == [], answer
        assert answer["data"]["createTag"]["tag"]["description"] == text


def _filled(template: Any, text: str) -> Any:
    if isinstance(template, dict):
        return {k: _filled(v, text) for k, v in template.items()}
    if isinstance(template, list):
        return [_filled(v, text) for v in template]
    return text if template == "{}" else template


async def test_only_the_refused_field_of_a_mutation_is_refused(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    query = """mutation($good: CreateTagInput!, $bad: CreateTagInput!) {
      good: createTag(input: $good) { tag { name } userErrors { field code } }
      bad: createTag(input: $bad) { tag { name } userErrors { field code } } }"""
    answer = await post(
        client, token, query, {"good": {"name": "Fine"}, "bad": {"name": "Bad\x00"}}
    )
    assert answer == {
        "data": {
            "good": {"tag": {"name": "Fine"}, "userErrors": []},
            "bad": {"tag": None, "userErrors": [{"field": ["input", "name"], "code": "INVALID"}]},
        }
    }
    assert await Tag.filter(partner=org).count() == 1


def _string_paths(type_: GraphQLInputType, seen: frozenset[str]) -> list[tuple[list[str], Any]]:
    """(path, value holding NUL at that path) for each String leaf of an input type."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        return [(["0", *p], [v]) for p, v in _string_paths(type_.of_type, seen)]
    if isinstance(type_, GraphQLInputObjectType):
        if type_.name in seen:
            return []
        return [
            ([name, *p], {name: v})
            for name, field in type_.fields.items()
            for p, v in _string_paths(field.type, seen | {type_.name})
        ]
    return [([], "x\x00")] if type_ is GraphQLString else []


def test_every_string_argument_and_input_field_of_the_schema_is_checked() -> None:
    checked = 0
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for field in type_.fields.values():
            for name, argument in field.args.items():
                for path, value in _string_paths(argument.type, frozenset()):
                    fault = arguments_fault(field.args, {name: value})
                    assert fault is not None, (type_.name, name, path)
                    assert fault[0] == [name, *path], (type_.name, fault)
                    checked += 1
    assert checked >= 20
    # IDs are left to their decoders (an unknown id reads as null/NOT_FOUND).
    node = schema._schema.query_type.fields["node"]  # type: ignore[union-attr]
    assert arguments_fault(node.args, {"id": "x\x00"}) is None


def test_multi_line_fields_exist_and_are_strings() -> None:
    for type_name, field_name in MULTI_LINE:
        type_ = schema._schema.type_map[type_name]
        assert isinstance(type_, GraphQLInputObjectType), type_name
        assert type_.fields[field_name].type is GraphQLString, (type_name, field_name)


# ---------------------------------------------------------------- download URLs


async def test_download_urls_accept_only_the_signed_spelling(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    """No report 77 exists: a URL that passes the signature check answers 410
    (file gone); every altered spelling answers 403 before any lookup."""
    key = http_settings.signing_key()
    signed = sign_download(key, "http://x", 77, utcnow(), 3600)
    query = dict(p.split("=", 1) for p in signed.url.split("?", 1)[1].split("&"))
    expires, signature = query["expires"], query["signature"]
    path = "/reports/77/download"

    async def status(**params: str) -> int:
        response = await client.get(f"{path}?{urlencode({**query, **params})}")
        assert response.status_code != 500, response.text
        return response.status_code

    assert await status() == 410
    expires_variants = {
        "leading zero": "0" + expires,
        "plus sign": "+" + expires,
        "leading space": " " + expires,
        "trailing space": expires + " ",
        "trailing newline": expires + "\n",
        "fullwidth digits": expires.translate(FULLWIDTH),
        "arabic-indic digits": expires.translate(ARABIC_INDIC),
        "superscript two": expires[:-1] + "²",
        "negative": "-" + expires,
        "decimal": expires + ".0",
        "13 digits": "1" + expires.zfill(12),
        "empty": "",
    }
    for label, variant in expires_variants.items():
        assert await status(expires=variant) == 403, label
    signature_variants = {
        "padded": signature + "=" * (-len(signature) % 4),
        "padding only": signature + "==",
        "standard alphabet": signature.replace("-", "+").replace("_", "/"),
        "non-alphabet character": signature[:5] + "." + signature[5:],
        "trailing space": signature + " ",
        "non-ASCII": signature[:-1] + "é",
        "empty": "",
    }
    for n, variant in enumerate(unused_bit_variants(signature)):
        signature_variants[f"unused bits {n}"] = variant
    assert any(k.startswith("unused bits") for k in signature_variants)
    for label, variant in signature_variants.items():
        if variant != signature:
            assert await status(signature=variant) == 403, label
    # A far expiry with a forged signature is refused, not a server error.
    assert await status(expires="999999999999", signature="A" * 43) == 403


def test_expiry_is_compared_as_a_number() -> None:
    from app.domain.downloads import DownloadRefused, check_download

    key = "k" * 40
    now = datetime(2026, 11, 21, tzinfo=UTC)
    signed = sign_download(key, "http://x", 5, now, 60)
    params = dict(p.split("=", 1) for p in signed.url.split("?", 1)[1].split("&"))
    check_download(key, 5, params["expires"], params["signature"], now)
    with pytest.raises(DownloadRefused, match="expired"):
        check_download(key, 5, params["expires"], params["signature"], now + timedelta(seconds=60))
