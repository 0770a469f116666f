"""PostgreSQL stopped under a running service: every answer is JSON (HTTP 503,
`UNAVAILABLE`, Retry-After), whether the database is lost while signing in,
inside a resolver, on ingest or on a download; /livez stays 200 and /readyz
is 503; a websocket sign-in is refused with 1013 (try again later). Once
PostgreSQL is back, the same process answers again by itself.

PostgreSQL is a server of this module's own (tests/fault_cluster.py's
Postgres), stopped and started again on its port with its data; the session's
server is never touched.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import websockets

from app.clock import utcnow
from app.config import Settings
from app.db import close_database, open_database
from app.domain.downloads import sign_download
from app.middleware import DATABASE_OUTAGE
from app.models.enums import AdminRole, ReportStatus
from app.models.reports import Report, ReportTemplate
from tests import factories
from tests.cli_process import cli_env, free_port, run_cli
from tests.conftest import empty_all_tables
from tests.fault_cluster import Postgres
from tests.graphql_client import app_client, gql
from tests.test_serve import running, wait_healthy

SECRET_KEY = "outage-http-secret-key-0123456789abcdef0123456789"
VIEWER = "{ viewer { email } }"
CUSTOMERS = "{ customers(first: 5) { totalCount nodes { name } } }"
CSV = b"customer,devices\r\nAcme,3\r\n"
# PostgreSQL back: the replica answers again within this (it usually takes
# well under a second: the next request connects again).
RECOVERY_LIMIT_SECONDS = 30


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A migrated PostgreSQL of this module's own, on a port of its own."""
    server = Postgres(free_port())
    try:
        server.init()
        server.start()
        server.create_database()
        env = cli_env(server.url(), tmp_path_factory.mktemp("outage-migrate"))
        migrated = run_cli(["migrate"], env)
        assert migrated.returncode == 0, migrated.stderr
        yield server
    finally:
        server.teardown()


@dataclass
class World:
    settings: Settings
    token: str
    org_id: str
    report_id: int

    def download_path(self) -> str:
        return sign_download(SECRET_KEY, "", self.report_id, utcnow(), 3600).url

    def sign_in_line(self) -> bytes:
        line = {"orgId": self.org_id, "userEmail": "boss@acme.example"}
        return json.dumps({**line, "signedInAt": "2026-11-12T08:00:00+01:00"}).encode() + b"\n"


@pytest.fixture
async def world(pg: Postgres, tmp_path: Path, redis_url: str) -> AsyncIterator[World]:
    """A partner with a FULL_ADMIN token, a customer and a finished report whose
    file is on disk, on the module's PostgreSQL (running again at the end)."""
    if not pg.running:
        pg.start()
    settings = Settings(
        DATABASE_URL=pg.url(),
        REDIS_URL=redis_url,
        var_dir=tmp_path / "var",
        secret_key=SECRET_KEY,
    )
    await open_database(settings, statement_timeout_seconds=16)
    await empty_all_tables()
    org = await factories.partner("Northwind Partners", "northwind.example")
    viewer = await factories.admin(org, AdminRole.FULL_ADMIN)
    customer = await factories.customer(org, "Acme")
    template = await ReportTemplate.all().order_by("id").first()
    report = await Report.create(
        partner=org,
        template=template,
        status=ReportStatus.SUCCEEDED,
        storage_key="outage/devices.csv",
        file_name="devices.csv",
    )
    path = settings.report_folder / "outage" / "devices.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(CSV)
    DATABASE_OUTAGE.recovered()  # whatever an earlier test left
    try:
        yield World(settings, viewer.token, str(customer.org_id), report.id)
    finally:
        if not pg.running:
            pg.start()
        await close_database()


def assert_unavailable(answer: httpx.Response) -> list[dict]:
    """HTTP 503, JSON, Retry-After, every error UNAVAILABLE saying to retry."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/json", answer.headers
    assert answer.headers["retry-after"] == "5", answer.headers
    errors = answer.json()["errors"]
    assert errors, answer.text
    for error in errors:
        assert error["extensions"]["code"] == "UNAVAILABLE", error
        assert "database is unreachable" in error["message"], error
        assert "retry" in error["message"], error
    return errors


async def ingest(http: httpx.AsyncClient, world: World) -> httpx.Response:
    return await http.post(
        "/ingest/admin-sign-ins",
        content=world.sign_in_line(),
        headers={"Authorization": f"Bearer {world.token}"},
    )


async def test_database_down_answers_json_503_everywhere_and_recovers_by_itself(
    pg: Postgres, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_client(world.settings, world.settings.redis_url or "") as http:
        assert (await gql(http, world.token, VIEWER)).status_code == 200
        assert (await ingest(http, world)).json() == {"kind": "admin-sign-ins", "accepted": 1}
        assert (await http.get(world.download_path())).content == CSV

        await asyncio.to_thread(pg.stop, "fast")
        # The token is looked up in the database: the sign-in itself is refused for now.
        assert_unavailable(await gql(http, world.token, VIEWER))
        assert_unavailable(await ingest(http, world))
        assert_unavailable(await http.get(world.download_path()))
        live = await http.get("/livez")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            503,
            {"status": "unavailable", "database": "unreachable", "redis": "ok"},
        )
        health = await http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"] == "unreachable"

        await asyncio.to_thread(pg.start)
        deadline = time.monotonic() + RECOVERY_LIMIT_SECONDS
        while (answer := await gql(http, world.token, VIEWER)).status_code != 200:
            assert_unavailable(answer)
            assert time.monotonic() < deadline, "no answer after PostgreSQL came back"
            await asyncio.sleep(0.2)
        assert answer.json()["data"]["viewer"]["email"].endswith("@northwind.example")
        assert (await ingest(http, world)).status_code == 200
        assert (await http.get(world.download_path())).content == CSV
        assert (await http.get("/readyz")).status_code == 200

    # The outage is logged once when it starts and once when it ends, with no
    # traceback, however many requests failed meanwhile.
    lines = [r.getMessage() for r in caplog.records if r.name == "partnerhub.http"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("Database (HTTP requests) unreachable ("), lines
    assert lines[1].startswith("Database (HTTP requests) reachable again after "), lines
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_a_resolver_that_loses_the_database_answers_503_unavailable(
    pg: Postgres, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed in while the database was up, the query waits on a lock when
    PostgreSQL shuts down under it: the answer is 503 UNAVAILABLE (not
    "Unexpected error."), and the next query after PostgreSQL is back runs."""
    async with app_client(world.settings, world.settings.redis_url or "") as http:
        locker = await asyncpg.connect(pg.url())
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE customer IN ACCESS EXCLUSIVE MODE")
            request = asyncio.create_task(gql(http, world.token, CUSTOMERS))
            deadline = time.monotonic() + 20
            while not await locker.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ):
                assert not request.done(), request.result().text
                assert time.monotonic() < deadline, "the query never waited on the lock"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(pg.stop, "fast")
            answer = await asyncio.wait_for(request, 30)
        finally:
            locker.terminate()
        errors = assert_unavailable(answer)
        assert {e["path"][0] for e in errors} == {"customers"}
        assert not [r for r in caplog.records if r.name == "partnerhub.graphql" and r.exc_info]

        await asyncio.to_thread(pg.start)
        deadline = time.monotonic() + RECOVERY_LIMIT_SECONDS
        while (answer := await gql(http, world.token, CUSTOMERS)).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            await asyncio.sleep(0.2)
        assert answer.json()["data"]["customers"]["nodes"] == [{"name": "Acme"}]


