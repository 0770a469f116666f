"""Running the real `partnerhub` command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

PARTNERHUB = str(Path(sys.executable).with_name("partnerhub"))
ROOT = Path(__file__).resolve().parent.parent


def cli_env(
    database_url: str | None, var_dir: Path, redis_url: str | None = None
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PARTNERHUB_", "DATABASE_URL", "REDIS_URL"))
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    env["PARTNERHUB_VAR_DIR"] = str(var_dir)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PARTNERHUB, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
