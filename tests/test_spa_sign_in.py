"""Browser SPAs sign in: OIDC access tokens on HTTP, trusted documents for
them, and graphql-transport-ws `connection_init` with the Origin allow-list
on a real server."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
import websockets

from app.config import Settings
from app.models.enums import AdminRole
from tests import factories
from tests.graphql_client import app_client
from tests.test_oidc import AUDIENCE, EC_KEY, OTHER_RSA_KEY, Issuer, issuer  # noqa: F401 (a fixture)

QUERY = "query Me { viewer { email role } }"


async def signed_in_partner() -> factories.AdminWithToken:
    org = await factories.partner("Northwind Partners", "northwind.example")
    return await factories.admin(org, AdminRole.ADMIN, email="alice@northwind.example")


def oidc_settings(base: Settings, issuer: Issuer, **more: object) -> Settings:
    return base.model_copy(update={"oidc_issuer": issuer.url, "oidc_audience": AUDIENCE, **more})


async def test_an_oidc_access_token_signs_its_admin_in_and_api_tokens_keep_working(
    http_settings: Settings, redis_url: str, issuer: Issuer
) -> None:
    admin = await signed_in_partner()
    async with app_client(oidc_settings(http_settings, issuer), redis_url) as http:
        for token in (
            issuer.token(email="Alice@Northwind.example"),
            issuer.token(EC_KEY, "ec-1", email="alice@northwind.example"),
            admin.token,
        ):
            response = await http.post(
                "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            assert response.json()["data"]["viewer"] == {
                "email": "alice@northwind.example",
                "role": "ADMIN",
            }


async def test_each_refused_oidc_token_is_a_401_saying_which_check_failed(
    http_settings: Settings, redis_url: str, issuer: Issuer
) -> None:
    await signed_in_partner()
    import time

    now = int(time.time())
    cases = {
        "expired": issuer.token(email="alice@northwind.example", exp=now - 120),
        "not yet valid": issuer.token(email="alice@northwind.example", nbf=now + 600),
        "wrong issuer": issuer.token(email="alice@northwind.example", iss="https://other.example"),
        "wrong audience": issuer.token(email="alice@northwind.example", aud="someone-else"),
        "unknown": issuer.token(email="alice@northwind.example", kid="nobody"),
        "bad signature": issuer.token(OTHER_RSA_KEY, "rsa-1", email="alice@northwind.example"),
        "no admin has this email": issuer.token(email="mallory@northwind.example"),
        "email_verified": issuer.token(email="alice@northwind.example", email_verified=False),
    }
    async with app_client(oidc_settings(http_settings, issuer), redis_url) as http:
        for reason, token in cases.items():
            response = await http.post(
                "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, reason
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
            assert reason in error["message"], (reason, error["message"])
            assert token not in response.text and token.split(".")[2] not in response.text


async def test_an_issuer_whose_keys_cannot_be_fetched_is_503_not_401(
    http_settings: Settings, redis_url: str, issuer: Issuer
) -> None:
    await signed_in_partner()
    issuer.jwks_status = 500
    async with app_client(oidc_settings(http_settings, issuer), redis_url) as http:
        response = await http.post(
            "/graphql",
            json={"query": QUERY},
            headers={"Authorization": f"Bearer {issuer.token(email='alice@northwind.example')}"},
        )
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    assert response.headers["retry-after"]


async def test_oidc_sign_ins_run_only_trusted_documents_and_integrations_run_any(
    http_settings: Settings, redis_url: str, issuer: Issuer, tmp_path: Path
) -> None:
    admin = await signed_in_partner()
    manifest = tmp_path / "documents.json"
    digest = hashlib.sha256(QUERY.encode()).hexdigest()
    manifest.write_text(json.dumps({digest: QUERY}))
    settings = oidc_settings(http_settings, issuer, trusted_documents_file=manifest)
    browser = {"Authorization": f"Bearer {issuer.token(email='alice@northwind.example')}"}
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    async with app_client(settings, redis_url) as http:
        by_hash = await http.post("/graphql", json={"extensions": persisted}, headers=browser)
        assert by_hash.json()["data"]["viewer"]["email"] == "alice@northwind.example"
        by_text = await http.post("/graphql", json={"query": QUERY}, headers=browser)
        assert by_text.json()["data"]["viewer"]["email"] == "alice@northwind.example"
        other = await http.post(
            "/graphql", json={"query": "{ organization { name } }"}, headers=browser
        )
        assert other.status_code == 403
        assert other.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        integration = await http.post(
            "/graphql",
            json={"query": "{ organization { name } }"},
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        assert integration.json()["data"]["organization"]["name"] == "Northwind Partners"


def test_a_manifest_that_does_not_load_stops_the_app_with_a_clear_error(tmp_path: Path) -> None:
    from app.http import create_app
    from app.persisted_queries import ManifestError

    broken = tmp_path / "documents.json"
    broken.write_text('{"abc": "{ viewer { email } }"}')
    with pytest.raises(ManifestError, match="not a sha256 hash"):
        create_app(Settings(trusted_documents_file=broken))


# ------------------------------------------------------------ websockets, real server


def test_websocket_sign_in_with_connection_init_and_the_origin_allow_list(
    tmp_path: Path,
) -> None:
    from app.demo import demo_admins
    from tests.cli_process import cli_env, free_port, run_cli
    from tests.test_serve import running, wait_healthy

    env = cli_env(None, tmp_path / "var")
    env["PARTNERHUB_CORS_ORIGINS"] = "https://app.example.com"
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["demo", "--customers", "24", "--if-empty"], env).returncode == 0
    admin = demo_admins(1)[0]
    port = free_port()
    url = f"ws://127.0.0.1:{port}/graphql"
    log = tmp_path / "serve.log"

    async def session(payload: object, origin: str | None = None) -> tuple[str, object]:
        """('ack', the viewer's email) or ('closed', close code) or ('refused', HTTP status)."""
        headers = {"Origin": origin} if origin else {}
        try:
            async with websockets.connect(
                url, subprotocols=["graphql-transport-ws"], additional_headers=headers,
                open_timeout=10,
            ) as ws:  # fmt: skip
                await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if first["type"] != "connection_ack":
                    return "other", first
                query = "{ viewer { email } }"
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}})
                )
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                return "ack", answer["payload"]["data"]["viewer"]["email"]
        except websockets.ConnectionClosed as closed:
            return "closed", closed.rcvd.code if closed.rcvd else None
        except websockets.InvalidStatus as refused:
            return "refused", refused.response.status_code

    with running(["serve", "--port", str(port)], env, log) as server:
        wait_healthy(f"http://127.0.0.1:{port}", server, log)
        bearer = f"Bearer {admin.token}"
        for payload in ({"Authorization": bearer}, {"authorization": bearer},
                        {"authToken": admin.token}):  # fmt: skip
            assert asyncio.run(session(payload)) == ("ack", admin.email), payload
        # From an allowed page, and from the same origin.
        allowed = asyncio.run(session({"Authorization": bearer}, "https://app.example.com"))
        assert allowed == ("ack", admin.email)
        same = asyncio.run(session({"Authorization": bearer}, f"http://127.0.0.1:{port}"))
        assert same == ("ack", admin.email)
        # No token, a wrong one, a revoked scheme: 4403 Forbidden after accepting.
        for payload in ({}, {"Authorization": "Bearer nope"}, {"authToken": ""},
                        {"Authorization": "Basic eDp5"}, {"Authorization": 5}):  # fmt: skip
            assert asyncio.run(session(payload)) == ("closed", 4403), payload
        # A payload that is not an object: a protocol error.
        assert asyncio.run(session(["Bearer", admin.token])) == ("closed", 4400)
        # A page of another origin cannot even open it.
        for origin in ("https://evil.example.com", "https://app.example.com.evil.example"):
            assert asyncio.run(session({"Authorization": bearer}, origin)) == ("refused", 403)
