"""API tokens with a life cycle: a lifetime (default PARTNERHUB_API_TOKEN_TTL_DAYS),
listed without their secret, revoked; a revoked or expired token is refused at
once over HTTP and closes an open websocket within the re-check interval.

GraphQL (`apiTokens`, `createApiToken`, `revokeApiToken`, FULL_ADMIN only), the
`partnerhub token create/list/revoke` commands as real subprocesses, and the
websocket re-check under a real uvicorn with a real websocket client.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import websockets

from app.auth import hash_token
from app.config import Settings
from app.demo import demo_admins
from app.domain.ids import decode_id_of
from app.domain.ids import encode_global_id as gid
from app.domain.mutations import audit_target
from app.domain.reports import ReportRequest, create_report
from app.models.admins import ApiToken
from app.models.audit import AuditEvent
from app.models.enums import AdminRole
from app.models.reports import ReportTemplate
from app.models.tags import Tag
from tests import factories
from tests.cli_process import cli_env, free_port, run_cli
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.graphql_client import data, gql
from tests.test_cli import one_line_error
from tests.test_mutation_matrix import everything
from tests.test_serve import running, wait_healthy

TOKEN_FIELDS = "id label createdAt lastUsedAt expiresAt revokedAt active owner { email }"
LIST = f"""query($first: Int, $after: String) {{ apiTokens(first: $first, after: $after) {{
  totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {TOKEN_FIELDS} }} }} }}"""
CREATE = f"""mutation($input: CreateApiTokenInput!) {{ createApiToken(input: $input) {{
  token apiToken {{ {TOKEN_FIELDS} }} userErrors {{ field message code }} }} }}"""
REVOKE = f"""mutation($input: RevokeApiTokenInput!) {{ revokeApiToken(input: $input) {{
  apiToken {{ {TOKEN_FIELDS} }} userErrors {{ field message code }} }} }}"""
WHO = "{ viewer { email } }"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _partners() -> tuple[dict[AdminRole, factories.AdminWithToken], factories.AdminWithToken]:
    """Northwind with one admin of each role, and Contoso's FULL_ADMIN."""
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    return await factories.team(northwind), await factories.admin(contoso, FULL)


async def _create(client: httpx.AsyncClient, token: str, **fields: object) -> dict:
    return (await data(client, token, CREATE, {"input": fields}))["createApiToken"]


async def _new_events(before: int) -> list[AuditEvent]:
    return await AuditEvent.filter(id__gt=before).order_by("id")


async def _last_event_id() -> int:
    last = await AuditEvent.all().order_by("-id").first()
    return last.id if last else 0


# ------------------------------------------------------------------ GraphQL ----


