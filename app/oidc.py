"""OIDC access tokens of browser SPAs -> the admin they name (by email).

An SPA signs its admin in at an OpenID Connect provider and sends the access
token it got as `Authorization: Bearer <jwt>`. The token is accepted when it is
an RS256 or ES256 JWT signed by one of the issuer's keys (its JWKS), carries
the configured issuer and audience, is within its lifetime (30 s leeway), and
names an email (`PARTNERHUB_OIDC_EMAIL_CLAIM`) that is not marked unverified.
The admin with that email (case-insensitive) is the viewer.

Keys are cached. A token naming a key id (`kid`) the cache lacks makes the
verifier fetch the JWKS again, but at most once per `refetch_interval` (60 s),
however many such tokens arrive, so tokens with made-up key ids cannot flood
the issuer. The cached set is also refreshed on use once it is older than
`max_key_age` (1 h), so a key the issuer withdrew stops working. Fetches use
httpx's async client with bounded timeouts and size: nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from app.auth import admin_was_removed, viewer_for_email
from app.config import Settings, SettingsError
from app.domain.access import Viewer

ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 30.0
REFETCH_INTERVAL_SECONDS = 60.0
MAX_KEY_AGE_SECONDS = 3600.0
FETCH_TIMEOUT_SECONDS = 5.0
# A discovery document or JWKS larger than this is refused (they are a few KiB).
MAX_DOCUMENT_BYTES = 512 * 1024
# A longer bearer value is not taken for a JWT (real access tokens are 1-4 KiB).
MAX_TOKEN_CHARS = 16 * 1024

_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class TokenRefused(Exception):
    """An OIDC token is not accepted; the message says which check failed (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailable(TokenRefused):
    """The issuer's keys could not be fetched (and none are cached), so no token can be checked."""


def looks_like_jwt(token: str) -> bool:
    """True for three base64url parts separated by dots (a JWS in compact form; the
    signature may be empty, as in `alg: none`, so such a token is refused as an OIDC
    token rather than looked up as an API token). API tokens (`phk_...`) have no dots."""
    return len(token) <= MAX_TOKEN_CHARS and _JWT_SHAPE.fullmatch(token) is not None


class OidcVerifier:
    """Checks OIDC access tokens against one issuer's keys and claims."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_url: str | None = None,
        email_claim: str = "email",
        leeway: float = LEEWAY_SECONDS,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
        max_key_age: float = MAX_KEY_AGE_SECONDS,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("an OIDC verifier needs an issuer and an audience")
        self.issuer = issuer
        self.audience = audience
        self.email_claim = email_claim
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self.max_key_age = max_key_age
        self.timeout = timeout
        self._configured_jwks_url = jwks_url
        self._jwks_url = jwks_url
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._lock = asyncio.Lock()
        self.fetch_count = 0  # JWKS fetches tried (for logs and tests)

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcVerifier | None:
        """The verifier the settings describe, or None when `oidc_issuer` is unset."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_audience:
            raise SettingsError(
                "PARTNERHUB_OIDC_AUDIENCE: must be set with PARTNERHUB_OIDC_ISSUER (the "
                "audience the SPA's access tokens carry); without it a token the issuer "
                "made for any other application would be accepted"
            )
        return cls(
            settings.oidc_issuer,
            settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url or None,
            email_claim=settings.oidc_email_claim,
        )

    async def email_for(self, token: str) -> str:
        """The lower-cased email the token names, or TokenRefused saying why not."""
        if not looks_like_jwt(token):
            raise TokenRefused("malformed token: not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused("malformed token: unreadable header") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            shown = alg[:20] if isinstance(alg, str) else type(alg).__name__
            raise TokenRefused(f"algorithm {shown!r} is not accepted (only RS256 or ES256)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("the token names no key id (kid)")
        key = await self._key(kid)
        if key is None:
            raise TokenRefused("unknown key id (kid): not in the issuer's JWKS")
        claims = self._decode(token, key)
        verified = claims.get("email_verified", True)
        if verified is not True and verified != "true":
            raise TokenRefused("email_verified is not true")
        email = claims.get(self.email_claim)
        if not isinstance(email, str) or "@" not in email.strip():
            raise TokenRefused(f"missing email claim {self.email_claim!r}")
        return email.strip().lower()

    def _decode(self, token: str, key: PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    "require": ["exp", "iss", "aud"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("not yet valid (nbf or iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"missing claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("bad signature") from None
        except jwt.InvalidAlgorithmError:
            raise TokenRefused("the algorithm does not match the key") from None
        except jwt.InvalidIssuedAtError:
            raise TokenRefused("malformed token: iat is not a number") from None
        except jwt.DecodeError:
            raise TokenRefused("malformed token") from None
        except jwt.InvalidKeyError:
            raise TokenRefused("the issuer's key is too weak") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"invalid token ({type(exc).__name__})") from None

    async def _key(self, kid: str) -> PyJWK | None:
        """The cached key `kid`, fetching the JWKS first when the cache is empty, older
        than max_key_age, or lacks `kid`; never more than once per refetch_interval."""
        if not self._needs_fetch(kid):
            return self._keys.get(kid)
        async with self._lock:
            # Another task may have fetched while this one waited for the lock.
            if self._needs_fetch(kid) and self._may_fetch():
                await self._refresh()
            if self._fetched_at is None:  # the last fetch failed and none ever worked
                raise KeysUnavailable("the issuer's keys could not be fetched (retrying later)")
            return self._keys.get(kid)

    def _needs_fetch(self, kid: str) -> bool:
        if self._fetched_at is None or kid not in self._keys:
            return True
        return self._clock() - self._fetched_at >= self.max_key_age

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self.refetch_interval
        )

    async def _refresh(self) -> None:
        """Fetch the JWKS (and the discovery document, until its jwks_uri is known).
        A failure keeps the keys cached so far; with none cached it is KeysUnavailable."""
        self._attempted_at = self._clock()
        self.fetch_count += 1
        try:
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout), follow_redirects=True, max_redirects=3
            ) as http:
                if self._jwks_url is None:
                    self._jwks_url = await self._discover(http)
                keys = _usable_keys(await _get_json(http, self._jwks_url))
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            if self._configured_jwks_url is None:
                self._jwks_url = None  # discover again next time
            if not self._keys:
                raise KeysUnavailable(
                    f"the issuer's keys could not be fetched ({type(exc).__name__})"
                ) from None
            return
        self._keys = keys
        self._fetched_at = self._clock()

    async def _discover(self, http: httpx.AsyncClient) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await _get_json(http, url)
        if document.get("issuer") != self.issuer:
            raise ValueError("the discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError("the discovery document has no jwks_uri")
        return jwks_uri


async def _get_json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The JSON object at `url`; ValueError for a non-200 answer, a body larger
    than MAX_DOCUMENT_BYTES or anything but a JSON object."""
    async with http.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError("document too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


def _usable_keys(jwks: dict[str, Any]) -> dict[str, PyJWK]:
    """The JWKS's signing keys for RS256 or ES256, by kid; others are skipped."""
    keys: dict[str, PyJWK] = {}
    entries = jwks.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the JWKS has no keys list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


async def viewer_for_oidc(token: str, verifier: OidcVerifier | None) -> Viewer | None:
    """The viewer an OIDC access token acts for: the admin with its email (and that
    admin's partner). None when OIDC is not configured (no verifier); TokenRefused
    for a token that fails a check or names an email no admin has (a removed
    admin's email included)."""
    if verifier is None:
        return None
    email = await verifier.email_for(token)
    viewer = await viewer_for_email(email)
    if viewer is None:
        if await admin_was_removed(email):
            raise TokenRefused("the admin with this email was removed")
        raise TokenRefused("no admin has this email")
    return viewer
