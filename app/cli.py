"""The `partnerhub` command: serve, worker, status, migrate, demo, token create/list/revoke.

Every failure a user can cause or fix (a bad setting, an unreachable database
or Redis, an unmigrated database, demo data on a non-empty database) ends with
one line on stderr that says what is wrong and what to do, and exit code 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, BinaryIO, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.config import Settings, SettingsError, get_settings, redacted_url
from app.db import DatabaseError, apply_migrations, close_database, open_database
from app.logs import configure_logging, logging_config
from app.queue import QueueError

T = TypeVar("T")

cli = typer.Typer(
    help="Partner Hub API: manage all your customer organizations from one GraphQL service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
token_cli = typer.Typer(help="Manage API tokens of partner admins.", no_args_is_help=True)
cli.add_typer(token_cli, name="token")
documents_cli = typer.Typer(
    help="Trusted documents (persisted queries) for browser sign-ins.", no_args_is_help=True
)
cli.add_typer(documents_cli, name="documents")
report_cli = typer.Typer(help="Generate reports from the command line.", no_args_is_help=True)
cli.add_typer(report_cli, name="report")

out = Console()
err = Console(stderr=True)


class UserFacingError(Exception):
    """Raised by a command to end with a one-line message and exit code 1."""


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _settings() -> Settings:
    try:
        settings = get_settings()
    except SettingsError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    # Logs in PARTNERHUB_LOG_FORMAT; warnings only, but for serve and worker.
    configure_logging(settings, quiet=True)
    return settings


def _fresh_metrics_dir(settings: Settings, port: int) -> None:
    """Every HTTP process of `serve` keeps its metrics in files of one folder,
    emptied now, which /metrics sums (app/metrics.py). It must be set before
    uvicorn starts its processes, which read it when they start."""
    folder = (settings.var_dir / "metrics" / f"serve-{port}").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; known failures end the command with a one-line message."""
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except (SettingsError, DatabaseError, QueueError, UserFacingError) as exc:
        fail(str(exc))
        raise  # unreachable


def _with_database(
    settings: Settings, work: Callable[[], Awaitable[T]]
) -> Callable[[], Awaitable[T]]:
    async def run() -> T:
        await open_database(settings)
        try:
            return await work()
        finally:
            await close_database()

    return run


@cli.command()
def migrate() -> None:
    """Create or update the database schema (SQLite or PostgreSQL)."""
    settings = _settings()
    applied = run_async(lambda: apply_migrations(settings))
    if applied:
        out.print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        out.print("database is up to date")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="HTTP worker processes (needs PostgreSQL and REDIS_URL).")
    ] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated addresses (or '*') of the proxies whose X-Forwarded-For and "
            "X-Forwarded-Proto are trusted for the client address and scheme "
            "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1).",
        ),
    ] = None,
) -> None:
    """Serve /graphql (with GraphiQL) and the health probes /livez, /readyz, /healthz.

    Without REDIS_URL an embedded Valkey server starts and the ARQ worker runs
    inside this process; with REDIS_URL, run `partnerhub worker` separately.
    """
    import uvicorn

    settings = _settings()
    if workers > 1 and (settings.is_sqlite or settings.embedded_redis):
        fail("--workers above 1 needs DATABASE_URL=postgres://... and REDIS_URL=redis://...")
    _fresh_metrics_dir(settings, port)

    async def preflight() -> None:
        await open_database(settings)  # reachable and migrated, or a clear error
        await close_database()
        if not settings.embedded_redis:
            from app.queue import ping

            await ping(settings.redis_url or "")

    run_async(preflight)
    if settings.trusted_documents_file is not None:
        from app.persisted_queries import ManifestError, TrustedDocuments

        try:
            TrustedDocuments.load(settings.trusted_documents_file)
        except ManifestError as exc:
            fail(str(exc))
    if settings.public_base_url is None and not settings.is_sqlite:
        # Behind a proxy the links would point at this machine (README: deploying).
        _warn(
            settings,
            "PARTNERHUB_PUBLIC_BASE_URL is not set: report download links (in the API and in "
            "webhooks) will point at "
            "http://127.0.0.1:8000; set it to the address clients reach this service at "
            "(e.g. https://partnerhub.example.com)",
        )
    mode = "embedded Valkey + in-process worker" if settings.embedded_redis else "external Redis"
    banner = f"Partner Hub API on http://{host}:{port}/graphql ({mode})"
    configure_logging(settings)  # at PARTNERHUB_LOG_LEVEL from here on
    if settings.log_format == "json":  # every line JSON, this one too
        logging.getLogger("partnerhub.serve").info(banner)
    else:
        out.print(banner)
    uvicorn.run(
        "app.http:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        # The same log format in each worker process as here (app/logs.py).
        log_config=logging_config(settings),
        lifespan="on",
        # graphql-transport-ws messages over this size close the socket (1009).
        ws_max_size=settings.max_websocket_message_bytes,
        # Open websockets close with 1001 (going away) on shutdown: app/server.py.
        ws="app.server:GoingAwayWebSockets",
    )