async def test_create_list_revoke_and_the_secret_is_shown_once(client: httpx.AsyncClient) -> None:
    team, _ = await _partners()
    full = team[FULL]
    before = await _last_event_id()
    started = datetime.now(UTC)
    created = await _create(client, full.token, label="  CI   pipeline ")
    assert created["userErrors"] == []
    secret = created["token"]
    assert re.fullmatch(r"phk_[A-Za-z0-9_-]{43}", secret)
    token = created["apiToken"]
    assert token["label"] == "CI pipeline"
    assert token["owner"] == {"email": full.admin.email}
    assert token["active"] is True and token["revokedAt"] is None and token["lastUsedAt"] is None
    # The default lifetime: PARTNERHUB_API_TOKEN_TTL_DAYS (90).
    lifetime = _at(token["expiresAt"]) - _at(token["createdAt"])
    assert timedelta(days=90) - timedelta(seconds=5) < lifetime <= timedelta(days=90)
    assert _at(token["expiresAt"]) >= started + timedelta(days=90) - timedelta(seconds=1)
    # Only the hash is stored.
    record = await ApiToken.get(id=int(_decode(token["id"])))
    assert record.token_hash == hash_token(secret) and secret not in str(record.__dict__)

    # The new secret works at once, as its owner.
    assert (await data(client, secret, WHO))["viewer"]["email"] == full.admin.email

    listed = await gql(client, full.token, LIST)
    assert secret not in listed.text and record.token_hash not in listed.text
    page = listed.json()["data"]["apiTokens"]
    # Newest first: the new token, then the five team tokens of the factories.
    assert page["totalCount"] == 6
    assert page["nodes"][0]["id"] == token["id"]
    assert page["nodes"][0]["lastUsedAt"] is not None  # used just above
    assert {n["owner"]["email"] for n in page["nodes"]} == {m.admin.email for m in team.values()}

    revoked = (await data(client, full.token, REVOKE, {"input": {"id": token["id"]}}))[
        "revokeApiToken"
    ]
    assert revoked["userErrors"] == []
    assert revoked["apiToken"]["revokedAt"] is not None and revoked["apiToken"]["active"] is False
    # Revoked: refused on the very next request.
    refused = await gql(client, secret, WHO)
    assert refused.status_code == 401
    assert "Unknown, revoked or expired" in refused.json()["errors"][0]["message"]
    # The creator's own token still works; the list keeps the revoked one, marked.
    again = (await data(client, full.token, LIST))["apiTokens"]["nodes"][0]
    assert again["id"] == token["id"] and again["revokedAt"] == revoked["apiToken"]["revokedAt"]

    # Exactly one audit event per mutation, with its own action, never the secret.
    events = await _new_events(before)
    stored = audit_target("ApiToken", decode_id_of(token["id"], "ApiToken"))
    assert [(e.action, e.target_id, e.actor_id) for e in events] == [
        ("api_token.create", stored, full.admin.id),
        ("api_token.revoke", stored, full.admin.id),
    ]
    assert events[0].summary.startswith("Created API token 'CI pipeline' of full_admin")
    assert all(secret not in e.summary for e in events)


def _decode(global_id: str) -> str:
    from app.domain.ids import decode_global_id

    decoded = decode_global_id(global_id)
    assert decoded is not None and decoded[0] == "ApiToken"
    return str(decoded[1])


def test_no_field_of_the_api_token_type_carries_the_secret_or_its_hash() -> None:
    from graphql import GraphQLObjectType, build_schema

    from schema import schema

    api_token = build_schema(schema.as_str()).type_map["ApiToken"]
    assert isinstance(api_token, GraphQLObjectType)
    names = set(api_token.fields)
    assert names == {
        "id", "label", "createdAt", "lastUsedAt", "expiresAt", "revokedAt", "active", "owner"
    }  # fmt: skip


async def test_a_chosen_lifetime_another_admin_and_the_ttl_setting(
    http_settings: Settings, redis_url: str
) -> None:
    from app.http import create_app

    app = create_app(http_settings.model_copy(update={"api_token_ttl_days": 7}))
    app.state.runtime.redis_url = redis_url
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        team, _ = await _partners()
        full, sales = team[FULL], team[SALES]
        default = await _create(client, full.token, label="weekly")
        lifetime = _at(default["apiToken"]["expiresAt"]) - _at(default["apiToken"]["createdAt"])
        assert timedelta(days=7) - timedelta(seconds=5) < lifetime <= timedelta(days=7)

        for days in (1, 3650):
            chosen = await _create(
                client,
                full.token,
                label=f"for sales, {days} days",
                expiresInDays=days,
                adminId=gid("Admin", sales.admin.id),
            )
            assert chosen["userErrors"] == []
            assert chosen["apiToken"]["owner"] == {"email": sales.admin.email}
            lifetime = _at(chosen["apiToken"]["expiresAt"]) - _at(chosen["apiToken"]["createdAt"])
            assert timedelta(days=days) - timedelta(seconds=5) < lifetime <= timedelta(days=days)
            # The token acts for the admin it was made for, with that admin's role.
            assert (await data(client, chosen["token"], WHO))["viewer"]["email"] == (
                sales.admin.email
            )
        await app.state.runtime.close_queue()


