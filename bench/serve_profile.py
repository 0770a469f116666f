"""Profile: where a real `partnerhub serve` spends its time under load.

    .venv/bin/python -m bench.serve_profile --database-url postgresql://…/bench100k --seconds 15

Starts a Valkey and `partnerhub serve` (one uvicorn worker, the throttle
opened wide as in bench/spa_page.py) on a database bench/spa_page.py or
bench/customer_orderings.py already loaded, loads it with autocannon (c=10)
with the SPA customers page (bench/spa_page.py's SPA_PAGE) for the demo's
Northwind FULL_ADMIN, and samples the serving process with py-spy meanwhile.
Prints the throughput, the CPU a request of the serving process and of every
PostgreSQL process (psutil), then the share of samples by function (own
time), by package, and of the page's main steps (inclusive).

autocannon comes from npm into --node-dir (as bench/spa_page.py installs it),
py-spy from pip into a scratch virtualenv in --tools-dir; neither is a
dependency of the product. `--native` also samples C frames and system calls
(py-spy then pauses the process at each sample: lower throughput, same
shares); `--no-profile` only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import orjson
import psutil

from bench.spa_page import (
    PRODUCT_ENV,
    SPA_PAGE,
    Target,
    autocannon,
    free_port,
    node_tools,
    server,
)

# Frames whose inclusive share is printed: the request's steps in the product.
STEPS = (
    ("sign-in (token lookup)", "sign_in (app/sign_in.py"),
    ("limits and throttle", "OperationLimits.on_execute (schema/limits.py"),
    ("the customers list (one statement)", "list_customers (app/domain/customers.py"),
    ("the page's relations (readers)", "read_customer_page (app/domain/customer_pages.py"),
    ("the page plan's completion", "_Walk.complete (schema/page_plan.py"),
    ("statements through db.fetch_records", "fetch_records (app/db.py"),
    ("the answer's JSON", "encode_json (schema/asgi.py"),
)


def py_spy(tools_dir: Path) -> Path:
    """py-spy's command, pip-installed into a virtualenv of its own when missing."""
    venv = tools_dir / "py-spy-venv"
    command = venv / "bin" / "py-spy"
    if not command.exists():
        print(f"installing py-spy into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "py-spy"],
            check=True,
            capture_output=True,
        )
    return command


def postgres_processes(url: str) -> list[psutil.Process]:
    """The database server's processes (postmaster and children), or [] when its
    data directory cannot be read (not a superuser, another machine)."""

    async def data_directory() -> str | None:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SHOW data_directory")
        except asyncpg.PostgresError:
            return None
        finally:
            await conn.close()

    folder = asyncio.run(data_directory())
    pid_file = Path(folder or "/nonexistent") / "postmaster.pid"
    try:
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    except (OSError, ValueError, psutil.Error):
        return []
    return [postmaster, *postmaster.children(recursive=True)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def shares(samples: Path, top: int) -> None:
    """Own time by function and package, and the STEPS inclusive, from py-spy's
    raw (collapsed stacks) output."""
    own: collections.Counter[str] = collections.Counter()
    package: collections.Counter[str] = collections.Counter()
    steps: collections.Counter[str] = collections.Counter()
    total = 0
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        own[leaf] += n
        where = re.search(r"\(([^)]*)\)$", leaf)
        package[(where.group(1) if where else leaf).split("/")[0]] += n
        for label, frame in STEPS:
            if any(frame in f for f in frames):
                steps[label] += n
    if not total:
        print("py-spy recorded no samples")
        return
    print(f"\n{total:,} samples; own time by function (top {top}):")
    for name, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\nown time by package or file:")
    for name, n in package.most_common(15):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\nthe request's steps (inclusive, they overlap):")
    for label, _ in STEPS:
        print(f"  {100 * steps[label] / total:5.1f}%  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="a database the SPA bench loaded")
    parser.add_argument("--seconds", type=int, default=15, help="the load (and sampling) time")
    parser.add_argument("--native", action="store_true", help="sample C frames and system calls")
    parser.add_argument("--no-profile", action="store_true", help="measure only, no py-spy")
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--node-dir", default="/tmp/pgl", help="scratch folder for npm")
    parser.add_argument(
        "--tools-dir", default=tempfile.gettempdir(), help="scratch folder for py-spy"
    )
    args = parser.parse_args()

    from app.demo import demo_admins
    from app.queue import EmbeddedValkey

    bin_dir = node_tools(Path(args.node_dir))
    if bin_dir is None:
        raise SystemExit("node and npm are needed for autocannon")
    spy = None if args.no_profile else py_spy(Path(args.tools_dir))
    scratch = Path(tempfile.mkdtemp(prefix="serve-profile-"))
    valkey = EmbeddedValkey(scratch / "valkey")
    redis_url = valkey.start()
    port = free_port()
    env = {
        **PRODUCT_ENV,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": redis_url,
        "PARTNERHUB_VAR_DIR": str(scratch / "var"),
        "PARTNERHUB_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    target = Target(
        "product",
        f"http://127.0.0.1:{port}/graphql",
        "POST",
        orjson.dumps({"query": SPA_PAGE}),
        {
            "Authorization": f"Bearer {demo_admins(1)[0].token}",
            "Content-Type": "application/json",
        },
    )
    partnerhub = str(Path(sys.executable).parent / "partnerhub")
    try:
        with server(
            [partnerhub, "serve", "--port", str(port)],
            env,
            f"http://127.0.0.1:{port}/livez",
            scratch / "serve.log",
        ) as process:
            print(f"warming up {target.url} ...", flush=True)
            autocannon(bin_dir, target, 3)
            served = [psutil.Process(process.pid)]
            database = postgres_processes(args.database_url)
            sampler = None
            samples = scratch / "samples.txt"
            if spy is not None:
                command = [str(spy), "record", "-p", str(process.pid), "-d", str(args.seconds)]
                command += ["-r", "200", "-f", "raw", "-o", str(samples)]
                command += ["--native"] if args.native else ["--nonblocking"]
                sampler = subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                time.sleep(0.5)
            before = cpu_seconds(served), cpu_seconds(database)
            result = autocannon(bin_dir, target, args.seconds)
            after = cpu_seconds(served), cpu_seconds(database)
            if sampler is not None:
                sampler.wait(timeout=args.seconds + 60)
    finally:
        valkey.stop()
    requests = result["requests"]["total"]
    print(
        f"\nSPA page over HTTP, c=10, {args.seconds} s: {result['requests']['average']:.1f} req/s"
        f"  p50 {result['latency']['p50']} ms  p99 {result['latency']['p99']} ms"
        + ("  (py-spy --native pauses the process: throughput lower)" if args.native else "")
    )
    served_ms = 1000 * (after[0] - before[0]) / requests
    print(f"CPU a request: serving process {served_ms:.2f} ms", end="")
    if database:
        print(f", PostgreSQL {1000 * (after[1] - before[1]) / requests:.2f} ms")
    else:
        print(" (PostgreSQL's processes not found: its data directory is not readable here)")
    if spy is not None:
        if samples.exists():
            shares(samples, args.top)
        else:
            print("py-spy wrote no samples (it needs ptrace rights on the serving process)")


if __name__ == "__main__":
    main()