@cli.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Run the queued jobs, then exit.")] = False,
) -> None:
    """Run an ARQ worker on REDIS_URL (start as many as you like)."""
    settings = _settings()
    if settings.embedded_redis:
        fail(
            "REDIS_URL is not set: the embedded default runs the worker inside `partnerhub serve`. "
            "Set REDIS_URL=redis://HOST:PORT/DB to run separate workers."
        )
    from workers.settings import build_worker

    async def preflight() -> None:
        from app.queue import ping

        await ping(settings.redis_url or "")
        await open_database(settings)
        await close_database()

    run_async(preflight)
    configure_logging(settings)
    if settings.worker_metrics_port is not None:
        from app.metrics import serve_worker_metrics

        try:
            serve_worker_metrics(
                settings.worker_metrics_port, settings.redis_url or "", settings.metrics_token
            )
        except OSError as exc:
            port = settings.worker_metrics_port
            fail(f"PARTNERHUB_WORKER_METRICS_PORT {port}: {exc.strerror or exc}")
    build_worker(settings.redis_url or "", in_process=False, burst=burst, settings=settings).run()


def _warn(settings: Settings, message: str) -> None:
    """One warning line on stderr (a JSON log line with PARTNERHUB_LOG_FORMAT=json)."""
    if settings.log_format == "json":
        logging.getLogger("partnerhub.serve").warning(message)
    else:
        err.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


@cli.command()
def status() -> None:
    """Whether the service can do its work: the database (reachable, migrated),
    Redis, the workers alive (id, running jobs, last heartbeat) and the queue
    (jobs ready and deferred, how long the oldest ready one has waited).

    Exit code 0 when the database and Redis answer and at least one worker is
    alive, else 1 with the reason on one line. Without REDIS_URL the workers
    run inside `partnerhub serve` on the Valkey it starts: status reads that
    one (same PARTNERHUB_VAR_DIR); a running serve also answers GET /healthz.
    """
    import time

    from app.health import service_status

    settings = _settings()
    found = run_async(lambda: service_status(settings))
    engine = "SQLite" if settings.is_sqlite else "PostgreSQL"
    out.print(f"database  {found.database} ({engine})", highlight=False)
    where = redacted_url(found.redis_url) if found.redis_url else "no REDIS_URL"
    if found.embedded:
        where += ", the embedded Valkey of `partnerhub serve`; its workers run inside it"
    out.print(f"redis     {found.redis} ({where})", highlight=False, soft_wrap=True)
    if found.queue is None:
        out.print("workers   unknown (Redis does not answer)", highlight=False)
    else:
        now = time.time()
        out.print(f"workers   {len(found.queue.workers)} alive", highlight=False)
        for worker in found.queue.workers:
            jobs = "job" if worker.running_jobs == 1 else "jobs"
            draining = ", draining" if worker.draining else ""
            out.print(
                f"          {worker.id}  {worker.running_jobs} running {jobs}, "
                f"last beat {max(0.0, now - worker.beat_at):.0f} s ago{draining}",
                highlight=False,
                soft_wrap=True,
            )
        oldest = found.queue.oldest_ready_seconds
        waiting = "" if oldest is None else f"; the oldest ready job has waited {oldest:.0f} s"
        out.print(
            f"queue     {found.queue.ready_jobs} ready, {found.queue.deferred_jobs} deferred"
            f"{waiting}",
            highlight=False,
        )
    if found.problem is not None:
        fail(found.problem)