async def test_an_expired_token_is_refused_and_a_live_one_is_not(client: httpx.AsyncClient) -> None:
    team, _ = await _partners()
    created = await _create(client, team[FULL].token, label="short", expiresInDays=1)
    secret = created["token"]
    assert (await gql(client, secret, WHO)).status_code == 200
    # A day later (the row as time would leave it): refused.
    await ApiToken.filter(token_hash=hash_token(secret)).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    refused = await gql(client, secret, WHO)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    listed = (await data(client, team[FULL].token, LIST))["apiTokens"]["nodes"][0]
    assert listed["active"] is False and listed["revokedAt"] is None


@pytest.mark.parametrize("role", list(AdminRole), ids=lambda r: r.value)
async def test_the_role_table(client: httpx.AsyncClient, role: AdminRole) -> None:
    team, _ = await _partners()
    me = team[role]
    target = gid("ApiToken", (await ApiToken.get(admin_id=team[ADMIN].admin.id)).id)
    before = await everything()
    listed = await gql(client, me.token, LIST)
    created = (await gql(client, me.token, CREATE, {"input": {"label": "x"}})).json()["data"]
    revoked = (await gql(client, me.token, REVOKE, {"input": {"id": target}})).json()["data"]
    node = (
        await data(client, me.token, "query($id: ID!) { node(id: $id) { id } }", {"id": target})
    )["node"]
    if role is FULL:
        assert listed.json()["data"]["apiTokens"]["totalCount"] == 5
        assert created["createApiToken"]["userErrors"] == []
        assert revoked["revokeApiToken"]["userErrors"] == []
        assert node == {"id": target}
        return
    body = listed.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"] == "API tokens are visible to FULL_ADMIN only."
    for name, answer, action in (
        ("createApiToken", created, "Creating API tokens"),
        ("revokeApiToken", revoked, "Revoking API tokens"),
    ):
        payload = answer[name]
        assert payload["userErrors"] == [
            {
                "field": None,
                "message": f"{action} needs the FULL_ADMIN role (you are {role.value})",
                "code": "FORBIDDEN",
            }
        ]
        assert all(v is None for k, v in payload.items() if k != "userErrors")
    assert node is None
    assert await everything() == before


async def test_another_partners_tokens_are_never_listed_nor_revocable(
    client: httpx.AsyncClient,
) -> None:
    team, contoso = await _partners()
    full = team[FULL]
    theirs = await _create(client, contoso.token, label="contoso ci")
    foreign_token = theirs["apiToken"]["id"]
    page = (await data(client, full.token, LIST))["apiTokens"]
    assert page["totalCount"] == 5
    assert contoso.admin.email not in json.dumps(page)
    assert foreign_token not in json.dumps(page)

    before = await everything()
    foreign = (await data(client, full.token, REVOKE, {"input": {"id": foreign_token}}))[
        "revokeApiToken"
    ]
    missing = (await data(client, full.token, REVOKE, {"input": {"id": gid("ApiToken", 999_999)}}))[
        "revokeApiToken"
    ]
    assert foreign == missing == {
        "apiToken": None,
        "userErrors": [{"field": ["input", "id"], "message": "No such API token.", "code": "NOT_FOUND"}],
    }  # fmt: skip
    # Nor can a token be made for another partner's admin.
    for_them = await _create(
        client, full.token, label="sneaky", adminId=gid("Admin", contoso.admin.id)
    )
    assert for_them["userErrors"] == [
        {"field": ["input", "adminId"], "message": "No such admin.", "code": "NOT_FOUND"}
    ]
    node = await data(
        client, full.token, "query($id: ID!) { node(id: $id) { id } }", {"id": foreign_token}
    )
    assert node == {"node": None}
    assert await everything() == before
    assert (await gql(client, theirs["token"], WHO)).status_code == 200  # still works


