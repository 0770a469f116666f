"""The serving process's garbage collector (app/heap.py): `partnerhub serve`'s
app freezes what its startup left and collects young objects in larger
batches; an app made in another process (tests, the bench) leaves the
collector as it found it. Each case runs in a process of its own, through the
factory uvicorn is given, with its real lifespan on SQLite and an external
Valkey."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.heap import SERVING_THRESHOLDS
from tests.cli_process import ROOT, cli_env, run_cli

SCRIPT = """
import asyncio, gc, json, sys
from uvicorn.importer import import_from_string

async def main():
    factory = import_from_string(sys.argv[1])
    before = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
    app = factory()
    async with app.router.lifespan_context(app):
        during = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
    print(json.dumps({"before": before, "during": during}))

asyncio.run(main())
"""


def _collector_under(factory: str, tmp_path: Path, redis_url: str) -> dict:
    env = cli_env(f"sqlite://{tmp_path / 'heap.sqlite3'}", tmp_path / "var", redis_url)
    migrated = run_cli(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, factory],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("factory", "served"),
    [("app.http:create_served_app", True), ("app.http:create_app", False)],
)
def test_only_the_served_app_sets_the_collector_for_serving(
    factory: str, served: bool, tmp_path: Path, redis_url: str
) -> None:
    state = _collector_under(factory, tmp_path, redis_url)
    assert state["before"]["frozen"] == 0
    assert tuple(state["before"]["threshold"]) != SERVING_THRESHOLDS  # CPython's own
    if served:
        assert tuple(state["during"]["threshold"]) == SERVING_THRESHOLDS
        # The schema, the ORM's models and the modules: out of the collector's sight.
        assert state["during"]["frozen"] > 100_000
    else:
        assert state["during"] == state["before"]


def test_serve_runs_the_served_app() -> None:
    """`partnerhub serve` hands uvicorn the serving factory (the one above)."""
    import inspect

    from app import cli

    assert '"app.http:create_served_app"' in inspect.getsource(cli.serve)
