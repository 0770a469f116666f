"""Who a bearer token is: an API token (integrations) or an OIDC access token
(browser SPAs), for HTTP requests and websocket `connection_init` alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt

from app.auth import hash_token, viewer_for_token
from app.domain.access import Viewer
from app.middleware import DATABASE_OUTAGE, DATABASE_RETRY_AFTER_SECONDS
from app.oidc import KeysUnavailable, OidcVerifier, TokenRefused, looks_like_jwt, viewer_for_oidc
from app.outage import database_unreachable


@dataclass(frozen=True)
class SignIn:
    viewer: Viewer
    method: Literal["token", "oidc"]
    # An API token's sha256 (an open websocket re-checks it), or None.
    token_hash: str | None = None
    # When an OIDC token stops being valid (an open websocket closes then).
    expires_at: datetime | None = None


def remember_sign_in(state: Any, signed: SignIn) -> None:
    """Keep a sign-in on the request's (or websocket's) state: `viewer` for the
    GraphQL context, `sign_in` for what follows it (trusted documents for OIDC,
    the websocket re-check of the token's hash or expiry)."""
    if isinstance(state, dict):  # an ASGI scope's state, before Starlette wraps it
        state["viewer"], state["sign_in"] = signed.viewer, signed
    else:
        state.viewer, state.sign_in = signed.viewer, signed


class SignInRefused(Exception):
    """Why a token signs nobody in; the message is for the client and never
    echoes the token. `status` is 401, or 503 when the token cannot be checked
    now (the issuer's keys or the database out of reach; try again after
    `retry_after_seconds`)."""

    def __init__(self, message: str, status: int = 401, retry_after_seconds: int = 30) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_seconds = retry_after_seconds


DATABASE_UNREACHABLE = (
    "The database is unreachable right now, so the token cannot be checked: retry in a few seconds."
)


async def sign_in(token: str, verifier: OidcVerifier | None) -> SignIn:
    """The viewer a bearer token acts for, or SignInRefused (503 while the
    database is unreachable: the token is looked up there)."""
    try:
        signed = await _sign_in(token, verifier)
    except SignInRefused:
        raise
    except Exception as exc:
        if not database_unreachable(exc):
            raise
        DATABASE_OUTAGE.failed(exc)
        raise SignInRefused(DATABASE_UNREACHABLE, 503, DATABASE_RETRY_AFTER_SECONDS) from None
    DATABASE_OUTAGE.recovered()
    return signed


async def _sign_in(token: str, verifier: OidcVerifier | None) -> SignIn:
    if verifier is not None and looks_like_jwt(token):
        try:
            viewer = await viewer_for_oidc(token, verifier)
        except KeysUnavailable as exc:
            raise SignInRefused(f"OIDC sign-in is unavailable: {exc.reason}", 503) from None
        except TokenRefused as exc:
            raise SignInRefused(f"The OIDC token was refused: {exc.reason}.") from None
        assert viewer is not None
        claims = jwt.decode(token, options={"verify_signature": False})
        return SignIn(viewer, "oidc", expires_at=datetime.fromtimestamp(claims["exp"], UTC))
    viewer = await viewer_for_token(token)
    if viewer is None:
        raise SignInRefused("Unknown, revoked or expired token.")
    return SignIn(viewer, "token", token_hash=hash_token(token))