BAD_CREATES = [
    ({"label": ""}, [(["input", "label"], "INVALID")]),
    ({"label": "   "}, [(["input", "label"], "INVALID")]),
    ({"label": "x" * 101}, [(["input", "label"], "INVALID")]),
    ({"label": "ok", "expiresInDays": 0}, [(["input", "expiresInDays"], "INVALID")]),
    ({"label": "ok", "expiresInDays": -3}, [(["input", "expiresInDays"], "INVALID")]),
    ({"label": "ok", "expiresInDays": 3651}, [(["input", "expiresInDays"], "INVALID")]),
    ({"label": "ok", "adminId": "not-an-id"}, [(["input", "adminId"], "NOT_FOUND")]),
    ({"label": "ok", "adminId": gid("Admin", 999_999)}, [(["input", "adminId"], "NOT_FOUND")]),
    ({"label": "ok", "adminId": gid("Tag", 1)}, [(["input", "adminId"], "NOT_FOUND")]),
    (
        {"label": "", "expiresInDays": 0, "adminId": "nope"},
        [
            (["input", "label"], "INVALID"),
            (["input", "expiresInDays"], "INVALID"),
            (["input", "adminId"], "NOT_FOUND"),
        ],
    ),
]


async def test_bad_inputs_are_user_errors_and_change_nothing(client: httpx.AsyncClient) -> None:
    team, _ = await _partners()
    full = team[FULL]
    await Tag.create(partner_id=full.admin.partner_id, name="T", name_key="t")
    revoked = await _create(client, full.token, label="to revoke")
    await data(client, full.token, REVOKE, {"input": {"id": revoked["apiToken"]["id"]}})
    before = await everything()
    for fields, expected in BAD_CREATES:
        payload = await _create(client, full.token, **fields)
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == expected, fields
        assert payload["token"] is None and payload["apiToken"] is None
    label_error = (await _create(client, full.token, label="x" * 101))["userErrors"][0]
    assert label_error["message"] == "A token label is 1 to 100 characters."
    days_error = (await _create(client, full.token, label="ok", expiresInDays=0))["userErrors"][0]
    assert days_error["message"] == "A token lives 1 to 3650 days (got 0)."

    for token_id, code in (
        ("not-an-id", "NOT_FOUND"),
        (gid("ApiToken", 999_999), "NOT_FOUND"),
        (gid("Admin", full.admin.id), "NOT_FOUND"),  # an id of another type
        (revoked["apiToken"]["id"], "INVALID"),  # already revoked
    ):
        payload = (await data(client, full.token, REVOKE, {"input": {"id": token_id}}))[
            "revokeApiToken"
        ]
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["input", "id"], code)
        ], token_id
        assert payload["apiToken"] is None
    assert await everything() == before


async def test_pages_of_tokens_newest_first(client: httpx.AsyncClient) -> None:
    team, _ = await _partners()
    full = team[FULL]
    made = [(await _create(client, full.token, label=f"t{n}"))["apiToken"]["id"] for n in range(3)]
    first = (await data(client, full.token, LIST, {"first": 2}))["apiTokens"]
    assert first["totalCount"] == 8 and first["pageInfo"]["hasNextPage"] is True
    assert [n["id"] for n in first["nodes"]] == made[::-1][:2]
    rest = (
        await data(
            client, full.token, LIST, {"first": 100, "after": first["pageInfo"]["endCursor"]}
        )
    )["apiTokens"]
    assert rest["nodes"][0]["id"] == made[0]
    assert len(rest["nodes"]) == 6 and rest["pageInfo"]["hasNextPage"] is False


async def test_mutations_wait_for_the_organization_setup(client: httpx.AsyncClient) -> None:
    pending = await factories.partner("Pending Partners", "pending.example", setup_completed=False)
    full = await factories.admin(pending, FULL)
    target = gid("ApiToken", (await ApiToken.get(admin_id=full.admin.id)).id)
    before = await everything()
    for query, variables, name in (
        (CREATE, {"input": {"label": "x"}}, "createApiToken"),
        (REVOKE, {"input": {"id": target}}, "revokeApiToken"),
    ):
        [error] = (await data(client, full.token, query, variables))[name]["userErrors"]
        assert error["code"] == "FORBIDDEN" and "setup is pending" in error["message"]
    assert await everything() == before


