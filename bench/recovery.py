"""Benchmark: how long the service takes to recover from the faults of the
fault suite, on the same cluster of real processes (tests/fault_cluster.py:
PostgreSQL, Valkey with an append-only file, two `partnerhub serve`
replicas, two `partnerhub worker` processes).

    .venv/bin/python -m bench.recovery [--rounds N] [--lease-seconds 6]

Each figure is printed on its own line (the median over the rounds, with the
lowest and highest):

- worker back after Valkey returns: Valkey stopped for a few seconds, then
  started again; the time from it accepting connections to a worker starting
  a report asked for at that moment (the workers' backoff is capped at 5 s).
- report retried after a kill: a worker killed (-9) mid-report; the time to
  the report's retry starting on the other worker (its lease lapses, then the
  report tick, every 15 s, queues it again) and to the report finished.
- replica ready after PostgreSQL returns: PostgreSQL stopped for 10 s, then
  started again; the time from it accepting connections to both replicas
  answering /readyz 200 and a signed-in GraphQL query.

Times come from the database's own timestamps where a report is involved
(`started_at`, `finished_at`), from polling every 50 ms otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.fault_cluster import FaultCluster, fault_cluster, paused

VALKEY_OUTAGE_SECONDS = 4.0
POSTGRES_OUTAGE_SECONDS = 10.0


def _since(moment: float, row_time: datetime | None) -> float:
    """Seconds from `moment` (unix time) to a timestamp the database recorded."""
    assert row_time is not None
    return row_time.astimezone(UTC).timestamp() - moment


async def valkey_restart(cluster: FaultCluster) -> float:
    """Seconds from Valkey back to a newly asked-for report starting."""
    cluster.valkey.stop()
    await asyncio.sleep(VALKEY_OUTAGE_SECONDS)  # the outage itself
    cluster.valkey.start()
    back = time.time()
    report_id = await cluster.generate_report(0, "EU")

    async def started() -> bool:
        return (await cluster.report(report_id)).started_at is not None

    await cluster.until(started, 60, "a report started after Valkey returned", every=0.05)
    await cluster.wait_finished([report_id], 60)
    return _since(back, (await cluster.report(report_id)).started_at)


async def worker_kill(cluster: FaultCluster) -> tuple[float, float]:
    """Seconds from a kill -9 mid-report to its retry starting, and to it finished."""
    report_id = await cluster.generate_report(0, "US")
    running = await cluster.wait_running(report_id)
    victim = cluster.worker_of(running)
    with paused(victim):
        victim.send(signal.SIGKILL)
    killed = time.time()
    await victim.exited(10)

    async def retried() -> bool:
        row = await cluster.report(report_id)
        return row.attempts >= 2 and row.started_at is not None

    await cluster.until(retried, 120, "the killed worker's report retried", every=0.05)
    (done,) = await cluster.wait_finished([report_id], 120)
    assert done.status == "SUCCEEDED" and done.attempts == 2, done
    retry = _since(killed, (await cluster.report(report_id)).started_at)
    await cluster.start_worker(victim)
    return retry, _since(killed, done.finished_at)


async def postgres_restart(cluster: FaultCluster) -> float:
    """Seconds from PostgreSQL back to both replicas ready."""
    cluster.postgres.stop("fast")
    await asyncio.sleep(POSTGRES_OUTAGE_SECONDS)  # the outage itself
    cluster.postgres.start()
    back = time.monotonic()

    async def ready(replica: int) -> bool:
        answer = await cluster.get(replica, "/readyz", wait_seconds=5)
        return answer.status_code == 200 and await cluster.replica_ready(replica)

    for replica in range(len(cluster.replicas)):
        await cluster.until(lambda r=replica: ready(r), 60, f"replica {replica} ready", every=0.05)
    return time.monotonic() - back


def _figure(name: str, values: list[float], note: str = "") -> str:
    line = f"{name}: {statistics.median(values):.1f} s"
    if len(values) > 1:
        line += f" (min {min(values):.1f}, max {max(values):.1f}, {len(values)} rounds)"
    return line + (f"; {note}" if note else "")


def _progress(line: str) -> None:
    """A progress line on stderr while the rounds run (the figures go to stdout)."""
    print(line, file=sys.stderr, flush=True)


async def run(rounds: int, lease_seconds: int, keep: Path | None) -> None:
    root = keep or Path(tempfile.mkdtemp(prefix="partnerhub-recovery-"))
    settings = {
        "report_lease_seconds": str(lease_seconds),
        "report_lease_renew_seconds": str(max(1, lease_seconds // 3)),
    }
    valkey, retried, finished, postgres = [], [], [], []
    try:
        _progress(f"starting the cluster under {root} (PostgreSQL, Valkey, 2 serve, 2 workers)")
        async with fault_cluster(root / "cluster", **settings) as cluster:
            for number in range(1, rounds + 1):
                await cluster.ensure_running()
                valkey.append(await valkey_restart(cluster))
                _progress(f"round {number}/{rounds}: worker back {valkey[-1]:.1f} s after Valkey")
                await cluster.ensure_running()
                retry, done = await worker_kill(cluster)
                retried.append(retry)
                finished.append(done)
                _progress(f"round {number}/{rounds}: report retried {retry:.1f} s after a kill")
                await cluster.ensure_running()
                postgres.append(await postgres_restart(cluster))
                _progress(f"round {number}/{rounds}: replicas ready {postgres[-1]:.1f} s after PG")
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(_figure("worker back after Valkey returns", valkey, "a report asked for then started"))
    print(
        _figure(
            "report retried after a kill -9",
            retried,
            f"lease {lease_seconds} s, report tick every 15 s",
        )
    )
    print(_figure("report finished after a kill -9", finished))
    print(_figure("replica ready after PostgreSQL returns", postgres, "both replicas"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1, help="times each fault is repeated")
    parser.add_argument(
        "--lease-seconds",
        type=int,
        default=6,
        help="PARTNERHUB_REPORT_LEASE_SECONDS of the workers (renewed every third of it)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="folder for the cluster's data and logs, kept"
    )
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.lease_seconds, args.keep))


if __name__ == "__main__":
    main()