@cli.command()
def demo(
    customers: Annotated[
        int,
        typer.Option(
            min=1, max=1_000_000, help="Customers in all, split between the two partners."
        ),
    ] = 300,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 1,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Load only into an empty database, else keep it.")
    ] = False,
) -> None:
    """Load demo data (Northwind and Contoso partners) and print the demo admins' tokens."""
    from app.demo import DemoError, database_is_empty, ensure_demo_can_load, load_demo, loaded_demo

    settings = _settings()

    async def work() -> int | None:
        if if_empty and not await database_is_empty():
            dataset = await loaded_demo()
            if dataset is None:
                out.print("database holds data that is not the demo: nothing loaded")
                return None
            out.print(f"demo data already loaded (seed {dataset.seed}): nothing loaded")
            await _renew_demo_tokens(dataset.seed, settings)
            return dataset.seed
        try:
            await ensure_demo_can_load(customers)
        except DemoError as exc:
            raise UserFacingError(str(exc)) from None
        with Progress(
            TextColumn("loading demo data"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("customers"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as bar:
            task = bar.add_task("demo", total=customers)
            summary = await load_demo(customers, seed, progress=lambda n: bar.advance(task, n))
        total = sum(summary.rows.values())
        out.print(f"loaded {summary.customers} customers ({total:,} rows, seed {seed})")
        await _renew_demo_tokens(seed, settings)
        return seed

    loaded_seed = run_async(_with_database(settings, work))
    if loaded_seed is not None:
        _print_demo_tokens(loaded_seed)


def _print_demo_tokens(seed: int) -> None:
    from app.demo import demo_admins

    table = Table(title="Demo admins (send `Authorization: Bearer <token>`)")
    table.add_column("partner")
    table.add_column("email")
    table.add_column("role")
    table.add_column("token", no_wrap=True)
    for admin in demo_admins(seed):
        table.add_row(admin.partner, admin.email, admin.role.value, admin.token)
    Console(width=200).print(table)


@token_cli.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="Email of the admin the token acts for.")],
    label: Annotated[
        str, typer.Option(help="A note to recognise the token by (at most 100 characters).")
    ] = "",
    expires_in_days: Annotated[
        int | None,
        typer.Option(
            help="Lifetime in days, 1 to 3650; default PARTNERHUB_API_TOKEN_TTL_DAYS (90).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create an API token for an admin and print it (it is shown only once)."""
    from app.auth import UnknownAdminError
    from app.domain.api_tokens import create_token_for_email
    from app.domain.errors import MutationRejected

    settings = _settings()

    async def work() -> tuple[str, datetime | None]:
        try:
            created = await create_token_for_email(
                email, label, expires_in_days, settings.api_token_ttl_days
            )
        except UnknownAdminError as exc:
            raise UserFacingError(str(exc)) from None
        except MutationRejected as rejected:
            [error] = rejected.errors
            raise UserFacingError(f"--{'-'.join(error.field or ())}: {error.message}") from None
        return created.secret, created.record.expires_at

    token, expires_at = run_async(_with_database(settings, work))
    sys.stdout.write(token + "\n")
    err.print(f"expires {_when(expires_at, 'never')}; this is the only time it is shown")


def _when(moment: datetime | None, none: str = "-") -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else none


@token_cli.command("list")
def token_list(
    email: Annotated[str, typer.Option(help="Email of the admin whose tokens to list.")],
) -> None:
    """List an admin's API tokens, newest first (never their secrets)."""
    from app.auth import UnknownAdminError
    from app.clock import utcnow
    from app.domain.api_tokens import is_active, tokens_of_email

    settings = _settings()

    async def work() -> list:
        try:
            return await tokens_of_email(email)
        except UnknownAdminError as exc:
            raise UserFacingError(str(exc)) from None

    tokens = run_async(_with_database(settings, work))
    if not tokens:
        out.print(f"{email.strip().lower()} has no API tokens", highlight=False, soft_wrap=True)
        return
    now = utcnow()
    table = Table(title=f"API tokens of {email.strip().lower()}")
    for column in ("id", "label", "created", "last used", "expires", "revoked", "status"):
        table.add_column(column, no_wrap=True)
    for t in tokens:
        status = "active" if is_active(t, now) else "revoked" if t.revoked_at else "expired"
        table.add_row(
            str(t.id),
            t.label or "-",
            _when(t.created_at),
            _when(t.last_used_at),
            _when(t.expires_at, "never"),
            _when(t.revoked_at),
            status,
        )
    Console(width=200).print(table)


@token_cli.command("revoke")
def token_revoke(
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The token's id (from `token list`) or global id.")
    ],
) -> None:
    """Revoke an API token: it stops working at once (open websockets close soon after)."""
    from app.domain.api_tokens import revoke_token_by_id
    from app.domain.ids import decode_id_of

    settings = _settings()
    pk = int(token_id) if token_id.isascii() and token_id.isdigit() else None
    pk = pk or decode_id_of(token_id, "ApiToken")
    if pk is None or pk > 2**31 - 1:
        fail(f"no API token has the id {token_id!r}")
        return

    async def work() -> tuple | None:
        return await revoke_token_by_id(pk)

    outcome = run_async(_with_database(settings, work))
    if outcome is None:
        fail(f"no API token has the id {token_id!r}")
        return
    token, revoked_now = outcome
    label = f" ({token.label})" if token.label else ""
    if revoked_now:
        message = f"revoked API token {token.id}{label} of {token.admin.email}"
    else:
        message = (
            f"API token {token.id}{label} of {token.admin.email} was already revoked "
            f"at {_when(token.revoked_at)}"
        )
    out.print(message, highlight=False, soft_wrap=True)


async def _renew_demo_tokens(seed: int, settings: Settings) -> None:
    """The demo tokens printed by `demo` live api_token_ttl_days from now (unless revoked)."""
    from app.clock import utcnow
    from app.demo import demo_admins
    from app.domain.api_tokens import renew_tokens

    days = settings.api_token_ttl_days
    tokens = [admin.token for admin in demo_admins(seed)]
    renewed = await renew_tokens(tokens, days)
    until = (utcnow() + timedelta(days=days)).date().isoformat()
    revoked = f"; {len(tokens) - renewed} revoked, not renewed" if renewed < len(tokens) else ""
    out.print(
        f"{renewed} demo token(s) valid until {until} (renewed by each `demo --if-empty`){revoked}",
        highlight=False,
        soft_wrap=True,
    )


@cli.command("ingest")
def ingest_file(
    kind: Annotated[
        str,
        typer.Argument(
            help="call-legs, license-snapshots, devices, phone-numbers, app-sessions, "
            "daily-usage or admin-sign-ins"
        ),
    ],
    file: Annotated[str, typer.Argument(help="NDJSON file, one object a line ('-' for stdin)")],
    email: Annotated[
        str, typer.Option(help="Email of a FULL_ADMIN of the partner the data belongs to.")
    ],
) -> None:
    """Push an NDJSON file, streamed in batches of 50,000 lines (each batch all or nothing)."""
    from app.auth import viewer_for_email
    from app.domain.ingest import KINDS, MAX_LINES, IngestRejected, ingest

    if kind not in KINDS:
        fail(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    settings = _settings()
    if file != "-" and not Path(file).is_file():
        fail(f"no file at {file}")
    total = None if file == "-" else _count_lines(Path(file))

    async def work() -> int:
        viewer = await viewer_for_email(email)
        if viewer is None:
            raise UserFacingError(f"no admin has the email {email.strip()!r}")
        done = 0
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: ASYNC230
        with (
            stream,
            Progress(
                TextColumn(f"ingesting {kind}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("lines"),
                TimeElapsedColumn(),
                console=err,
            ) as bar,
        ):
            task = bar.add_task(kind, total=total)
            for offset, lines, count in _batches(stream, MAX_LINES):
                try:
                    done += await ingest(viewer, kind, b"\n".join(lines))
                except IngestRejected as rejected:
                    first = rejected.errors[0]
                    where = f"line {offset + first['line']}: " if first["line"] else ""
                    raise UserFacingError(
                        f"{where}{first['message']} "
                        f"({done:,} lines of earlier batches were written)"
                    ) from None
                bar.advance(task, count)
        return done

    done = run_async(_with_database(settings, work))
    out.print(f"ingested {done:,} {kind} lines")


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _batches(stream: BinaryIO, size: int) -> Iterator[tuple[int, list[bytes], int]]:
    """(lines before the batch, its raw lines, its non-blank count): at most `size`
    non-blank lines a batch, read as they come so memory does not grow with the file."""
    batch: list[bytes] = []
    count = offset = 0
    for number, line in enumerate(stream):
        if not batch:
            offset = number
        batch.append(line.rstrip(b"\r\n"))
        if line.strip():
            count += 1
        if count == size:
            yield offset, batch, count
            batch, count = [], 0
    if count:
        yield offset, batch, count


@cli.command()
def rollup(
    week: Annotated[
        str | None,
        typer.Option(
            help="Monday of the week to (re)build, e.g. 2026-11-09; default: the "
            "week the latest Sunday refresh covers."
        ),
    ] = None,
) -> None:
    """Roll up a week of call legs into the weekly calling figures (idempotent)."""

    from app.clock import utcnow
    from app.domain.calling_rollup import refreshed_week, rollup_week

    settings = _settings()
    try:
        day = date.fromisoformat(week) if week else refreshed_week(utcnow())
    except ValueError:
        fail(f"--week {week!r} is not a date: use YYYY-MM-DD (a Monday)")
        return
    if day.weekday() != 0:
        fail(f"--week {day.isoformat()} is a {day.strftime('%A')}: a week starts on Monday")

    async def work() -> float:
        return (await rollup_week(day, wait_seconds=settings.job_timeout_seconds)).waited_seconds

    # A rollup of the same week running elsewhere is waited for (one line either way).
    waited = run_async(_with_database(settings, work))
    after = f" (after waiting {waited:.0f} s for another rollup of it)" if waited >= 1 else ""
    out.print(f"rolled up the calling week of {day.isoformat()}{after}")


@cli.command("call-leg-upkeep")
def call_leg_upkeep() -> None:
    """Create the weekly call-leg partitions ahead (PostgreSQL) and remove call legs
    past PARTNERHUB_CALL_LEG_RETENTION_WEEKS whose week is rolled up: what the
    daily job does, now."""

    from app.clock import utcnow
    from app.domain.call_leg_partitions import maintain

    settings = _settings()

    async def work() -> str:
        return (await maintain(utcnow(), settings.call_leg_retention_weeks)).summary()

    out.print(run_async(_with_database(settings, work)), highlight=False, soft_wrap=True)


@cli.command("refresh-customer-columns")
def refresh_customer_columns_command(
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Recompute every customer, not only those whose kept end dates the day passed.",
        ),
    ] = False,
) -> None:
    """Recompute the customers' kept list columns (next end date, license total,
    status flags) from their subscriptions and trials: those whose kept end dates
    the day passed, what the daily job does, now; or every customer with --all."""

    from app.clock import utctoday
    from app.domain.customer_columns import refresh_all_customer_columns, refresh_passed_dates

    settings = _settings()
    today = utctoday()

    async def work() -> str:
        if every:
            count = await refresh_all_customer_columns(today)
            return f"recomputed the kept columns of all {count} customer(s) as of {today}"
        count = await refresh_passed_dates(today)
        return f"recomputed {count} customer(s) whose kept end dates were before {today}"

    out.print(run_async(_with_database(settings, work)), highlight=False, soft_wrap=True)


@cli.command("attention-scan")
def attention_scan_command() -> None:
    """Evaluate every customer's attention state now and write one attention
    event per change (what the daily job does after midnight; a customer with no
    state yet gets its state without events)."""

    from app.clock import utcnow
    from app.domain.attention_states import AttentionRules, scan_all

    settings = _settings()

    async def work() -> str:
        return (await scan_all(utcnow(), AttentionRules.of(settings))).summary()

    out.print(run_async(_with_database(settings, work)), highlight=False, soft_wrap=True)


def _date_option(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"--{name} {value!r} is not a date: use YYYY-MM-DD")
        raise


@report_cli.command("run")
def report_run(
    template: Annotated[str, typer.Option(help='Template name, e.g. "Devices" (any case).')],
    email: Annotated[str, typer.Option(help="Email of the admin the report is for.")],
    start: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD), for ranges.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD), for ranges.")] = None,
    region: Annotated[str | None, typer.Option(help="US, CA, EU or UAE; default: all.")] = None,
) -> None:
    """Generate one report now, in this process, and print its file's path."""
    from app.auth import viewer_for_email
    from app.clock import utctoday
    from app.domain.errors import MutationRejected
    from app.domain.report_generation import run_report
    from app.domain.report_templates import find_template
    from app.domain.reports import generate_report
    from app.domain.statuses import StatusWindows
    from app.models.enums import Region, ReportStatus
    from app.storage import open_storage

    settings = _settings()
    start_date, end_date = _date_option(start, "start"), _date_option(end, "end")
    if region is not None and region.upper() not in Region.__members__:
        fail(f"--region {region!r} is not a region: one of {', '.join(Region)}")
    chosen_region = Region(region.upper()) if region else None
    storage = open_storage(settings)

    async def work() -> tuple[str, int]:
        viewer = await viewer_for_email(email)
        if viewer is None:
            raise UserFacingError(f"no admin has the email {email.strip()!r}")
        found = await find_template(viewer, template)
        if found is None:
            raise UserFacingError(f"no report template named {template!r}")
        try:
            report = await generate_report(
                viewer, found.id, start_date, end_date, chosen_region, None, utctoday()
            )
        except MutationRejected as rejected:
            raise UserFacingError(rejected.errors[0].message) from None
        with Progress(
            TextColumn(f"generating {found.name}"),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task(found.name, total=None)
            outcome = await run_report(
                report.id,
                storage,
                chunk_rows=settings.report_chunk_rows,
                progress=lambda rows: bar.update(task, completed=rows),
                windows=StatusWindows(
                    settings.expiring_soon_days, settings.no_recent_activity_days
                ),
            )
        done = outcome.report
        if done.status != ReportStatus.SUCCEEDED:
            raise UserFacingError(f"the report failed: {done.error}")
        return storage.describe(done.storage_key or ""), done.row_count or 0

    path, rows = run_async(_with_database(settings, work))
    err.print(f"{rows:,} rows")
    sys.stdout.write(path + "\n")


@cli.command("schema")
def print_schema() -> None:
    """Print the served GraphQL schema (SDL), for code generators and schema checks."""
    from schema import schema

    sys.stdout.write(str(schema).rstrip("\n") + "\n")


@documents_cli.command("check")
def documents_check(
    file: Annotated[Path, typer.Argument(help="Manifest: a JSON object of sha256 -> document.")],
) -> None:
    """Check a trusted-documents manifest: every key the sha256 of its document,
    every document valid against the served schema."""
    from graphql import GraphQLError, parse, validate

    from app.persisted_queries import ManifestError, TrustedDocuments
    from schema import schema

    try:
        manifest = TrustedDocuments.load(file)
    except ManifestError as exc:
        fail(str(exc))
    problems = []
    for key, document in manifest.by_hash.items():
        try:
            errors = validate(schema._schema, parse(document))
        except GraphQLError as exc:
            errors = [exc]
        problems += [f"{key[:12]}…: {error.message}" for error in errors]
    if problems:
        fail(f"{len(problems)} problem(s) in {file}:\n" + "\n".join(problems))
    out.print(f"{len(manifest.by_hash)} trusted documents, all valid against the schema")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
