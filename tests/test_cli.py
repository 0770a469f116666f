"""The `partnerhub` command: help on every command, and one-line errors with a
non-zero exit for every setting or state it cannot work with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.demo import demo_admins
from tests.cli_process import cli_env, run_cli

COMMANDS = [
    [], ["serve"], ["worker"], ["status"], ["migrate"], ["demo"], ["token"], ["token", "create"],
    ["ingest"], ["rollup"], ["call-leg-upkeep"], ["refresh-customer-columns"], ["report"],
    ["report", "run"],
]  # fmt: skip


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {stderr!r}"
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "partnerhub")
def test_every_command_has_help(command: list[str], tmp_path: Path) -> None:
    result = run_cli([*command, "--help"], cli_env(None, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/partnerhub"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "postgres://user:pw@localhost:5432"),
        ("REDIS_URL", "http://localhost:6379"),
        ("PARTNERHUB_EXPIRING_SOON_DAYS", "soon"),
        ("PARTNERHUB_SECRET_KEY", "too-short"),
        ("PARTNERHUB_S3_ENDPOINT_URL", "ftp://storage.example"),
        ("PARTNERHUB_JOB_TIMEOUT_SECONDS", "1"),
    ],
)
def test_a_malformed_setting_is_named_in_a_one_line_error(
    variable: str, value: str, tmp_path: Path
) -> None:
    env = cli_env(None, tmp_path)
    env[variable] = value
    result = run_cli(["migrate"], env)
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    assert variable.removeprefix("PARTNERHUB_") in line


def test_a_misspelt_setting_is_refused_not_ignored(tmp_path: Path) -> None:
    env = cli_env(None, tmp_path)
    env["PARTNERHUB_EXPIRNG_SOON_DAYS"] = "10"
    result = run_cli(["migrate"], env)
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    assert "PARTNERHUB_EXPIRNG_SOON_DAYS is not a setting" in line
    assert "PARTNERHUB_EXPIRING_SOON_DAYS" in line


def test_an_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    env = cli_env("postgres://partnerhub:secret@127.0.0.1:1/partnerhub", tmp_path)
    for command in (
        ["migrate"],
        ["serve"],
        ["demo"],
        ["token", "create", "--email", "a@b.example"],
    ):
        result = run_cli(command, env)
        assert result.returncode == 1, command
        line = one_line_error(result.stderr)
        assert "cannot reach the database" in line
        assert "secret" not in line  # the password is not printed


def test_an_unreachable_redis_is_a_one_line_error(fresh_database_url: str, tmp_path: Path) -> None:
    env = cli_env(fresh_database_url, tmp_path, redis_url="redis://127.0.0.1:1/0")
    assert run_cli(["migrate"], env).returncode == 0
    for command in (["serve"], ["worker"]):
        result = run_cli(command, env)
        assert result.returncode == 1, command
        assert "cannot reach Redis at redis://127.0.0.1:1/0" in one_line_error(result.stderr)


def test_serve_refuses_an_unmigrated_database(fresh_database_url: str, tmp_path: Path) -> None:
    result = run_cli(["serve"], cli_env(fresh_database_url, tmp_path))
    assert result.returncode == 1
    assert "run `partnerhub migrate` first" in one_line_error(result.stderr)


def test_worker_without_redis_url_explains_the_embedded_default(tmp_path: Path) -> None:
    result = run_cli(["worker"], cli_env(f"sqlite://{tmp_path / 'db.sqlite3'}", tmp_path))
    assert result.returncode == 1
    assert "REDIS_URL is not set" in one_line_error(result.stderr)


def test_several_http_workers_need_postgres_and_redis(tmp_path: Path) -> None:
    result = run_cli(
        ["serve", "--workers", "2"], cli_env(f"sqlite://{tmp_path / 'db.sqlite3'}", tmp_path)
    )
    assert result.returncode == 1
    assert "--workers above 1" in one_line_error(result.stderr)


def test_demo_loads_once_prints_tokens_and_refuses_a_second_run(
    fresh_database_url: str, tmp_path: Path
) -> None:
    env = cli_env(fresh_database_url, tmp_path)
    assert run_cli(["migrate"], env).returncode == 0
    first = run_cli(["demo", "--customers", "30", "--seed", "5"], env)
    assert first.returncode == 0, first.stderr
    assert "loaded 30 customers" in first.stdout
    assert "loading demo data" in first.stderr  # the progress bar
    tokens = set(re.findall(r"phd_[0-9a-f]{40}", first.stdout))
    assert tokens == {admin.token for admin in demo_admins(5)}

    second = run_cli(["demo", "--customers", "30", "--seed", "6"], env)
    assert second.returncode == 1
    assert "already holds data" in one_line_error(second.stderr)

    kept = run_cli(["demo", "--if-empty", "--seed", "6"], env)
    assert kept.returncode == 0
    assert "already loaded (seed 5)" in kept.stdout
    assert set(re.findall(r"phd_[0-9a-f]{40}", kept.stdout)) == tokens


def test_token_create_prints_a_working_token_and_refuses_unknown_emails(
    fresh_database_url: str, tmp_path: Path
) -> None:
    env = cli_env(fresh_database_url, tmp_path)
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24"], env).returncode == 0

    created = run_cli(
        ["token", "create", "--email", "FULL@northwind.example", "--label", "ci"], env
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert re.fullmatch(r"phk_[A-Za-z0-9_-]{43}", token)
    again = run_cli(["token", "create", "--email", "full@northwind.example"], env)
    assert again.stdout.strip() != token  # every token is new

    unknown = run_cli(["token", "create", "--email", "nobody@northwind.example"], env)
    assert unknown.returncode == 1
    assert "no admin has the email 'nobody@northwind.example'" in one_line_error(unknown.stderr)
