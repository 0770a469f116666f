"""Persisted queries: Apollo's APQ on GET and POST, stored in Redis for every
API process, and the trusted-documents manifest with its check command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.models.enums import AdminRole
from tests import factories
from tests.cli_process import cli_env, run_cli
from tests.graphql_client import app_client

QUERY = "query Me { viewer { email } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(hash_: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": hash_}}


async def forget_queries(redis_url: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    keys = [k async for k in redis.scan_iter("partnerhub:apq:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_a_hash_is_unknown_until_sent_with_its_query_then_runs_alone_everywhere(
    http_settings: Settings, redis_url: str
) -> None:
    await forget_queries(redis_url)
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.ADMIN)
    auth = {"Authorization": f"Bearer {admin.token}"}
    query = QUERY + " # " + admin.token[-8:]  # a text no other test stored
    async with (
        app_client(http_settings, redis_url) as one,
        app_client(http_settings, redis_url) as two,
    ):
        unknown = await one.post("/graphql", json={"extensions": apq(sha(query))}, headers=auth)
        assert unknown.status_code == 200
        assert unknown.json() == {
            "errors": [
                {"message": "PersistedQueryNotFound",
                 "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
            ]
        }  # fmt: skip
        by_get = await one.get(
            "/graphql", params={"extensions": json.dumps(apq(sha(query)))}, headers=auth
        )
        assert by_get.status_code == 200
        assert by_get.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

        registered = await one.post(
            "/graphql", json={"query": query, "extensions": apq(sha(query))}, headers=auth
        )
        assert registered.json()["data"] == {"viewer": {"email": admin.admin.email}}
        # The other API process reads the same Redis: the hash alone runs there.
        alone = await two.post("/graphql", json={"extensions": apq(sha(query))}, headers=auth)
        assert alone.json()["data"] == {"viewer": {"email": admin.admin.email}}
        alone_get = await two.get(
            "/graphql", params={"extensions": json.dumps(apq(sha(query)))}, headers=auth
        )
        assert alone_get.json()["data"] == {"viewer": {"email": admin.admin.email}}
        # Still needs a token.
        anonymous = await two.post("/graphql", json={"extensions": apq(sha(query))})
        assert anonymous.status_code == 401
    await forget_queries(redis_url)


BAD_EXTENSIONS = [
    ({"persistedQuery": {"version": 2, "sha256Hash": "a" * 64}}, "PERSISTED_QUERY_INVALID"),
    ({"persistedQuery": {"version": 1, "sha256Hash": "abc"}}, "PERSISTED_QUERY_INVALID"),
    ({"persistedQuery": {"version": 1, "sha256Hash": "g" * 64}}, "PERSISTED_QUERY_INVALID"),
    ({"persistedQuery": {"version": 1}}, "PERSISTED_QUERY_INVALID"),
    ({"persistedQuery": "x"}, "PERSISTED_QUERY_INVALID"),
]


@pytest.mark.parametrize(("extensions", "code"), BAD_EXTENSIONS)
async def test_a_malformed_persisted_query_is_400_json(
    client: httpx.AsyncClient, extensions: dict, code: str
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.ADMIN)
    response = await client.post(
        "/graphql",
        json={"query": QUERY, "extensions": extensions},
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == code


async def test_a_hash_that_is_not_the_querys_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.ADMIN)
    auth = {"Authorization": f"Bearer {admin.token}"}
    other = sha("query Other { organization { name } } # " + admin.token)
    response = await client.post(
        "/graphql", json={"query": QUERY, "extensions": apq(other)}, headers=auth
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert "sha256" in error["message"]
    after = await client.post("/graphql", json={"extensions": apq(other)}, headers=auth)
    assert after.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def manifest(tmp_path: Path, documents: dict[str, str]) -> Path:
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps(documents))
    return path


def test_documents_check_accepts_a_valid_manifest_and_names_each_problem(tmp_path: Path) -> None:
    env = cli_env(None, tmp_path / "var")
    good = {sha(d): d for d in (QUERY, "query Org { organization { name } }")}
    ok = run_cli(["documents", "check", str(manifest(tmp_path, good))], env)
    assert ok.returncode == 0 and "2 trusted documents" in ok.stdout
    bad_cases = [
        ({"0" * 64: QUERY}, "not the sha256 of its document"),
        ({"short": QUERY}, "not a sha256 hash"),
        ({sha("{ viewer { emial } }"): "{ viewer { emial } }"}, "emial"),
        ({sha("{ viewer "): "{ viewer "}, "Syntax Error"),
        ({sha(QUERY): 5}, "not a document"),
    ]
    for documents, message in bad_cases:
        result = run_cli(["documents", "check", str(manifest(tmp_path, documents))], env)
        assert result.returncode == 1, documents
        assert message in result.stderr, result.stderr
    (tmp_path / "broken.json").write_text("{not json")
    broken = run_cli(["documents", "check", str(tmp_path / "broken.json")], env)
    assert broken.returncode == 1 and "is not JSON" in broken.stderr
    assert "[" not in run_cli(["documents", "check", "--help"], env).stderr


def test_partnerhub_schema_prints_the_served_sdl(tmp_path: Path) -> None:
    from schema import schema

    result = run_cli(["schema"], cli_env(None, tmp_path / "var"))
    assert result.returncode == 0
    assert result.stdout.strip() == str(schema).strip()
    assert "type Query" in result.stdout and "reportUpdated" in result.stdout


async def test_trusted_documents_bind_browser_sign_ins_only() -> None:
    from app.persisted_queries import (
        PersistedQueryError,
        QueryStore,
        TrustedDocuments,
        resolve_document,
    )

    trusted = TrustedDocuments({sha(QUERY): QUERY})
    store = QueryStore("")  # no Redis: nothing stored, nothing found
    # By hash, and as identical text.
    assert await resolve_document(None, apq(sha(QUERY)), store, trusted, trusted_only=True) == QUERY
    assert await resolve_document(QUERY, None, store, trusted, trusted_only=True) == QUERY
    with pytest.raises(PersistedQueryError) as refused:
        await resolve_document("{ viewer { id } }", None, store, trusted, trusted_only=True)
    assert refused.value.code == "DOCUMENT_NOT_TRUSTED" and refused.value.status == 403
    # An integration signed in with an API token runs any document.
    assert await resolve_document("{ viewer { id } }", None, store, trusted, trusted_only=False)
