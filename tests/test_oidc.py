"""OIDC access tokens (app/oidc.py) against a real issuer over HTTP.

The issuer is a ThreadingHTTPServer on 127.0.0.1 serving its discovery document
and its JWKS (an RSA key and an EC P-256 key generated here with cryptography);
it counts the requests it gets, so the tests see how often the verifier fetches.
Admin lookups run on both databases (the `db` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app.config import Settings, SettingsError
from app.models.enums import AdminRole
from app.oidc import KeysUnavailable, OidcVerifier, TokenRefused, looks_like_jwt, viewer_for_oidc
from tests import factories

AUDIENCE = "partnerhub-spa"
RSA_KID = "rsa-1"
EC_KID = "ec-1"

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


RSA_KEY = _rsa_key()
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = _rsa_key()  # never published


def jwk(key: SigningKey, kid: str) -> dict[str, Any]:
    """The public JWK of a private key, as an issuer publishes it."""
    if isinstance(key, rsa.RSAPrivateKey):
        entry = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        entry["alg"] = "RS256"
    else:
        entry = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        entry["alg"] = "ES256"
    return {**entry, "kid": kid, "use": "sig"}


class Issuer:
    """A real OIDC issuer on 127.0.0.1: discovery document + JWKS, with request counts."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": [jwk(RSA_KEY, RSA_KID), jwk(EC_KEY, EC_KID)]}
        self.jwks_status = 200
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with issuer._lock:
                    issuer.hits[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    status, body = 200, {"issuer": issuer.url, "jwks_uri": issuer.jwks_url}
                elif self.path == "/jwks.json":
                    status, body = issuer.jwks_status, issuer.jwks
                else:
                    status, body = 404, {"error": "not found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.jwks_url = f"{self.url}/jwks.json"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def jwks_fetches(self) -> int:
        return self.hits["/jwks.json"]

    @property
    def discovery_fetches(self) -> int:
        return self.hits["/.well-known/openid-configuration"]

    def token(
        self,
        key: SigningKey = RSA_KEY,
        kid: str | None = RSA_KID,
        *,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A token of this issuer for AUDIENCE, valid now, with `claims` changed
        and the claims named in `drop` left out."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "email": "alice@example.com",
            "email_verified": True,
        }
        payload.update(claims)
        for name in drop:
            payload.pop(name)
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


@pytest.fixture
def verifier(issuer: Issuer) -> OidcVerifier:
    return OidcVerifier(issuer.url, AUDIENCE)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A compact JWS built by hand (PyJWT refuses to make these): HS256 with `secret`,
    or an empty signature when secret is None."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b"" if secret is None else hmac.digest(secret, signing_input.encode(), "sha256")
    return f"{signing_input}.{b64(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


async def refused(verifier: OidcVerifier, token: str) -> str:
    """The reason the verifier refuses `token`; the reason never echoes the token."""
    with pytest.raises(TokenRefused) as caught:
        await verifier.email_for(token)
    reason = str(caught.value)
    assert reason == caught.value.reason
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in reason
    return reason


# --- accepted tokens, admin found (both databases) ---------------------------


async def test_rs256_and_es256_tokens_name_their_admin(
    db: Settings, issuer: Issuer, verifier: OidcVerifier
) -> None:
    org = await factories.partner("Acme Partners", "acme.example")
    alice = await factories.admin(org, AdminRole.FULL_ADMIN, email="alice@acme.example")
    bob = await factories.admin(org, AdminRole.SALES_ADMIN, email="bob@acme.example")

    rs = issuer.token(RSA_KEY, RSA_KID, email="Alice@ACME.example")
    viewer = await viewer_for_oidc(rs, verifier)
    assert viewer is not None
    assert viewer.admin.id == alice.admin.id
    assert viewer.partner.id == org.id and viewer.partner.name == "Acme Partners"
    assert viewer.role is AdminRole.FULL_ADMIN

    es = issuer.token(EC_KEY, EC_KID, email="  BOB@acme.EXAMPLE ")
    viewer = await viewer_for_oidc(es, verifier)
    assert viewer is not None
    assert viewer.admin.id == bob.admin.id
    assert viewer.role is AdminRole.SALES_ADMIN
    # The discovery document and the JWKS were each fetched once for both tokens.
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)


async def test_unknown_email_is_refused(
    db: Settings, issuer: Issuer, verifier: OidcVerifier
) -> None:
    org = await factories.partner("Acme Partners", "acme.example")
    await factories.admin(org, AdminRole.FULL_ADMIN, email="alice@acme.example")
    with pytest.raises(TokenRefused, match=r"^no admin has this email$"):
        await viewer_for_oidc(issuer.token(email="mallory@acme.example"), verifier)


async def test_a_refused_token_finds_no_viewer(
    db: Settings, issuer: Issuer, verifier: OidcVerifier
) -> None:
    org = await factories.partner("Acme Partners", "acme.example")
    await factories.admin(org, AdminRole.FULL_ADMIN, email="alice@acme.example")
    expired = issuer.token(email="alice@acme.example", exp=int(time.time()) - 3600)
    with pytest.raises(TokenRefused, match=r"^expired$"):
        await viewer_for_oidc(expired, verifier)


async def test_without_a_verifier_no_oidc_viewer(db: Settings, issuer: Issuer) -> None:
    assert await viewer_for_oidc(issuer.token(), None) is None
    assert issuer.hits == Counter()


# --- the claims checks --------------------------------------------------------


async def test_email_is_lower_cased(issuer: Issuer, verifier: OidcVerifier) -> None:
    assert await verifier.email_for(issuer.token(email="Carol@Example.COM")) == "carol@example.com"


async def test_leeway_of_thirty_seconds(issuer: Issuer, verifier: OidcVerifier) -> None:
    now = int(time.time())
    assert await verifier.email_for(issuer.token(exp=now - 10))
    assert await verifier.email_for(issuer.token(nbf=now + 10, iat=now + 10))
    assert await refused(verifier, issuer.token(exp=now - 60)) == "expired"
    assert "not yet valid" in await refused(verifier, issuer.token(nbf=now + 60))


async def test_a_custom_email_claim(issuer: Issuer) -> None:
    claim = "https://partnerhub.example/email"
    verifier = OidcVerifier(issuer.url, AUDIENCE, email_claim=claim)
    token = issuer.token(drop=("email",), **{claim: "Dave@Example.com"})
    assert await verifier.email_for(token) == "dave@example.com"
    assert await refused(verifier, issuer.token()) == f"missing email claim {claim!r}"


async def test_several_audiences_one_of_them_ours(issuer: Issuer, verifier: OidcVerifier) -> None:
    token = issuer.token(aud=["https://api.other.example", AUDIENCE])
    assert await verifier.email_for(token) == "alice@example.com"


def _hs256_with_public_key(issuer: Issuer) -> str:
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return handmade({"alg": "HS256", "typ": "JWT", "kid": RSA_KID}, claims_of(issuer.token()), pem)


def _tampered(issuer: Issuer) -> str:
    header, _, signature = issuer.token().split(".")
    payload = claims_of(issuer.token()) | {"email": "admin@example.com"}
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


REFUSALS: dict[str, tuple[Any, str]] = {
    "expired": (
        lambda i: i.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "expired",
    ),
    "nbf in the future": (
        lambda i: i.token(nbf=int(time.time()) + 600),
        "not yet valid (nbf or iat in the future)",
    ),
    "iat in the future": (
        lambda i: i.token(drop=("nbf",), iat=int(time.time()) + 600),
        "not yet valid (nbf or iat in the future)",
    ),
    "wrong issuer": (lambda i: i.token(iss="https://evil.example"), "wrong issuer"),
    "no issuer": (lambda i: i.token(drop=("iss",)), "missing claim 'iss'"),
    "wrong audience": (lambda i: i.token(aud="another-app"), "wrong audience"),
    "no audience": (lambda i: i.token(drop=("aud",)), "missing claim 'aud'"),
    "no expiry": (lambda i: i.token(drop=("exp",)), "missing claim 'exp'"),
    "unknown kid": (
        lambda i: i.token(OTHER_RSA_KEY, "rsa-unpublished"),
        "unknown key id (kid): not in the issuer's JWKS",
    ),
    "no kid": (lambda i: i.token(kid=None), "the token names no key id (kid)"),
    "alg none": (
        lambda i: handmade(
            {"alg": "none", "typ": "JWT", "kid": RSA_KID}, claims_of(i.token()), None
        ),
        "algorithm 'none' is not accepted (only RS256 or ES256)",
    ),
    "alg None (capitalised)": (
        lambda i: handmade({"alg": "None", "kid": RSA_KID}, claims_of(i.token()), None),
        "algorithm 'None' is not accepted (only RS256 or ES256)",
    ),
    "no alg": (
        lambda i: handmade({"kid": RSA_KID}, claims_of(i.token()), None),
        "algorithm 'NoneType' is not accepted (only RS256 or ES256)",
    ),
    "HS256 with the public key PEM": (
        _hs256_with_public_key,
        "algorithm 'HS256' is not accepted (only RS256 or ES256)",
    ),
    "RS384": (
        lambda i: jwt.encode(
            claims_of(i.token()), RSA_KEY, algorithm="RS384", headers={"kid": RSA_KID}
        ),
        "algorithm 'RS384' is not accepted (only RS256 or ES256)",
    ),
    "ES256 header on the RSA key's kid": (
        lambda i: i.token(EC_KEY, RSA_KID),
        "the algorithm does not match the key",
    ),
    "signed by another key under a published kid": (
        lambda i: i.token(OTHER_RSA_KEY, RSA_KID),
        "bad signature",
    ),
    "tampered payload": (_tampered, "bad signature"),
    "missing email": (lambda i: i.token(drop=("email",)), "missing email claim 'email'"),
    "email not an address": (lambda i: i.token(email="alice"), "missing email claim 'email'"),
    "email not a string": (
        lambda i: i.token(email=["alice@example.com"]),
        "missing email claim 'email'",
    ),
    "email_verified false": (lambda i: i.token(email_verified=False), "email_verified is not true"),
    "email_verified 'false'": (
        lambda i: i.token(email_verified="false"),
        "email_verified is not true",
    ),
    "garbage": (lambda i: "garbage", "malformed token: not a JWT"),
    "garbage in three parts": (lambda i: "abc.def.ghi", "malformed token: unreadable header"),
    "header of a JSON list": (
        lambda i: f"{b64(b'[1]')}.{b64(b'{}')}.c2ln",
        "malformed token: unreadable header",
    ),
    "signed payload not JSON": (
        lambda i: jwt.api_jws.encode(
            b"not json", RSA_KEY, algorithm="RS256", headers={"kid": RSA_KID}
        ),
        "malformed token",
    ),
    "an API token": (lambda i: "phk_" + "x" * 43, "malformed token: not a JWT"),
    "empty": (lambda i: "", "malformed token: not a JWT"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refusals_say_which_check_failed(
    case: str, issuer: Issuer, verifier: OidcVerifier
) -> None:
    make, reason = REFUSALS[case]
    assert await refused(verifier, make(issuer)) == reason


# --- the JWKS cache -------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unknown_kids_refetch_the_jwks_at_most_once_a_minute(issuer: Issuer) -> None:
    clock = FakeClock()
    verifier = OidcVerifier(issuer.url, AUDIENCE, clock=clock)

    async def flood() -> None:
        tokens = [issuer.token(OTHER_RSA_KEY, f"random-{uuid.uuid4().hex}") for _ in range(50)]
        reasons = await asyncio.gather(*(refused(verifier, t) for t in tokens))
        assert set(reasons) == {"unknown key id (kid): not in the issuer's JWKS"}

    # 50 concurrent tokens with made-up kids on a cold cache: one fetch.
    await flood()
    assert issuer.jwks_fetches == 1
    clock.now += 59
    await flood()
    assert issuer.jwks_fetches == 1
    # A minute after the last fetch, unknown kids may look once more.
    clock.now += 2
    await flood()
    assert issuer.jwks_fetches == 2
    await flood()
    assert issuer.jwks_fetches == 2
    # Known kids are served from the cache meanwhile.
    assert await verifier.email_for(issuer.token()) == "alice@example.com"
    assert await verifier.email_for(issuer.token(EC_KEY, EC_KID)) == "alice@example.com"
    assert issuer.jwks_fetches == 2
    assert issuer.discovery_fetches == 1
    assert verifier.fetch_count == 2


async def test_key_rotation_is_picked_up_once_the_cache_is_a_minute_old(issuer: Issuer) -> None:
    verifier = OidcVerifier(issuer.url, AUDIENCE, refetch_interval=1.0)
    new_key = _rsa_key()  # made first: generating it takes a while
    old_token = issuer.token()
    assert await verifier.email_for(old_token) == "alice@example.com"
    assert issuer.jwks_fetches == 1

    # The issuer rotates: a new RSA key replaces the old one.
    issuer.jwks = {"keys": [jwk(new_key, "rsa-2"), jwk(EC_KEY, EC_KID)]}
    new_token = issuer.token(new_key, "rsa-2")
    # Within the "minute" of the last fetch the new kid is not looked up yet.
    assert await refused(verifier, new_token) == "unknown key id (kid): not in the issuer's JWKS"
    assert issuer.jwks_fetches == 1
    # Past it, the new kid makes the verifier fetch the JWKS again and accept it.
    await asyncio.sleep(1.05)
    assert await verifier.email_for(new_token) == "alice@example.com"
    assert issuer.jwks_fetches == 2
    # The withdrawn key no longer verifies anything.
    assert await refused(verifier, old_token) == "unknown key id (kid): not in the issuer's JWKS"
    assert issuer.jwks_fetches == 2


async def test_the_key_set_is_refreshed_when_older_than_max_key_age(issuer: Issuer) -> None:
    clock = FakeClock()
    verifier = OidcVerifier(issuer.url, AUDIENCE, clock=clock, max_key_age=600)
    token = issuer.token()
    assert await verifier.email_for(token)
    issuer.jwks = {"keys": [jwk(EC_KEY, EC_KID)]}  # the RSA key withdrawn
    clock.now += 599
    assert await verifier.email_for(token)
    assert issuer.jwks_fetches == 1
    clock.now += 2
    assert await refused(verifier, token) == "unknown key id (kid): not in the issuer's JWKS"
    assert issuer.jwks_fetches == 2


async def test_an_issuer_that_cannot_serve_its_keys(issuer: Issuer) -> None:
    clock = FakeClock()
    verifier = OidcVerifier(issuer.url, AUDIENCE, clock=clock, max_key_age=600)
    issuer.jwks_status = 500
    with pytest.raises(KeysUnavailable, match=r"^the issuer's keys could not be fetched"):
        await verifier.email_for(issuer.token())
    # Failed fetches are rate-limited too.
    with pytest.raises(KeysUnavailable):
        await verifier.email_for(issuer.token())
    assert issuer.jwks_fetches == 1
    clock.now += 61
    issuer.jwks_status = 200
    assert await verifier.email_for(issuer.token())
    # A later failure keeps the cached keys working.
    issuer.jwks_status = 500
    clock.now += 601
    assert await verifier.email_for(issuer.token())
    assert issuer.jwks_fetches == 3


async def test_a_closed_port_is_keys_unavailable(issuer: Issuer) -> None:
    issuer.httpd.shutdown()
    issuer.httpd.server_close()
    verifier = OidcVerifier(issuer.url, AUDIENCE, timeout=2)
    with pytest.raises(KeysUnavailable):
        await verifier.email_for(issuer.token())


async def test_a_discovery_document_of_another_issuer_is_refused(issuer: Issuer) -> None:
    verifier = OidcVerifier(issuer.url + "/tenant", AUDIENCE)
    with pytest.raises(KeysUnavailable):
        await verifier.email_for(issuer.token(iss=issuer.url + "/tenant"))
    assert issuer.jwks_fetches == 0


# --- settings -------------------------------------------------------------------


async def test_from_settings(issuer: Issuer) -> None:
    assert OidcVerifier.from_settings(Settings()) is None
    with pytest.raises(SettingsError, match="PARTNERHUB_OIDC_AUDIENCE"):
        OidcVerifier.from_settings(Settings(oidc_issuer=issuer.url))

    discovered = OidcVerifier.from_settings(
        Settings(oidc_issuer=issuer.url, oidc_audience=AUDIENCE)
    )
    assert discovered is not None
    assert await discovered.email_for(issuer.token()) == "alice@example.com"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)

    direct = OidcVerifier.from_settings(
        Settings(
            oidc_issuer=issuer.url,
            oidc_audience=AUDIENCE,
            oidc_jwks_url=issuer.jwks_url,
            oidc_email_claim="upn",
        )
    )
    assert direct is not None
    assert await direct.email_for(issuer.token(upn="Erin@Example.com")) == "erin@example.com"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 2)


def test_looks_like_jwt(issuer: Issuer) -> None:
    assert looks_like_jwt(issuer.token())
    assert looks_like_jwt(issuer.token(EC_KEY, EC_KID))
    assert looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")  # alg none: still a JWT
    for token in (
        "phk_" + "A" * 43,
        "",
        "a.b",
        "a.b.c.d",
        ".b.c",
        "a..c",
        "a.b.c d",
        "a+b.c/d.e=",
        "a.b.c\n",
        "x" * 20_000 + ".b.c",
    ):
        assert not looks_like_jwt(token), token


def test_hmac_helper_is_a_real_hs256(issuer: Issuer) -> None:
    """The hand-made HS256 token is one PyJWT itself would verify with that secret, so
    its refusal above is the algorithm check, not a broken signature."""
    token = handmade({"alg": "HS256"}, {"x": 1}, b"s" * 32)
    assert jwt.decode(token, b"s" * 32, algorithms=["HS256"]) == {"x": 1}
