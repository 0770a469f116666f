"""API tokens with a life cycle: created with a lifetime, listed (never their
secret), revoked. A revoked or expired token stops working at once for HTTP
(app/auth.py) and within `websocket_auth_recheck_seconds` for an open
websocket (schema/websocket_auth.py).

GraphQL (FULL_ADMIN of the partner) and the `partnerhub token` commands (the
operator of the service, by admin email or token id) share the rules here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from app.auth import UnknownAdminError, hash_token, new_token
from app.clock import utcnow
from app.domain.access import (
    API_TOKEN_ROLES,
    CREATE_API_TOKEN,
    REVOKE_API_TOKEN,
    Viewer,
    may_sign_in,
    visible_admins,
    visible_api_tokens,
)
from app.domain.errors import Forbidden, MutationRejected, UserError, UserErrorCode, reject
from app.domain.mutations import Audited, audit_target, run_mutation
from app.domain.pagination import Page, keyset_page
from app.models.admins import Admin, ApiToken

MAX_LABEL_LENGTH = 100
MIN_LIFETIME_DAYS = 1
MAX_LIFETIME_DAYS = 3650


@dataclass(frozen=True, slots=True)
class ApiTokenValue:
    """A token as the GraphQL layer reads it (never its secret or hash)."""

    id: int
    admin_id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> ApiTokenValue:
        return cls(
            id=token.id,
            admin_id=token.admin_id,
            label=token.label,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )


@dataclass(frozen=True)
class CreatedToken:
    """A new token's row and its secret, which is shown this once and never stored."""

    record: ApiToken
    secret: str


@dataclass(frozen=True, slots=True)
class CreatedTokenValue:
    """createApiToken's answer: the token and its secret, shown this once."""

    token: ApiTokenValue
    secret: str


def is_active(token: ApiToken | ApiTokenValue, now: datetime) -> bool:
    """Neither revoked nor expired at `now`."""
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def clean_label(label: str | None, field: tuple[str, ...], *, required: bool = True) -> str:
    """The label with its whitespace collapsed: 1 to 100 characters (0 allowed
    when not required)."""
    cleaned = " ".join((label or "").split())
    if len(cleaned) > MAX_LABEL_LENGTH or (required and not cleaned):
        raise reject(
            field,
            f"A token label is {'1 to' if required else 'at most'} {MAX_LABEL_LENGTH} characters.",
            UserErrorCode.INVALID,
        )
    return cleaned


def lifetime(days: int | None, default_days: int, field: tuple[str, ...]) -> timedelta:
    """The lifetime of a new token: `days` (1 to 3650) or the service's default."""
    chosen = default_days if days is None else days
    if not MIN_LIFETIME_DAYS <= chosen <= MAX_LIFETIME_DAYS:
        raise reject(
            field,
            f"A token lives {MIN_LIFETIME_DAYS} to {MAX_LIFETIME_DAYS} days (got {chosen}).",
            UserErrorCode.INVALID,
        )
    return timedelta(days=chosen)


async def _issue(admin: Admin, label: str, expires_at: datetime) -> CreatedToken:
    secret = new_token()
    record = await ApiToken.create(
        admin=admin, token_hash=hash_token(secret), label=label, expires_at=expires_at
    )
    return CreatedToken(record=record, secret=secret)


async def _mark_revoked(token: ApiToken) -> bool:
    """Revoke now unless already revoked (one conditional UPDATE, so two revocations
    at once revoke once); True when this call revoked it."""
    now = utcnow()
    if not await ApiToken.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=now):
        return False
    token.revoked_at = now
    return True


def _describe(token: ApiToken, email: str) -> str:
    label = f" {token.label!r}" if token.label else ""
    return f"API token{label} of {email}"


# ----------------------------------------------------------- GraphQL (viewer) ----


async def list_api_tokens(
    viewer: Viewer, *, first: int | None, after: str | None
) -> Page[ApiTokenValue]:
    """The tokens of every admin of the viewer's partner, newest first (FULL_ADMIN)."""
    if viewer.role not in API_TOKEN_ROLES:
        raise Forbidden("API tokens are visible to FULL_ADMIN only.")
    page = await keyset_page(
        visible_api_tokens(viewer), ("id",), first, after, "api_tokens", descending=True
    )
    return replace(page, items=[ApiTokenValue.of(token) for token in page.items])


async def get_api_token(viewer: Viewer, token_id: int) -> ApiTokenValue | None:
    """A token of the viewer's partner for a FULL_ADMIN; None otherwise (node(id:))."""
    if viewer.role not in API_TOKEN_ROLES:
        return None
    token = await visible_api_tokens(viewer).get_or_none(id=token_id)
    return ApiTokenValue.of(token) if token else None


