"""The edge of the service: nothing runs without a viewer, query cost before
execution, per-viewer throttling in Redis, the operation time limit, body
limits, strict request bodies, and logs that help without leaking."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from app.config import Settings
from app.models.enums import AdminRole
from tests import factories
from tests.graphql_client import app_client, gql
from tests.test_customer_detail import counting_statements

ROOT = Path(__file__).resolve().parent.parent


async def forget_buckets(redis_url: str) -> None:
    """Empty every viewer's bucket (admin ids restart with each test's database)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter("partnerhub:throttle:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@asynccontextmanager
async def forgetting_buckets(redis_url: str) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await forget_buckets(redis_url)


async def full_admin() -> factories.AdminWithToken:
    org = await factories.partner("Northwind Partners", "northwind.example")
    return await factories.admin(org, AdminRole.FULL_ADMIN)


# ------------------------------------------------------------ authentication


# Every way of writing an operation parameter that a URL decoder reads as one.
ENCODED_OPERATIONS = [
    "query={__typename}",
    "%71uery={__typename}",
    "q%75ery={__typename}",
    "%71%75%65%72%79={__typename}",
    "query=%7B__typename%7D",
    "a=1&query={__typename}",
    "query=",
    "operationName=x",
    "op%65rationName=x",
    "variables={}",
    "%76ariables={}",
    "extensions={}",
    "%65xtensions={}",
    "Query={__typename}",
    "QUERY={__typename}",
]


@pytest.mark.parametrize("query_string", ENCODED_OPERATIONS)
async def test_an_operation_in_any_encoding_needs_a_token_even_from_a_browser(
    client: httpx.AsyncClient, query_string: str, caplog: pytest.LogCaptureFixture
) -> None:
    await full_admin()
    with caplog.at_level(logging.INFO):
        response = await client.get(f"/graphql?{query_string}", headers={"Accept": "text/html"})
    assert response.status_code == 401, (query_string, response.text)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "__typename" not in response.text and "data" not in response.json()
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a refused request"


async def test_the_graphiql_page_alone_opens_without_a_token(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    other = await client.get("/graphql?theme=dark", headers={"Accept": "text/html"})
    assert other.status_code == 200 and "graphiql" in other.text.lower()
    not_a_browser = await client.get("/graphql", headers={"Accept": "application/json"})
    assert not_a_browser.status_code == 401


# ------------------------------------------------------------ query cost


# Costs worked out by hand from the rules in README (query cost): object 1,
# scalar 0, connection 2 + first x item, a list its declared size
# (Customer.tags 20, userErrors 5), a mutation field 10 more.
HAND_COSTS = [
    ("{ viewer { email } }", {}, 1),
    ("{ viewer { email } organization { name } }", {}, 2),
    ("{ customers(first: 10) { totalCount nodes { id name } } }", {}, 2 + 10 * 1),
    ("{ customers(first: 10) { nodes { id tags { name } } } }", {}, 2 + 10 * (1 + 20)),
    ("{ customers(first: 10) { edges { cursor node { id } } pageInfo { hasNextPage } } }", {},
     2 + 10 * (0 + 1) + 1),
    ("{ customers { nodes { id } } }", {}, 2 + 50),  # default page size 50
    ("query($n: Int) { customers(first: $n) { nodes { id } } }", {"n": 7}, 2 + 7),
    ("query($n: Int = 3) { customers(first: $n) { nodes { id } } }", {}, 2 + 3),
    ("{ a: customers(first: 10) { nodes { id } } b: customers(first: 5) { nodes { id } } }", {},
     (2 + 10) + (2 + 5)),
    ("{ customers(first: 10) { nodes { ...F } } } fragment F on Customer { id tags { id } }", {},
     2 + 10 * (1 + 20)),
    ("{ customers(first: 10) { nodes { ... on Customer { tags { id } } } } }", {},
     2 + 10 * (1 + 20)),
    ("query($s: Boolean!) { viewer { email } customers(first: 100) @skip(if: $s) { nodes { id } } }",
     {"s": True}, 1),
    ("query($s: Boolean!) { viewer { email } customers(first: 100) @skip(if: $s) { nodes { id } } }",
     {"s": False}, 1 + 2 + 100),
    ("{ viewer { email } customers(first: 100) @include(if: false) { nodes { id } } }", {}, 1),
    ('mutation { createTag(input: {name: "VIP"}) { tag { id } userErrors { message } } }', {},
     10 + 1 + 1 + 5),
]  # fmt: skip


@pytest.mark.parametrize(("document", "variables", "expected"), HAND_COSTS)
async def test_every_answer_carries_its_cost_as_the_rules_give_it(
    client: httpx.AsyncClient, document: str, variables: dict, expected: int
) -> None:
    admin = await full_admin()
    response = await gql(client, admin.token, document, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == expected
    assert cost["actualQueryCost"] == expected
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 100_000 and status["restoreRate"] == 10_000
    assert 0 <= status["currentlyAvailable"] <= 100_000 - expected


FAN_OUT = """{ customers { nodes { partnerAdmins { admin { assignedCustomers { nodes {
  partnerAdmins { admin { assignedCustomers { nodes { name } } } } } } } } } } }"""


async def test_the_nested_fan_out_is_refused_before_any_sql_runs(
    client: httpx.AsyncClient,
) -> None:
    admin = await full_admin()
    with counting_statements() as baseline:
        assert (await gql(client, admin.token, "{ __typename }")).status_code == 200
    with counting_statements() as statements:
        response = await gql(client, admin.token, FAN_OUT)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["maxCost"] == 50_000
    # customers 50 x partnerAdmins 25 x assignedCustomers 50 x partnerAdmins 25 at least
    assert error["extensions"]["cost"] > 50 * 25 * 50 * 25
    assert body["extensions"]["cost"]["actualQueryCost"] == 0
    # Only the token lookup ran, as for a query that reads nothing.
    assert len(statements) == 1 and statements[0].startswith('SELECT "api_token"'), statements
    assert baseline and all('"api_token"' in s[:40] for s in baseline)


def _readme_operations() -> list[tuple[str, str | None]]:
    text = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```graphql\n(.*?)```", text, re.S):
        document = parse(block)
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                found.append((block, definition.name.value if definition.name else None))
    return found


SPA_PAGE = """{ customers(first: 50) { totalCount pageInfo { hasNextPage endCursor }
  nodes { id name orgId region statuses products
    licenseTotals { total assigned available overage } tags { id name }
    subscriptions(first: 10) { nodes { id subscriptionId status endDate
      licenses { product quantity assigned } } } } } }"""


def test_the_default_maximum_lets_every_readme_query_and_a_50_row_spa_page_through() -> None:
    from schema import schema
    from schema.query_cost import query_cost

    maximum = Settings().max_query_cost
    operations = _readme_operations()
    assert len(operations) >= 8
    for block, name in [*operations, (SPA_PAGE, None)]:
        cost = query_cost(schema._schema, parse(block), name, {})
        assert 0 < cost <= maximum, (name, block[:80], cost)
    assert query_cost(schema._schema, parse(FAN_OUT)) > maximum


def test_every_object_list_of_the_schema_has_a_declared_size() -> None:
    from graphql import GraphQLInterfaceType, GraphQLList, GraphQLNonNull, GraphQLObjectType

    from schema import schema
    from schema.query_cost import LIST_SIZES, TREND_ARGUMENT

    missing = []
    for type_ in schema._schema.type_map.values():
        if type_.name.startswith("__") or not isinstance(
            type_, GraphQLObjectType | GraphQLInterfaceType
        ):
            continue
        for name, field in type_.fields.items():
            inner, is_list = field.type, False
            while isinstance(inner, GraphQLList | GraphQLNonNull):
                is_list = is_list or isinstance(inner, GraphQLList)
                inner = inner.of_type
            if not is_list or not isinstance(inner, GraphQLObjectType | GraphQLInterfaceType):
                continue
            within_connection = type_.name.endswith("Connection") and name in ("edges", "nodes")
            if within_connection or name == "userErrors" or TREND_ARGUMENT in field.args:
                continue
            if f"{type_.name}.{name}" not in LIST_SIZES:
                missing.append(f"{type_.name}.{name}")
    assert missing == []


# ------------------------------------------------------------ throttling


async def test_a_viewer_past_its_bucket_is_throttled_and_others_are_not(
    http_settings: Settings, redis_url: str
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    first = await factories.admin(org, AdminRole.FULL_ADMIN)
    second = await factories.admin(org, AdminRole.FULL_ADMIN)
    settings = http_settings.model_copy(
        update={"max_query_cost": 100, "throttle_capacity": 100, "throttle_restore_rate": 1.0}
    )
    page = "{ customers(first: 40) { nodes { id } } }"  # 2 + 40 = 42 points
    await forget_buckets(redis_url)
    # Two API processes share one Redis: they draw from the same bucket.
    async with (
        app_client(settings, redis_url) as one,
        app_client(settings, redis_url) as two,
        forgetting_buckets(redis_url),
    ):
        assert (await gql(one, first.token, page)).status_code == 200  # 100 -> 58
        assert (await gql(two, first.token, page)).status_code == 200  # 58 -> 16
        refused = await gql(one, first.token, page)
        assert refused.status_code == 429
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "THROTTLED"
        # 42 - ~16 available at 1 point a second: about 26 s.
        assert 20 <= int(refused.headers["retry-after"]) <= 27
        assert refused.json()["extensions"]["cost"]["actualQueryCost"] == 0
        available = refused.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
        assert 15 <= available <= 20
        # Another viewer has a bucket of its own.
        assert (await gql(two, second.token, page)).status_code == 200
        # A cheap query still fits in what is left.
        cheap = await gql(two, first.token, "{ viewer { email } }")
        assert cheap.status_code == 200 and "errors" not in cheap.json()


async def test_with_redis_down_throttling_fails_open_with_one_warning(
    http_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await full_admin()
    settings = http_settings.model_copy(update={"throttle_capacity": 50_000})
    with caplog.at_level(logging.WARNING, logger="partnerhub.throttle"):
        async with app_client(settings, "redis://127.0.0.1:1/0") as http:
            for _ in range(4):
                response = await gql(http, admin.token, "{ viewer { email } }")
                assert response.status_code == 200
                assert response.json()["data"]["viewer"]["email"] == admin.admin.email
    warnings = [r for r in caplog.records if r.name == "partnerhub.throttle"]
    assert len(warnings) == 1 and "throttling is off" in warnings[0].getMessage()


def test_a_bucket_smaller_than_the_maximum_cost_is_a_settings_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="could never run"):
        Settings(max_query_cost=5000, throttle_capacity=4000)


# ------------------------------------------------------------ time limit


async def test_an_operation_past_the_time_limit_answers_timeout(
    http_settings: Settings, redis_url: str
) -> None:
    admin = await full_admin()
    org = admin.admin.partner_id
    from app.models.organization import PartnerOrganization

    partner = await PartnerOrganization.get(id=org)
    for _ in range(30):
        await factories.customer(partner)
    # A limit that has passed by the operation's first wait for Redis or the
    # database: asyncio stops a coroutine only where it waits, and the page's few
    # round trips on a local socket can all end within a millisecond.
    settings = http_settings.model_copy(update={"operation_timeout_seconds": 1e-9})
    page = "{ customers(first: 30) { nodes { id name statuses tags { name } } } }"
    async with app_client(settings, redis_url) as http:
        response = await gql(http, admin.token, page)
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "TIMEOUT"
    async with app_client(http_settings, redis_url) as http:  # the same page within 15 s
        answer = (await gql(http, admin.token, page)).json()
        assert len(answer["data"]["customers"]["nodes"]) == 30


async def test_a_blocked_query_times_out_while_healthz_answers(
    postgres_db: Settings, redis_url: str
) -> None:
    """A query waiting on a lock is stopped at the limit (and its statement
    cancelled on the server); /healthz answers meanwhile."""
    http_settings = postgres_db.model_copy(update={"redis_url": redis_url})
    import time

    import asyncpg

    admin = await full_admin()
    settings = http_settings.model_copy(update={"operation_timeout_seconds": 1.5})
    locker = await asyncpg.connect(http_settings.database_url)
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE customer IN ACCESS EXCLUSIVE MODE")
        async with app_client(settings, redis_url) as http:
            started = time.monotonic()
            blocked = asyncio.create_task(
                gql(http, admin.token, "{ customers(first: 5) { nodes { id } } }")
            )
            await asyncio.sleep(0.3)
            health_started = time.monotonic()
            health = await http.get("/healthz")
            assert health.status_code == 200 and time.monotonic() - health_started < 1.0
            response = await blocked
            elapsed = time.monotonic() - started
        assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
        assert 1.4 <= elapsed < 4.0
        # The server no longer runs the cancelled statement.
        running = await locker.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE '%FROM \"customer\"%' AND pid <> pg_backend_pid()"
        )
        assert running == 0
        await transaction.rollback()
    finally:
        await locker.close()


async def test_the_api_processes_statements_carry_a_statement_timeout(
    postgres_db: Settings,
) -> None:
    db = postgres_db
    from app.db import close_database, connection, open_database

    await close_database()
    await open_database(db, statement_timeout_seconds=16)
    rows = await connection().execute_query_dict("SHOW statement_timeout")
    assert rows[0]["statement_timeout"] == "16s"


# ------------------------------------------------------------ bodies


async def test_a_body_over_the_limit_is_413_without_being_read_whole(
    client: httpx.AsyncClient,
) -> None:
    admin = await full_admin()
    headers = {"Authorization": f"Bearer {admin.token}", "Content-Type": "application/json"}
    padding = " " * (1024 * 1024)
    big = ('{"query": "{ viewer { email } }"' + padding + "}").encode()
    declared = await client.post("/graphql", content=big, headers=headers)
    assert declared.status_code == 413
    assert declared.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for start in range(0, 150 * 1024 * 1024, 64 * 1024):
            sent.append(start)
            yield big[: 64 * 1024] if start == 0 else b" " * (64 * 1024)

    streamed = await client.post("/graphql", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert len(sent) * 64 * 1024 <= 1024 * 1024 + 2 * 64 * 1024  # stopped near 1 MiB
    small = await client.post(
        "/graphql", content=b'{"query": "{ viewer { email } }"}', headers=headers
    )
    assert small.status_code == 200 and small.json()["data"]["viewer"]["email"]


BAD_BODIES = [
    (b'"x"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b"1", "must be a JSON object"),
    (b"true", "must be a JSON object"),
    (b"[]", "Batched operations are not supported"),
    (b'[{"query": "{ viewer { email } }"}]', "Batched operations are not supported"),
    (b"{", "not valid JSON"),
    (b"", "not valid JSON"),
    (b'{"query": "{ viewer { email } }"} x', "not valid JSON"),
    (b'{"query": "\xff\xfe"}', "not UTF-8"),
    (b"\xc3\x28", "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
async def test_a_body_that_is_not_one_utf8_json_object_is_400_json(
    client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    admin = await full_admin()
    response = await client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {admin.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["errors"][0]
    assert message in error["message"] and error["extensions"]["code"] == "BAD_REQUEST"


async def test_get_variables_that_are_not_an_object_are_400_json(
    client: httpx.AsyncClient,
) -> None:
    admin = await full_admin()
    for variables in ("[1]", "null", "{", '"x"'):
        response = await client.get(
            "/graphql",
            params={"query": "{ viewer { email } }", "variables": variables},
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        assert response.status_code == 400, variables
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# ------------------------------------------------------------ logs


async def test_client_errors_are_one_info_line_without_a_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.ADMIN)
    documents = [
        ("query Misspelt { viewer { emial } }", "GRAPHQL_VALIDATION_FAILED"),
        ("query Audit { auditLog { totalCount } }", "FORBIDDEN"),
        ("query Page { customers(first: 0) { totalCount } }", "INVALID"),
        (f"query Costly {FAN_OUT}", "MAX_COST_EXCEEDED"),
    ]
    for document, code in documents:
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            response = await gql(client, admin.token, document)
        assert response.json()["errors"][0]["extensions"]["code"] == code, response.text
        lines = [
            r for r in caplog.records if r.levelno >= logging.INFO and "error" in r.getMessage()
        ]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].levelno == logging.INFO and lines[0].exc_info is None
        name = document.split()[1]
        assert name in lines[0].getMessage() and code in lines[0].getMessage()


async def test_an_unexpected_error_is_logged_once_with_the_request_id_the_client_gets(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A table gone missing (a broken deployment) is an unexpected error."""
    from app.db import connection

    admin = await full_admin()
    await connection().execute_script('ALTER TABLE "tag" RENAME TO "tag_moved"')
    try:
        with caplog.at_level(logging.INFO):
            response = await client.post(
                "/graphql",
                json={"query": "query Tags { tags { name } }"},
                headers={"Authorization": f"Bearer {admin.token}", "X-Request-ID": "req-42.a"},
            )
    finally:
        await connection().execute_script('ALTER TABLE "tag_moved" RENAME TO "tag"')
    error = response.json()["errors"][0]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42.a"}
    assert response.headers["x-request-id"] == "req-42.a"
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and "req-42.a" in logged[0].getMessage()
    assert "Tags" in logged[0].getMessage()


async def test_requests_get_an_id_unless_they_bring_a_sane_one(
    client: httpx.AsyncClient,
) -> None:
    fresh = await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    for unsafe in ("a b", "x" * 65, "id\u00e9", ""):
        answer = await client.get("/healthz", headers={"X-Request-ID": unsafe.encode("utf-8")})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


def test_access_log_lines_show_no_signature_and_no_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from app.http import create_app

    create_app(Settings())  # installs the filter on uvicorn's access logger
    access = logging.getLogger("uvicorn.access")
    targets = [
        "/reports/7/download?expires=1790000000&signature=abc.DEF-_123",
        "/reports/7/download?signature=s3cret&expires=1",
        "/graphql?query=%7Bviewer%7D&token=phk_secret",
        "/graphql?access_token=phk_secret&x=1",
    ]
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        for target in targets:
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", target, "1.1", 200)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == len(targets)
    for line in lines:
        assert "s3cret" not in line and "abc.DEF" not in line and "phk_secret" not in line
        assert "REDACTED" in line
    assert "expires=1790000000" in lines[0] and "/reports/7/download" in lines[0]


# ------------------------------------------------------------ a real server


def test_a_real_server_caps_bodies_and_websocket_messages_and_redacts_its_access_log(
    tmp_path: Path,
) -> None:
    """`partnerhub serve` under uvicorn: the body cap, the websocket message cap
    (uvicorn closes with 1009) and the access log without signatures."""
    import json

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from app.demo import demo_admins
    from tests.cli_process import cli_env, free_port, run_cli
    from tests.test_serve import running, wait_healthy

    env = cli_env(None, tmp_path / "var")
    env["PARTNERHUB_MAX_BODY_BYTES"] = "4096"
    env["PARTNERHUB_MAX_WEBSOCKET_MESSAGE_BYTES"] = "2048"
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24", "--if-empty"], env).returncode == 0
    port = free_port()
    log = tmp_path / "serve.log"
    token = demo_admins(1)[0].token
    auth = {"Authorization": f"Bearer {token}"}
    with running(["serve", "--port", str(port)], env, log) as server:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, log)
        query = {"query": "{ viewer { email } }", "variables": {}}
        assert httpx.post(f"{base}/graphql", json=query, headers=auth).status_code == 200
        padded = {**query, "padding": "x" * 5000}
        too_big = httpx.post(f"{base}/graphql", json=padded, headers=auth)
        assert too_big.status_code == 413
        assert too_big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        link = f"{base}/reports/1/download?expires=1790000000&signature=SeCrEtSiGnAtUrE"
        assert httpx.get(link).status_code in (403, 404, 410)

        with connect(
            f"ws://127.0.0.1:{port}/graphql",
            subprotocols=["graphql-transport-ws"],
            additional_headers=auth,
            open_timeout=10,
        ) as socket:
            socket.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(socket.recv(timeout=10))["type"] == "connection_ack"
            small = "{ viewer { email } }"
            socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": small}}))
            answer = json.loads(socket.recv(timeout=10))
            assert answer["type"] == "next" and answer["payload"]["data"]["viewer"]["email"]
            socket.send(
                json.dumps(
                    {"id": "2", "type": "subscribe", "payload": {"query": small + " " * 4000}}
                )
            )
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(5):
                    socket.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    text = log.read_text()
    assert "/reports/1/download?expires=1790000000&signature=REDACTED" in text
    assert "SeCrEtSiGnAtUrE" not in text and token not in text
