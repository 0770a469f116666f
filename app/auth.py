"""Bearer tokens -> viewer (admin + partner organization).

Tokens are random strings handed out once; only their sha256 is stored, so a
leaked database does not leak working tokens. A token stops working once it is
revoked or past its `expires_at` (app/domain/api_tokens.py manages them).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q, RawSQL

from app.domain.access import HOLDS_GRANT_SQL, Viewer, holds_grant, may_sign_in, viewer_of
from app.models.admins import Admin, ApiToken

TOKEN_PREFIX = "phk_"
# API tokens are 47 characters; OIDC access tokens (JWTs) run to a few KiB.
MAX_TOKEN_CHARS = 16 * 1024
# `last_used_at` is written at most this often, so a request costs no write.
LAST_USED_RESOLUTION = timedelta(minutes=10)


class UnknownAdminError(LookupError):
    """No admin has that email."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN_CHARS:
        return None
    return value


async def viewer_for_token(token: str) -> Viewer | None:
    """The viewer a token acts for, or None for an unknown, revoked or expired token."""
    record = (
        await ApiToken.filter(token_hash=hash_token(token), revoked_at__isnull=True)
        .annotate(holds_grant=RawSQL(HOLDS_GRANT_SQL))
        .select_related("admin__partner")
        .first()
    )
    if record is None or not may_sign_in(record.admin):
        return None
    now = datetime.now(UTC)
    if record.expires_at is not None and record.expires_at <= now:
        return None
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        await ApiToken.filter(id=record.id).update(last_used_at=now)
    return viewer_of(record.admin, bool(record.holds_grant))


async def token_hash_is_active(token_hash: str) -> bool:
    """True while the token with this sha256 is neither revoked nor expired (an open
    websocket asks this every `websocket_auth_recheck_seconds`)."""
    now = datetime.now(UTC)
    return (
        await ApiToken.filter(
            token_hash=token_hash, revoked_at__isnull=True, admin__removed_at__isnull=True
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exists()
    )


async def viewer_for_email(email: str) -> Viewer | None:
    """The viewer an admin is, found by email (OIDC sign-in, and the CLI, which runs
    as the admin); None when no admin has it or its admin was removed."""
    admin = await Admin.get_or_none(email=email.strip().lower()).select_related("partner")
    if admin is None or not may_sign_in(admin):
        return None
    return viewer_of(admin, await holds_grant(admin))


async def admin_was_removed(email: str) -> bool:
    """True when the admin with this email was removed (removeAdmin)."""
    return await Admin.filter(email=email.strip().lower(), removed_at__isnull=False).exists()