async def websocket_sign_in(port: int, token: str, subprotocol: str) -> tuple[list[dict], int]:
    """Open /graphql, send connection_init with the token: the messages heard
    and the close code (0 while still open after a connection_ack)."""
    heard: list[dict] = []
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/graphql", subprotocols=[subprotocol], open_timeout=10
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        try:
            while True:
                heard.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
                if heard[-1]["type"] == "connection_ack":
                    return heard, 0
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return heard, closed.rcvd.code
    raise AssertionError("unreachable")


def test_a_served_replica_answers_503_meanwhile_and_is_ready_again_without_restart(
    pg: Postgres, world: World, tmp_path: Path
) -> None:
    """A real `partnerhub serve` (PostgreSQL, REDIS_URL): the outage as its
    clients and its load balancer see it, and how long it takes to be ready
    again once PostgreSQL is back (printed; the same process, no restart)."""
    env = cli_env(pg.url(), world.settings.var_dir, world.settings.redis_url)
    env["PARTNERHUB_SECRET_KEY"] = SECRET_KEY
    env["PARTNERHUB_PUBLIC_BASE_URL"] = "https://partnerhub.example"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with (
        running(["serve", "--port", str(port)], env, log) as server,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        wait_healthy(base, server, log)
        auth = {"Authorization": f"Bearer {world.token}"}
        assert http.post("/graphql", json={"query": VIEWER}, headers=auth).status_code == 200

        pg.stop("fast")
        try:
            assert_unavailable(http.post("/graphql", json={"query": VIEWER}, headers=auth))
            assert_unavailable(
                http.post("/ingest/admin-sign-ins", content=world.sign_in_line(), headers=auth)
            )
            assert_unavailable(http.get(world.download_path()))
            assert http.get("/livez").status_code == 200
            assert http.get("/readyz").status_code == 503
            heard, code = asyncio.run(websocket_sign_in(port, world.token, "graphql-transport-ws"))
            assert (heard, code) == ([], 1013)
            heard, code = asyncio.run(websocket_sign_in(port, world.token, "graphql-ws"))
            assert code == 1013
            assert [m["type"] for m in heard] == ["connection_error"]
            assert heard[0]["payload"]["extensions"] == {"code": "UNAVAILABLE"}
            assert "database is unreachable" in heard[0]["payload"]["message"]
        finally:
            pg.start()
        back = time.monotonic()
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() - back < RECOVERY_LIMIT_SECONDS, log.read_text()[-3000:]
            time.sleep(0.05)
        ready_after = time.monotonic() - back
        answer = http.post("/graphql", json={"query": VIEWER}, headers=auth)
        assert answer.status_code == 200, answer.text
        served_after = time.monotonic() - back
        print(
            f"\nreplica ready {ready_after:.2f} s and answering GraphQL {served_after:.2f} s "
            "after PostgreSQL returned"
        )
        assert http.post(
            "/ingest/admin-sign-ins", content=world.sign_in_line(), headers=auth
        ).json() == {"kind": "admin-sign-ins", "accepted": 1}
        assert http.get(world.download_path()).content == CSV
        assert asyncio.run(websocket_sign_in(port, world.token, "graphql-transport-ws")) == (
            [{"type": "connection_ack"}],
            0,
        )
        assert server.poll() is None, "the replica was restarted"
    assert server.returncode in (0, -signal.SIGTERM), log.read_text()
    text = log.read_text()
    assert "Traceback" not in text, text[-4000:]
    assert text.count("Database (HTTP requests) unreachable") == 1, text[-4000:]
    assert text.count("Database (HTTP requests) reachable again") == 1, text[-4000:]
    assert "PUBLIC_BASE_URL" not in text  # set here: no warning
