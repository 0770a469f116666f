"""API tokens (FULL_ADMIN): the tokens of every admin of the partner, creating
one (its secret is in the payload, once) and revoking one. Never the secret
or its hash otherwise."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import api_tokens
from app.domain.api_tokens import ApiTokenValue
from app.domain.ids import decode_id_of, encode_global_id
from schema.admins import Admin
from schema.context import Info
from schema.node import Node, node_loader
from schema.pagination import Connection
from schema.payloads import UserError, mutate


@strawberry.type(
    name="ApiToken",
    description="A bearer token of an admin of the partner (its secret is never shown again).",
)
class ApiToken(Node):
    value: strawberry.Private[ApiTokenValue]
    label: str
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="When a request last used it (noted at most every 10 minutes)."
    )
    expires_at: datetime | None = strawberry.field(
        description="It stops working then; null: never (tokens made before tokens had a lifetime)."
    )
    revoked_at: datetime | None = strawberry.field(description="It stopped working then.")

    @classmethod
    def of(cls, token: ApiTokenValue) -> ApiToken:
        return cls(
            id=strawberry.ID(encode_global_id("ApiToken", token.id)),
            value=token,
            label=token.label,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )

    @strawberry.field(description="Neither revoked nor expired.")
    def active(self, info: Info) -> bool:
        return api_tokens.is_active(self.value, info.context.clock.now)

    @strawberry.field(description="The admin the token acts for.")
    async def owner(self, info: Info) -> Admin:
        admin = await Admin.by_id(info, self.value.admin_id)
        if admin is None:  # a token is deleted with its admin
            raise LookupError(f"the admin of API token {self.value.id} is gone")
        return admin


ApiTokenConnection = Connection[ApiToken]


@node_loader("ApiToken")
async def load_api_token(info: Info, pk: int) -> ApiToken | None:
    token = await api_tokens.get_api_token(info.context.viewer, pk)
    return ApiToken.of(token) if token else None


@strawberry.input(name="CreateApiTokenInput")
class CreateApiTokenInput:
    label: str = strawberry.field(description="1 to 100 characters, to recognise the token by.")
    expires_in_days: int | None = strawberry.field(
        default=None,
        description="Lifetime, 1 to 3650 days; default PARTNERHUB_API_TOKEN_TTL_DAYS (90).",
    )
    admin_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The admin of the partner the token acts for; default the viewer.",
    )


@strawberry.input(name="RevokeApiTokenInput")
class RevokeApiTokenInput:
    id: strawberry.ID


@strawberry.type(name="CreateApiTokenPayload")
class CreateApiTokenPayload:
    token: str | None = strawberry.field(
        description="The secret to send as `Authorization: Bearer <token>`: shown only "
        "this once (only its sha256 is stored)."
    )
    api_token: ApiToken | None
    user_errors: list[UserError]


@strawberry.type(name="RevokeApiTokenPayload")
class RevokeApiTokenPayload:
    api_token: ApiToken | None
    user_errors: list[UserError]


async def resolve_api_tokens(
    info: Info, first: int | None = None, after: str | None = None
) -> ApiTokenConnection:
    page = await api_tokens.list_api_tokens(info.context.viewer, first=first, after=after)
    return ApiTokenConnection.of(page, ApiToken.of)


async def resolve_create_api_token(info: Info, input: CreateApiTokenInput) -> CreateApiTokenPayload:
    admin_id = None if input.admin_id is None else decode_id_of(str(input.admin_id), "Admin")
    return await mutate(
        CreateApiTokenPayload,
        lambda: api_tokens.create_api_token(
            info.context.viewer,
            input.label,
            input.expires_in_days,
            admin_id,
            default_days=info.context.settings.api_token_ttl_days,
            for_viewer=input.admin_id is None,
        ),
        lambda created: {"token": created.secret, "api_token": ApiToken.of(created.token)},
    )


async def resolve_revoke_api_token(info: Info, input: RevokeApiTokenInput) -> RevokeApiTokenPayload:
    return await mutate(
        RevokeApiTokenPayload,
        lambda: api_tokens.revoke_api_token(
            info.context.viewer, decode_id_of(str(input.id), "ApiToken")
        ),
        lambda token: {"api_token": ApiToken.of(token)},
    )
