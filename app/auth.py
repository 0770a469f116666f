"""Bearer tokens -> viewer (admin + partner organization).

Tokens are random strings handed out once; only their sha256 is stored, so a
leaked database does not leak working tokens. A token stops working once it is
revoked or past its `expires_at` (app/domain/api_tokens.py manages them).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q, RawSQL
from tortoise.queryset import QuerySet
from tortoise.router import router

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


def _token_lookup(token_hash: str) -> QuerySet[ApiToken]:
    """The active token with this hash, its admin and partner, and whether the
    admin holds an external-admin grant."""
    return (
        ApiToken.filter(token_hash=token_hash, revoked_at__isnull=True)
        .annotate(holds_grant=RawSQL(HOLDS_GRANT_SQL))
        .select_related("admin__partner")
        .first()
    )  # type: ignore[return-value]


# `_token_lookup` as Tortoise makes it (its SQL, parameters and select_related
# layout), made once per dialect and query class and run with each request's
# hash: making it (the joins of select_related, the SQL text) cost more CPU than
# the rest of a sign-in. None: the made query did not take the hash as one
# parameter, so each lookup makes its own.
_MARKER = "\x00token-hash\x00"
_MADE_LOOKUPS: dict[tuple[Any, ...], tuple[QuerySet[ApiToken], str, list[Any], int] | None] = {}


async def _token_record(token_hash: str) -> ApiToken | None:
    """What `await _token_lookup(token_hash)` answers, from the lookup made once."""
    db = router.db_for_read(ApiToken) or ApiToken._meta.db
    key = (db.capabilities.dialect, db.query_class, db.executor_class)
    if key not in _MADE_LOOKUPS:
        template = _token_lookup(_MARKER)
        template._db = db
        template._make_query()
        sql, values = template.query.get_parameterized_sql()
        spots = [i for i, value in enumerate(values) if value == _MARKER]
        _MADE_LOOKUPS[key] = (
            (template, sql, list(values), spots[0])
            if len(spots) == 1 and _MARKER not in sql
            else None
        )
    made = _MADE_LOOKUPS[key]
    if made is None:
        return await _token_lookup(token_hash)
    template, sql, values, spot = made
    values = list(values)
    values[spot] = token_hash
    found = await db.executor_class(
        model=ApiToken,
        db=db,
        prefetch_map=template._prefetch_map,
        prefetch_queries=template._prefetch_queries,
        select_related_idx=template._select_related_idx,
    ).execute_select(sql, values, custom_fields=list(template._annotations.keys()))
    return found[0] if found else None


async def viewer_for_token(token: str) -> Viewer | None:
    """The viewer a token acts for, or None for an unknown, revoked or expired token."""
    record = await _token_record(hash_token(token))
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