# ---------------------------------------------------------------------- CLI ----


def test_every_token_command_has_help(tmp_path: Path) -> None:
    for command in (["token"], ["token", "create"], ["token", "list"], ["token", "revoke"]):
        result = run_cli([*command, "--help"], cli_env(None, tmp_path))
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
    create_help = run_cli(["token", "create", "--help"], cli_env(None, tmp_path)).stdout
    assert "--expires-in-days" in create_help


async def test_cli_create_list_and_revoke(
    client: httpx.AsyncClient, http_settings: Settings, tmp_path: Path
) -> None:
    team, contoso = await _partners()
    full = team[FULL]
    env = cli_env(http_settings.database_url, tmp_path)

    created = await asyncio.to_thread(
        run_cli,
        ["token", "create", "--email", full.admin.email.upper(), "--label", "nightly",
         "--expires-in-days", "3"],
        env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert re.fullmatch(r"phk_[A-Za-z0-9_-]{43}", secret)
    assert "only time it is shown" in created.stderr
    record = await ApiToken.get(token_hash=hash_token(secret))
    assert record.label == "nightly" and record.expires_at is not None
    assert timedelta(days=3) - timedelta(minutes=1) < record.expires_at - record.created_at
    assert record.expires_at - record.created_at <= timedelta(days=3)
    default = await asyncio.to_thread(
        run_cli, ["token", "create", "--email", contoso.admin.email], env
    )
    assert default.returncode == 0, default.stderr
    default_record = await ApiToken.get(token_hash=hash_token(default.stdout.strip()))
    assert default_record.expires_at is not None
    assert default_record.expires_at - default_record.created_at > timedelta(days=89)
    assert (await data(client, secret, WHO))["viewer"]["email"] == full.admin.email

    listed = await asyncio.to_thread(run_cli, ["token", "list", "--email", full.admin.email], env)
    assert listed.returncode == 0, listed.stderr
    for column in ("id", "label", "created", "last used", "expires", "revoked"):
        assert column in listed.stdout
    rows = _table_rows(listed.stdout)
    assert len(rows) == 2  # the factory's token and the new one, newest first
    assert rows[0][:2] == [str(record.id), "nightly"] and rows[0][-1] == "active"
    assert rows[0][4].startswith(record.expires_at.strftime("%Y-%m-%d"))
    assert rows[1][4] == "never"  # the factory's token was made without a lifetime
    assert secret not in listed.stdout and record.token_hash not in listed.stdout
    assert contoso.admin.email not in listed.stdout

    revoked = await asyncio.to_thread(run_cli, ["token", "revoke", str(record.id)], env)
    assert revoked.returncode == 0, revoked.stderr
    assert (
        revoked.stdout.strip() == f"revoked API token {record.id} (nightly) of {full.admin.email}"
    )
    # Refused on the next request, through the real app.
    assert (await gql(client, secret, WHO)).status_code == 401
    assert (await ApiToken.get(id=record.id)).revoked_at is not None
    listed_again = await asyncio.to_thread(
        run_cli, ["token", "list", "--email", full.admin.email], env
    )
    row = next(r for r in _table_rows(listed_again.stdout) if r[1] == "nightly")
    assert row[5] != "-" and row[-1] == "revoked"

    # Revoking again changes nothing and says so; the global id works too.
    again = await asyncio.to_thread(run_cli, ["token", "revoke", gid("ApiToken", record.id)], env)
    assert again.returncode == 0 and "already revoked" in again.stdout

    for bad in ("999999", "not-an-id", gid("Admin", full.admin.id), "99999999999999"):
        unknown = await asyncio.to_thread(run_cli, ["token", "revoke", bad], env)
        assert unknown.returncode == 1, bad
        assert one_line_error(unknown.stderr) == f"error: no API token has the id {bad!r}"
    assert (await gql(client, team[ADMIN].token, WHO)).status_code == 200  # others untouched


def _table_rows(stdout: str) -> list[list[str]]:
    """The body rows of a rich table, as lists of cells."""
    rows = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│|┃]", line)[1:-1]]
        if cells and cells[0].isdigit():
            rows.append(cells)
    return rows