async def create_api_token(
    viewer: Viewer,
    label: str | None,
    expires_in_days: int | None,
    admin_id: int | None,
    *,
    default_days: int,
    for_viewer: bool,
) -> CreatedTokenValue:
    """A new token for the viewer (`for_viewer`) or for the admin `admin_id` of its
    partner; another partner's or a malformed admin id reads as not found."""

    async def work() -> Audited[CreatedTokenValue]:
        errors: list[UserError] = []
        clean = days = None
        try:
            clean = clean_label(label, ("input", "label"))
        except MutationRejected as rejected:
            errors += rejected.errors
        try:
            days = lifetime(expires_in_days, default_days, ("input", "expires_in_days"))
        except MutationRejected as rejected:
            errors += rejected.errors
        admin = viewer.admin if for_viewer else None
        if not for_viewer:
            admin = await visible_admins(viewer).get_or_none(id=admin_id) if admin_id else None
            if admin is None:
                errors.append(
                    UserError(("input", "admin_id"), "No such admin.", UserErrorCode.NOT_FOUND)
                )
        if errors or clean is None or days is None or admin is None:
            raise MutationRejected(errors)
        expires_at = utcnow() + days
        created = await _issue(admin, clean, expires_at)
        return Audited(
            CreatedTokenValue(ApiTokenValue.of(created.record), created.secret),
            audit_target("ApiToken", created.record.id),
            f"Created {_describe(created.record, admin.email)}, "
            f"expiring {expires_at.date().isoformat()}",
        )

    return await run_mutation(viewer, CREATE_API_TOKEN, "api_token.create", work)


async def revoke_api_token(viewer: Viewer, token_id: int | None) -> ApiTokenValue:
    """Revoke a token of the viewer's partner: it stops working at once."""
    field = ("input", "id")

    async def work() -> Audited[ApiTokenValue]:
        token = (
            await visible_api_tokens(viewer).select_related("admin").get_or_none(id=token_id)
            if token_id
            else None
        )
        if token is None:
            raise reject(field, "No such API token.", UserErrorCode.NOT_FOUND)
        if not await _mark_revoked(token):
            raise reject(field, "The token is already revoked.", UserErrorCode.INVALID)
        return Audited(
            ApiTokenValue.of(token),
            audit_target("ApiToken", token.id),
            f"Revoked {_describe(token, token.admin.email)}",
        )

    return await run_mutation(viewer, REVOKE_API_TOKEN, "api_token.revoke", work)


# ------------------------------------------------- CLI (the service's operator) ----


async def _admin_by_email(email: str, *, signing_in: bool = False) -> Admin:
    """The admin with this email; with `signing_in`, a removed admin is refused too
    (it gets no new token)."""
    admin = await Admin.get_or_none(email=email.strip().lower())
    if admin is None:
        raise UnknownAdminError(f"no admin has the email {email.strip()!r}")
    if signing_in and not may_sign_in(admin):
        raise UnknownAdminError(f"the admin {admin.email} was removed: it signs in no more")
    return admin


async def create_token_for_email(
    email: str, label: str, expires_in_days: int | None, default_days: int
) -> CreatedToken:
    """`partnerhub token create`: raises UnknownAdminError or MutationRejected."""
    clean = clean_label(label, ("label",), required=False)
    days = lifetime(expires_in_days, default_days, ("expires-in-days",))
    admin = await _admin_by_email(email, signing_in=True)
    return await _issue(admin, clean, utcnow() + days)


async def tokens_of_email(email: str) -> list[ApiToken]:
    """`partnerhub token list`: the admin's tokens, newest first."""
    admin = await _admin_by_email(email)
    return await ApiToken.filter(admin_id=admin.id).order_by("-id")


async def revoke_token_by_id(token_id: int) -> tuple[ApiToken, bool] | None:
    """`partnerhub token revoke`: (the token, whether this call revoked it), or
    None for an unknown id. Revoking a revoked token changes nothing."""
    token = await ApiToken.filter(id=token_id).select_related("admin").first()
    if token is None:
        return None
    return token, await _mark_revoked(token)


async def renew_tokens(tokens: Iterable[str], days: int) -> int:
    """Let these tokens (the demo admins') live `days` from now, unless revoked;
    returns how many were renewed."""
    hashes = [hash_token(token) for token in tokens]
    return await ApiToken.filter(token_hash__in=hashes, revoked_at__isnull=True).update(
        expires_at=utcnow() + timedelta(days=days)
    )
