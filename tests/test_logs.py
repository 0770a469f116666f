"""Logs as an operator reads them: PARTNERHUB_LOG_FORMAT=json gives one JSON
object a line from a real `serve` (its own, uvicorn's and the app's loggers),
with the request id (the client's or a new one, returned in the response), the
partner id and the operation name; plain text lines by default; and never a
token or a download signature."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import structlog

from app.auth import hash_token, new_token
from app.config import Settings
from app.domain.downloads import sign_download
from app.logs import formatter
from app.models.admins import ApiToken
from app.models.enums import AdminRole
from tests import factories
from tests.cli_process import cli_env, free_port
from tests.graphql_client import gql
from tests.test_serve import running, wait_healthy

SECRET_KEY = "k" * 48
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhZG1pbkBleGFtcGxlLmNvbSIsImV4cCI6MTkwMDAwMDAwMH0."
    "c2lnbmF0dXJlLWJ5dGVzLW9mLXRoZS1qd3Q"
)


@contextmanager
def captured(name: str, log_format: str) -> Iterator[io.StringIO]:
    """What logger `name` writes at INFO through the service's formatter."""
    logger = logging.getLogger(name)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _partner_with_api_token() -> tuple[int, str]:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    token = new_token()
    await ApiToken.create(admin=admin, token_hash=hash_token(token))
    return org.id, token


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_token_jwt_or_signature_reaches_a_log_line(log_format: str) -> None:
    api_token, demo_token = new_token(), "phd_0c59338f7c2f7dbc71486e423b3f702449e4fc0e"
    with captured("partnerhub.test.redaction", log_format) as stream:
        log = logging.getLogger("partnerhub.test.redaction")
        log.info("Authorization: Bearer %s", api_token)
        log.info("token %s and %s", demo_token, JWT)
        log.info('GET /reports/7/download?expires=1790000000&signature=abc.DEF-_123 HTTP/1.1"')
        log.info("webhook headers {'X-PartnerHub-Signature': 'sha256=0badc0ffee'}")
        log.info("POST /graphql?access_token=%s&x=1", api_token)
        try:
            raise RuntimeError(f"refused {api_token}")
        except RuntimeError:
            log.exception("failed with %s", JWT)
    text = stream.getvalue()
    for secret in (api_token, api_token[4:], demo_token[4:], JWT, "abc.DEF", "0badc0ffee"):
        assert secret not in text
    assert text.count("REDACTED") >= 8
    # A download link keeps what tells why it was refused.
    assert "expires=1790000000" in text and "/reports/7/download" in text


def test_json_lines_carry_time_level_logger_message_and_the_request_context() -> None:
    with captured("partnerhub.test.json", "json") as stream:
        with structlog.contextvars.bound_contextvars(
            request_id="abc-123", partner_id=7, operation="Customers"
        ):
            logging.getLogger("partnerhub.test.json").warning("slow answer: %d ms", 1500)
        logging.getLogger("partnerhub.test.json").info("outside a request")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(first)[:7] == [
        "time", "level", "logger", "message", "request_id", "partner_id", "operation",
    ]  # fmt: skip
    assert first["level"] == "warning" and first["logger"] == "partnerhub.test.json"
    assert first["message"] == "slow answer: 1500 ms"
    assert (first["request_id"], first["partner_id"], first["operation"]) == (
        "abc-123", 7, "Customers",
    )  # fmt: skip
    moment = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 60
    assert second["message"] == "outside a request" and "request_id" not in second


def test_text_lines_are_plain_and_show_the_request_id() -> None:
    with captured("partnerhub.test.text", "text") as stream:
        with structlog.contextvars.bound_contextvars(request_id="abc-123"):
            logging.getLogger("partnerhub.test.text").info("report %s queued", 42)
    [line] = stream.getvalue().splitlines()
    assert "report 42 queued" in line and "request_id=abc-123" in line
    assert "partnerhub.test.text" in line and "info" in line
    assert not line.startswith("{") and "\x1b[" not in line  # no JSON, no colours


async def test_graphql_lines_name_the_request_partner_and_operation(
    client: httpx.AsyncClient,
) -> None:
    partner_id, token = await _partner_with_api_token()
    with captured("partnerhub.graphql", "json") as stream:
        answer = await client.post(
            "/graphql",
            json={"query": "query Lookup { nope }"},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42"},
        )
    assert answer.headers["x-request-id"] == "req-42"
    [line] = [json.loads(raw) for raw in stream.getvalue().splitlines()]
    assert "GRAPHQL_VALIDATION_FAILED" in line["message"]
    assert (line["request_id"], line["partner_id"], line["operation"]) == (
        "req-42", partner_id, "Lookup",
    )  # fmt: skip
    # The request's context leaves with it.
    assert structlog.contextvars.get_contextvars() == {}
    await gql(client, token, "{ viewer { email } }")
    assert structlog.contextvars.get_contextvars() == {}


# ---------------------------------------------------------------- a real serve


async def test_a_real_serve_writes_json_lines_with_ids_and_no_secrets(
    postgres_db: Settings, redis_url: str, tmp_path: Path
) -> None:
    partner_id, token = await _partner_with_api_token()
    env = cli_env(postgres_db.database_url, tmp_path / "var", redis_url)
    env |= {"PARTNERHUB_LOG_FORMAT": "json", "PARTNERHUB_SECRET_KEY": SECRET_KEY}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    signed = sign_download(SECRET_KEY, base, 424242, datetime.now(UTC), 600)
    signature = signed.url.rsplit("signature=", 1)[1]
    log = tmp_path / "serve.log"
    # Only a proxy at 192.0.2.1 is trusted: a client's own X-Forwarded-For is not.
    args = ["serve", "--port", str(port), "--forwarded-allow-ips", "192.0.2.1"]
    with running(args, env, log) as server:
        wait_healthy(base, server, log)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            headers = {
                "Authorization": f"Bearer {token}",
                "X-Request-ID": "abc-123",
                "X-Forwarded-For": "203.0.113.9",
            }
            answer = await http.post(
                "/graphql", json={"query": "query WhoAmI { viewer { email } }"}, headers=headers
            )
            assert answer.status_code == 200 and "errors" not in answer.json()
            assert answer.headers["x-request-id"] == "abc-123"
            failing = await http.post(
                "/graphql",
                json={"query": "query Misspelt { viewr { email } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            generated = failing.headers["x-request-id"]
            assert len(generated) == 32 and generated != "abc-123"
            download = await http.get(signed.url.removeprefix(base))
            assert download.status_code == 410  # signed, for no report
            refused = await http.get(f"/graphql?query=%7Bviewer%7Bemail%7D%7D&access_token={token}")
            assert refused.status_code == 401
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "uvicorn.access", "partnerhub.graphql"} <= loggers, loggers

    ours = [r for r in records if r.get("request_id") == "abc-123"]
    [access] = [r for r in ours if r["logger"] == "uvicorn.access"]
    assert "POST /graphql" in access["message"]
    assert "127.0.0.1" in access["message"] and "203.0.113.9" not in text
    assert (access["partner_id"], access["operation"]) == (partner_id, "WhoAmI")
    misspelt = [r for r in records if r.get("request_id") == generated]
    assert {r["logger"] for r in misspelt} == {"partnerhub.graphql", "uvicorn.access"}
    assert all((r["partner_id"], r["operation"]) == (partner_id, "Misspelt") for r in misspelt)
    assert token not in text and token[4:] not in text
    assert signature not in text
    [download_line] = [r for r in records if "/reports/424242/download" in r["message"]]
    assert "signature=REDACTED" in download_line["message"]