async def test_cli_refuses_bad_options_in_one_line(http_settings: Settings, tmp_path: Path) -> None:
    team, _ = await _partners()
    email = team[FULL].admin.email
    env = cli_env(http_settings.database_url, tmp_path)
    before = await everything()
    for args, message in (
        (["--expires-in-days", "0"], "--expires-in-days: A token lives 1 to 3650 days (got 0)."),
        (["--expires-in-days", "3651"], "--expires-in-days: A token lives 1 to 3650 days"),
        (["--label", "x" * 101], "--label: A token label is at most 100 characters."),
    ):
        result = await asyncio.to_thread(run_cli, ["token", "create", "--email", email, *args], env)
        assert result.returncode == 1, args
        assert message in one_line_error(result.stderr)
        assert result.stdout == ""
    unknown = await asyncio.to_thread(
        run_cli, ["token", "list", "--email", "nobody@northwind.example"], env
    )
    assert unknown.returncode == 1
    assert "no admin has the email 'nobody@northwind.example'" in one_line_error(unknown.stderr)
    assert await everything() == before


async def test_demo_tokens_live_the_default_lifetime_and_if_empty_renews_them(
    db: Settings, tmp_path: Path
) -> None:
    env = cli_env(db.database_url, tmp_path)
    env["PARTNERHUB_API_TOKEN_TTL_DAYS"] = "30"
    loaded = await asyncio.to_thread(run_cli, ["demo", "--customers", "24", "--seed", "3"], env)
    assert loaded.returncode == 0, loaded.stderr
    hashes = [hash_token(a.token) for a in demo_admins(3)]
    tokens = await ApiToken.filter(token_hash__in=hashes)
    assert len(tokens) == 10
    soon = datetime.now(UTC) + timedelta(days=30)
    assert all(
        t.expires_at is not None and soon - timedelta(minutes=2) < t.expires_at <= soon
        for t in tokens
    )
    assert "10 demo token(s) valid until" in loaded.stdout

    # Time passes: the demo tokens expired (one was revoked on purpose).
    await ApiToken.filter(token_hash__in=hashes).update(
        expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    await ApiToken.filter(token_hash=hashes[1]).update(revoked_at=datetime.now(UTC))
    kept = await asyncio.to_thread(run_cli, ["demo", "--if-empty"], env)
    assert kept.returncode == 0, kept.stderr
    assert "already loaded (seed 3)" in kept.stdout
    assert "9 demo token(s) valid until" in kept.stdout
    renewed = {t.token_hash: t for t in await ApiToken.filter(token_hash__in=hashes)}
    assert renewed[hashes[0]].expires_at > datetime.now(UTC) + timedelta(days=29)
    assert renewed[hashes[1]].expires_at < datetime.now(UTC)  # a revoked token stays dead
    assert renewed[hashes[1]].revoked_at is not None


# ----------------------------------------------------------------- websocket ----


async def _open_subscription(port: int, token: str, report_id: str, protocol: str):
    """A websocket with a running reportUpdated subscription (its first message read)."""
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=[protocol],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}"},
    )
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    query = "subscription($id: ID!) { reportUpdated(id: $id) { id status } }"
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    await ws.send(
        json.dumps(
            {"id": "1", "type": start, "payload": {"query": query, "variables": {"id": report_id}}}
        )
    )
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] in ("next", "data"):
            break
    status = message["payload"]["data"]["reportUpdated"]["status"]
    assert status == "QUEUED", message
    return ws


