"""CORS: which browser pages may call the API, answered before authentication."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.models.enums import AdminRole
from tests import factories
from tests.graphql_client import app_client

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_an_allowed_origin_gets_its_preflight_and_reads_answers_and_errors(
    http_settings: Settings, redis_url: str
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = await factories.admin(org, AdminRole.FULL_ADMIN)
    settings = http_settings.model_copy(
        update={"cors_origins": "https://app.example.com, https://admin.example.org:8443"}
    )
    async with app_client(settings, redis_url) as http:
        for origin in ("https://app.example.com", "https://admin.example.org:8443"):
            preflight = await http.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
            assert preflight.status_code == 200, preflight.text  # no token needed
            assert preflight.headers["access-control-allow-origin"] == origin
            allowed = preflight.headers["access-control-allow-headers"].lower()
            assert "authorization" in allowed and "content-type" in allowed
            assert "POST" in preflight.headers["access-control-allow-methods"]
        answer = await http.post(
            "/graphql",
            json={"query": "{ viewer { email } }"},
            headers={"Origin": "https://app.example.com", "Authorization": f"Bearer {admin.token}"},
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed and "retry-after" in exposed
        refused = await http.post(
            "/graphql", json={"query": "{ viewer { email } }"},
            headers={"Origin": "https://app.example.com"},
        )  # fmt: skip
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
        download = await http.get(
            "/reports/1/download?expires=1&signature=x",
            headers={"Origin": "https://app.example.com"},
        )
        assert download.headers["access-control-allow-origin"] == "https://app.example.com"
        exposed = download.headers["access-control-expose-headers"].lower()
        assert "content-disposition" in exposed and "x-checksum-sha256" in exposed


DISALLOWED = [
    "https://evil.example.com",
    "https://app.example.com.evil.example",
    "http://app.example.com",  # another scheme is another origin
    "https://app.example.com:444",
    "null",
    "http://localhost:5173",  # not the embedded default here (PostgreSQL or REDIS_URL set)
]


@pytest.mark.parametrize("origin", DISALLOWED)
async def test_a_disallowed_origin_gets_no_cors_headers(
    http_settings: Settings, redis_url: str, origin: str
) -> None:
    settings = http_settings.model_copy(update={"cors_origins": "https://app.example.com"})
    async with app_client(settings, redis_url) as http:
        preflight = await http.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        answer = await http.get("/healthz", headers={"Origin": origin})
        assert "access-control-allow-origin" not in answer.headers


def test_the_embedded_default_allows_local_dev_servers_on_any_port() -> None:
    from app.middleware import origin_allowed

    embedded = Settings(DATABASE_URL="sqlite://var/x.sqlite3")
    assert embedded.is_embedded_default
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://localhost"):
        assert origin_allowed(embedded, origin), origin
    for origin in ("https://localhost.evil.example", "http://localhost.evil.example:5173",
                   "http://127.0.0.2:5173", "http://localhost:5173/x"):  # fmt: skip
        assert not origin_allowed(embedded, origin), origin
    production = Settings(
        DATABASE_URL="postgres://u:p@db/x", REDIS_URL="redis://r:6379/0",
        cors_origins="https://app.example.com",
    )  # fmt: skip
    assert not origin_allowed(production, "http://localhost:5173")
    assert origin_allowed(production, "https://app.example.com")


@pytest.mark.parametrize(
    "value",
    ["app.example.com", "https://app.example.com/", "https://app.example.com/x", "ftp://a.b"],
)
def test_an_origin_setting_that_is_not_an_origin_is_refused(value: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(cors_origins=value)


async def test_make_run_set_up_answers_a_vite_dev_server(
    db: Settings, redis_url: str, engine: str
) -> None:
    """SQLite with the embedded Valkey: http://localhost:5173 is allowed."""
    embedded = db.model_copy(update={"redis_url": None})
    assert embedded.is_embedded_default == (engine == "sqlite")
    async with app_client(embedded, redis_url) as http:
        preflight = await http.options(
            "/graphql", headers={"Origin": "http://localhost:5173", **PREFLIGHT}
        )
    if engine == "sqlite":
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    else:
        assert "access-control-allow-origin" not in preflight.headers
