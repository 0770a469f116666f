"""The README's GraphQL blocks run as pasted against the demo data: each block
is one operation, with its variables in the JSON block after it (placeholders
in angle brackets are what a reader fills in from an earlier answer)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from graphql import OperationDefinitionNode, parse

from app.config import Settings
from app.demo import demo_admins, load_demo
from app.models.enums import AdminRole
from tests.graphql_client import data, gql

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```graphql\n(.*?)```(?:\s*```json\n(.*?)```)?", re.S)


def readme_blocks() -> list[tuple[str, dict[str, Any]]]:
    return [
        (document, json.loads(variables) if variables else {})
        for document, variables in BLOCK.findall(README.read_text())
    ]


def test_every_block_is_one_operation() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 12
    for document, _ in blocks:
        operations = [
            d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)
        ]
        assert len(operations) == 1, document[:120]


def user_errors(value: Any) -> list:
    """Every userErrors entry anywhere in an answer."""
    found: list = []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += (
                inner if key == "userErrors" and isinstance(inner, list) else user_errors(inner)
            )
    elif isinstance(value, list):
        for inner in value:
            found += user_errors(inner)
    return found


async def test_every_graphql_block_of_the_readme_runs_as_pasted(
    client: httpx.AsyncClient, db: Settings
) -> None:
    await load_demo(24, seed=1)
    admins = demo_admins(1)
    northwind = next(
        a for a in admins if a.partner == "Northwind Partners" and a.role is AdminRole.FULL_ADMIN
    )
    contoso = next(
        a for a in admins if a.partner == "Contoso Partners" and a.role is AdminRole.FULL_ADMIN
    )
    page = await data(
        client,
        northwind.token,
        "{ customers(first: 100) { nodes { id trials { status } } } tags { id } "
        "reportTemplates { id reportType kind } admins(first: 100) { nodes { id role } } }",
    )
    customers = page["customers"]["nodes"]
    found: dict[str, str] = {
        "a customer id, from customers": customers[0]["id"],
        "a tag id, from tags": page["tags"][0]["id"],
        "the id of the Devices template": next(
            t["id"]
            for t in page["reportTemplates"]
            if t["reportType"] == "DEVICES" and t["kind"] == "DEFAULT"
        ),
        "the id of the Customer list template": next(
            t["id"]
            for t in page["reportTemplates"]
            if t["reportType"] == "CUSTOMER_LIST" and t["kind"] == "DEFAULT"
        ),
        "an ADMIN's id, from admins": next(
            a["id"] for a in page["admins"]["nodes"] if a["role"] == "ADMIN"
        ),
        "a customer id without a trial": next(
            c["id"] for c in customers if all(t["status"] != "ACTIVE" for t in c["trials"])
        ),
    }

    async def newest_audit_event() -> str:
        log = await data(client, northwind.token, "{ auditLog(first: 1) { nodes { id } } }")
        return log["auditLog"]["nodes"][0]["id"]

    # Read when a block needs them (after the mutations before it).
    later = {"an AuditEvent id, from auditLog": newest_audit_event}

    async def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [await fill(item) for item in value]
        if isinstance(value, str) and value.startswith("<"):
            key = next((k for k in found if value.startswith(f"<{k}")), None)
            if key is None:
                key = next((k for k in later if value.startswith(f"<{k}")), None)
                assert key is not None, f"the test knows no value for {value}"
                return await later[key]()
            return found[key]
        return value

    ran = 0
    for document, variables in readme_blocks():
        token = contoso.token if "completeOrganizationSetup" in document else northwind.token
        filled = {k: await fill(v) for k, v in variables.items()}
        response = await gql(client, token, document, filled)
        assert response.status_code == 200, (document[:80], response.text)
        body = response.json()
        assert "errors" not in body, (document[:80], body["errors"])
        assert user_errors(body["data"]) == [], (document[:80], body["data"])
        answer = body["data"]
        if "generateReport" in answer:
            found["the report id, from generateReport"] = answer["generateReport"]["report"]["id"]
        if "createReportTemplate" in answer:
            template = answer["createReportTemplate"]["template"]["id"]
            found["the template id, from createReportTemplate"] = template
        ran += 1
    assert ran == len(readme_blocks())


def settings_table() -> dict[str, str]:
    """The README's Configuration table: each variable named in a row's first
    cell, with the row's default cell."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def env_name(field: str) -> str:
    return (
        field.upper() if field in ("database_url", "redis_url") else f"PARTNERHUB_{field.upper()}"
    )


def test_the_configuration_table_lists_every_setting_and_nothing_else() -> None:
    documented = settings_table()
    expected = {env_name(field) for field in Settings.model_fields}
    assert sorted(expected - documented.keys()) == [], "settings missing from the README table"
    assert sorted(documented.keys() - expected) == [], "README rows that name no setting"


def test_the_configuration_table_gives_each_plain_default_as_the_code_has_it() -> None:
    """Where the code's default is a plain number or word, the table's default
    cell starts with it (defaults computed at start-up are described in words)."""
    documented = settings_table()
    for field, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, int | float) or (isinstance(default, str) and default):
            shown = f"{default:g}" if isinstance(default, float) else str(default)
        else:
            continue
        cell = documented[env_name(field)].replace(",", "")
        assert cell.startswith(f"`{shown}`"), (field, cell, shown)