async def _closed_within(ws, seconds: float) -> tuple[int | None, float]:
    """(close code, seconds it took) once the server closes the socket."""
    started = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), seconds)
    code = closed.value.rcvd.code if closed.value.rcvd else None
    return code, time.monotonic() - started


async def _still_open(ws) -> bool:
    pong = await ws.ping()
    await asyncio.wait_for(pong, 5)
    return ws.state is websockets.State.OPEN


async def test_an_open_websocket_closes_soon_after_its_token_is_revoked_or_expires(
    db: Settings, redis_url: str, tmp_path: Path
) -> None:
    """A real uvicorn (`partnerhub serve`) re-checking tokens every second."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    team = {name: await factories.admin(org, FULL) for name in ("keeper", "graphql", "cli")}
    legacy = await factories.admin(org, READ_ONLY)
    expiring = await factories.admin(org, SALES_FULL)
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    report = await create_report(
        org.id,
        ReportRequest(template, None, None, None),
        team["keeper"].admin.id,
        None,  # no job: the report stays QUEUED and the subscription open
        factories.NOW.date(),
    )
    report_id = gid("Report", report.id)
    ids = {name: (await ApiToken.get(admin_id=member.admin.id)).id for name, member in team.items()}
    env = cli_env(db.database_url, tmp_path / "var", redis_url=redis_url)
    env["PARTNERHUB_WEBSOCKET_AUTH_RECHECK_SECONDS"] = "1"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with running(["serve", "--port", str(port)], env, log) as server:
        await asyncio.to_thread(wait_healthy, base, server, log)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            keeper = await _open_subscription(
                port, team["keeper"].token, report_id, "graphql-transport-ws"
            )
            by_graphql = await _open_subscription(
                port, team["graphql"].token, report_id, "graphql-transport-ws"
            )
            by_cli = await _open_subscription(
                port, team["cli"].token, report_id, "graphql-transport-ws"
            )
            by_expiry = await _open_subscription(
                port, expiring.token, report_id, "graphql-transport-ws"
            )
            old_protocol = await _open_subscription(port, legacy.token, report_id, "graphql-ws")

            # Revoked through GraphQL: HTTP refuses it at once, the socket closes
            # within the re-check interval (1 s, plus scheduling slack).
            answer = await gql(
                http,
                team["keeper"].token,
                REVOKE,
                {"input": {"id": gid("ApiToken", ids["graphql"])}},
            )
            assert answer.json()["data"]["revokeApiToken"]["userErrors"] == []
            assert (await gql(http, team["graphql"].token, WHO)).status_code == 401
            code, took = await _closed_within(by_graphql, 10)
            assert code == 4401 and took < 3, (code, took)

            # Revoked with `partnerhub token revoke`: the same.
            revoked = await asyncio.to_thread(run_cli, ["token", "revoke", str(ids["cli"])], env)
            assert revoked.returncode == 0, revoked.stderr
            assert (await gql(http, team["cli"].token, WHO)).status_code == 401
            code, took = await _closed_within(by_cli, 10)
            assert code == 4401 and took < 3, (code, took)

            # The legacy graphql-ws subprotocol re-checks too.
            await ApiToken.filter(admin_id=legacy.admin.id).update(revoked_at=datetime.now(UTC))
            code, took = await _closed_within(old_protocol, 10)
            assert code == 4401 and took < 3, (code, took)

            # Expired while open: closed soon after its expiry, with no revocation.
            left = datetime.now(UTC) + timedelta(seconds=2)
            await ApiToken.filter(admin_id=expiring.admin.id).update(expires_at=left)
            code, took = await _closed_within(by_expiry, 10)
            assert code == 4401 and 1.5 < took < 5, (code, took)
            assert datetime.now(UTC) >= left
            assert (await gql(http, expiring.token, WHO)).status_code == 401

            # A socket whose token still works stayed open all along.
            assert await _still_open(keeper)
            await keeper.close()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
