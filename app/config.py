"""Settings from the environment (pydantic-settings).

`DATABASE_URL` and `REDIS_URL` are read as they are named (the names every
platform uses); every other setting is `PARTNERHUB_<NAME>`. With none set,
the service runs on the embedded default: a SQLite file under `./var/` and an
embedded Valkey server with the ARQ worker in the same process.
"""

from __future__ import annotations

import os
import secrets
from email.headerregistry import Address
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def redacted_url(url: str) -> str:
    """A database or Redis URL fit for a message or a log line: its password
    replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, *parts[2:]))
    return url


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message says which and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARTNERHUB_", extra="ignore")

    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "PARTNERHUB_DATABASE_URL"),
        description="sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB; "
        "unset = sqlite://<var_dir>/partnerhub.sqlite3",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "PARTNERHUB_REDIS_URL"),
        description="redis://HOST:PORT/DB; unset = embedded Valkey with an in-process worker",
    )
    var_dir: Path = Field(default=Path("var"), description="Folder for embedded state and files")
    secret_key: str | None = Field(
        default=None,
        description="Key for signed download URLs and webhook signatures (at least 32 "
        "characters); unset = a random key kept in <var_dir>/secret.key. Set the same "
        "value on every serve and worker process in production",
    )
    control_hub_url: str = Field(
        default="https://admin.webex.com",
        description="Base URL of Control Hub, for the launch links of customers and of the "
        "partner's own organization",
    )
    expiring_soon_days: int = Field(default=30, ge=1, le=365)
    no_recent_activity_days: int = Field(default=30, ge=1, le=365)
    report_retention_days: int = Field(default=30, ge=1, le=3650)
    call_leg_retention_weeks: int = Field(
        default=26,
        ge=1,
        le=520,
        description="Weeks of call legs kept before the current one; older legs go (a whole "
        "weekly partition at a time on PostgreSQL) once their week is rolled up",
    )
    max_tags_per_customer: int = Field(default=20, ge=1, le=1000)
    download_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    public_base_url: str | None = Field(
        default=None,
        description="Base of the URLs the service hands out (signed downloads); unset = "
        "the address each request came to (webhooks then use http://127.0.0.1:8000)",
    )
    reports_dir: Path | None = Field(
        default=None, description="Folder of report files; unset = <var_dir>/reports"
    )
    s3_bucket: str | None = Field(
        default=None, description="Keep report files in this S3 bucket instead of reports_dir"
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store; unset = AWS S3"
    )
    s3_region: str | None = Field(default=None, description="Region of the bucket")
    s3_prefix: str = Field(default="reports/", description="Key prefix of report objects")
    s3_access_key_id: str | None = Field(
        default=None, description="unset = the AWS default chain (AWS_ACCESS_KEY_ID, roles, ...)"
    )
    s3_secret_access_key: str | None = Field(default=None)
    report_chunk_rows: int = Field(
        default=5000,
        ge=100,
        le=100_000,
        description="Rows a report reads from the database at once",
    )
    job_timeout_seconds: int = Field(
        default=3600,
        ge=5,
        le=24 * 3600,
        description="A job (a report, a rollup) running longer is stopped (a report's "
        "try then counts as failed and is queued again)",
    )
    webhook_retry_base_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="First retry delay of a failed webhook; it doubles on each of the 5 tries",
    )
    email_link_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        le=31 * 24 * 3600,
        description="Lifetime of the signed download link in the e-mail a scheduled report's "
        "recipients get when a run succeeds",
    )
    email_retry_base_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="First retry delay of an e-mail the SMTP server did not take; it doubles "
        "on each of the 5 tries",
    )
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server that sends the e-mails of scheduled reports; unset = each "
        "message is written as a .eml file under <var_dir>/mail and logged",
    )
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the SMTP server; unset = 25 (none), 587 (starttls) or 465 (tls)",
    )
    smtp_username: str | None = Field(
        default=None, description="User name on the SMTP server; unset = no authentication"
    )
    smtp_password: str | None = Field(default=None, description="Password on the SMTP server")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="`starttls`: plain connection upgraded with STARTTLS (required); `tls`: "
        "TLS from the first byte (SMTPS); `none`: no encryption (a local relay only)",
    )
    smtp_sender: str = Field(
        default="partnerhub@localhost",
        description="From address of the e-mails (an address, or `Name <address>`)",
    )
    max_query_cost: int = Field(
        default=50_000,
        ge=10,
        le=10_000_000,
        description="Highest static cost of one GraphQL operation (README: query cost); "
        "a costlier document is refused with MAX_COST_EXCEEDED before it runs",
    )
    throttle_capacity: int = Field(
        default=100_000,
        ge=10,
        le=100_000_000,
        description="Cost points each viewer's bucket holds (shared by every API process "
        "through Redis); an operation costing more than what is available is THROTTLED",
    )
    throttle_restore_rate: float = Field(
        default=10_000.0,
        gt=0,
        le=10_000_000,
        description="Cost points per second restored to each viewer's bucket",
    )
    operation_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="Time limit of one GraphQL query or mutation (TIMEOUT past it); on "
        "PostgreSQL also the statement_timeout of the API processes' statements",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest /graphql request body; a larger one gets HTTP 413",
    )
    max_websocket_message_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest websocket message (graphql-transport-ws); a larger one closes "
        "the socket (1009)",
    )
    attention_trial_ending_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="An active trial ending within this many days is announced (TRIAL_ENDING)",
    )
    attention_quality_rise_points: float = Field(
        default=5.0,
        gt=0,
        le=100,
        description="A customer's share of poor-quality calls rising by at least this many "
        "percentage points week over week is announced (CALL_QUALITY_DECLINING)",
    )
    attention_retention_days: int = Field(
        default=90, ge=1, le=3650, description="Attention events are kept this many days"
    )
    attention_webhooks_per_partner: int = Field(
        default=10, ge=1, le=1000, description="Most webhook subscriptions a partner may have"
    )
    attention_webhook_max_attempts: int = Field(
        default=6,
        ge=1,
        le=20,
        description="Tries of one attention webhook delivery (doubling delays) before it fails",
    )
    attention_webhook_failures_to_disable: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="A webhook subscription whose deliveries fail this many times in a row "
        "is disabled",
    )
    attention_stream_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often an attentionEvents subscription looks for new events at most",
    )
    webhook_allow_hosts: str = Field(
        default="",
        description="Comma-separated host names or IP addresses that webhooks may reach "
        "although they are loopback or private (local test receivers); empty = none",
    )
    api_token_ttl_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Lifetime of a new API token unless its creator sets another",
    )
    websocket_auth_recheck_seconds: float = Field(
        default=30.0,
        gt=0,
        le=60,
        description="How often an open websocket re-checks its token (revoked or expired: closed)",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated browser origins (https://app.example.com) allowed to "
        "call the API and open its websocket; the embedded default also allows "
        "http://localhost and http://127.0.0.1 on any port",
    )
    trusted_documents_file: Path | None = Field(
        default=None,
        description="Manifest of trusted documents (JSON: sha256 -> document, as GraphQL "
        "Code Generator or Relay write it); viewers signed in through OIDC may run only "
        "these. Unset = any document",
    )
    graphiql: bool = Field(
        default=True, description="Serve the GraphiQL page at GET /graphql (false in production)"
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer of the OIDC access tokens an SPA signs in with (its discovery "
        "document names the JWKS); unset = API tokens only",
    )
    oidc_audience: str | None = Field(
        default=None, description="Audience (`aud`) the OIDC access tokens must carry"
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL of the issuer; unset = from its discovery document"
    )
    oidc_email_claim: str = Field(
        default="email", description="Claim of the OIDC token that names the admin (its email)"
    )
    report_lease_seconds: int = Field(
        default=30,
        ge=3,
        le=3600,
        description="A running report holds a lease this long, renewed while it runs; "
        "a report whose lease lapsed (its worker died) is queued again by the next tick",
    )
    report_lease_renew_seconds: int = Field(
        default=10,
        ge=1,
        le=1200,
        description="How often a running report renews its lease (below report_lease_seconds)",
    )
    worker_drain_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="On SIGTERM a worker takes no new job and lets running ones finish this "
        "long; a job still running then is queued again without counting as a failed try",
    )
    worker_max_jobs: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Jobs one `partnerhub worker` process runs at once; its PostgreSQL pool "
        "holds two connections a job and two more (a report's reads and its lease renewals, "
        "the ticks), unless DATABASE_URL sets maxsize",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: one JSON object a line (time, level, request id, partner id, "
        "operation name); `text`: plain lines for a terminal",
    )
    metrics_token: str | None = Field(
        default=None,
        description="When set, GET /metrics needs `Authorization: Bearer <this>`; unset = "
        "/metrics is open (keep it off the public internet at the proxy)",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which `partnerhub worker` serves its own /metrics; unset = none",
    )
    log_level: str = Field(default="info")

    @model_validator(mode="after")
    def _default_database_in_var_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite://{self.var_dir / 'partnerhub.sqlite3'}"
        return self

    @model_validator(mode="after")
    def _lease_renewed_before_it_lapses(self) -> Settings:
        if self.report_lease_renew_seconds * 2 > self.report_lease_seconds:
            raise ValueError(
                f"PARTNERHUB_REPORT_LEASE_RENEW_SECONDS ({self.report_lease_renew_seconds}) "
                f"must be at most half of PARTNERHUB_REPORT_LEASE_SECONDS "
                f"({self.report_lease_seconds}), so one late renewal does not lose the lease"
            )
        return self

    @model_validator(mode="after")
    def _bucket_holds_the_costliest_operation(self) -> Settings:
        if self.throttle_capacity < self.max_query_cost:
            raise ValueError(
                f"PARTNERHUB_THROTTLE_CAPACITY ({self.throttle_capacity}) is below "
                f"PARTNERHUB_MAX_QUERY_COST ({self.max_query_cost}): an operation at the "
                "maximum cost could never run"
            )
        return self

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if len(value) < 32:
            raise ValueError("is too short: use at least 32 random characters")
        return value

    @field_validator("smtp_host", "smtp_username", "smtp_password")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("smtp_sender")
    @classmethod
    def _check_smtp_sender(cls, value: str) -> str:
        name, address = parseaddr(value)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError(f"{value!r} is not an e-mail address (write a@b or Name <a@b>)")
        try:
            Address(display_name=name, addr_spec=address)
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{value!r} is not an e-mail address: {exc}") from None
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_s3_endpoint(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value:
            return value
        scheme = urlsplit(value).scheme
        if scheme not in DATABASE_SCHEMES or "://" not in value:
            raise ValueError(
                f"DATABASE_URL {value!r} is not a database URL: use sqlite://PATH "
                "or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        if scheme != "sqlite":
            parts = urlsplit(value)
            if not parts.path.strip("/"):
                raise ValueError(
                    f"DATABASE_URL {value!r} names no database: "
                    "use postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in REDIS_SCHEMES or "://" not in value:
            raise ValueError(
                f"REDIS_URL {value!r} is not a Redis URL: use redis://HOST:PORT/DB "
                "(or leave it unset for the embedded Valkey server)"
            )
        return value

    @property
    def is_sqlite(self) -> bool:
        return urlsplit(self.database_url).scheme == "sqlite"

    @property
    def embedded_redis(self) -> bool:
        """True when no REDIS_URL is set: serve starts Valkey and runs the worker in-process."""
        return self.redis_url is None

    @property
    def webhook_base_url(self) -> str:
        """Base of the download URLs in webhooks, sent by workers (no request to read)."""
        return self.public_base_url or "http://127.0.0.1:8000"

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",")):
            if not origin:
                continue
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path
                or parts.query
                or parts.fragment
                or origin.endswith("/")
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port] "
                    "(e.g. https://app.example.com), no path"
                )
        return value

    @property
    def allowed_origins(self) -> list[str]:
        """PARTNERHUB_CORS_ORIGINS as a list of exact origins."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def is_embedded_default(self) -> bool:
        """SQLite and the embedded Valkey: the local set-up of `make run`."""
        return self.is_sqlite and self.embedded_redis

    @property
    def webhook_allowed_hosts(self) -> frozenset[str]:
        """PARTNERHUB_WEBHOOK_ALLOW_HOSTS as a set of lower-cased names and addresses."""
        return frozenset(
            h.strip().lower().strip("[]") for h in self.webhook_allow_hosts.split(",") if h.strip()
        )

    @property
    def mail_folder(self) -> Path:
        """Where e-mails go as .eml files while no SMTP server is set (PARTNERHUB_SMTP_HOST)."""
        return self.var_dir / "mail"

    @property
    def smtp_port_or_default(self) -> int:
        """PARTNERHUB_SMTP_PORT, or the usual port of PARTNERHUB_SMTP_SECURITY."""
        if self.smtp_port is not None:
            return self.smtp_port
        return {"none": 25, "starttls": 587, "tls": 465}[self.smtp_security]

    @property
    def report_folder(self) -> Path:
        return self.reports_dir or self.var_dir / "reports"

    def signing_key(self) -> str:
        """PARTNERHUB_SECRET_KEY, or a random key created once under var_dir."""
        if self.secret_key:
            return self.secret_key
        return _key_file(self.var_dir.resolve() / "secret.key")

    def sqlite_path(self) -> Path:
        return Path(self.database_url.split("://", 1)[1])


@lru_cache(maxsize=8)
def _key_file(path: Path) -> str:
    """The key kept in `path`, created (random, mode 0600) on first use; read once
    a process, since every download handle needs it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def known_variables() -> set[str]:
    return {f"PARTNERHUB_{name.upper()}" for name in Settings.model_fields}


def load_settings() -> Settings:
    """Read the settings; a bad value, or a PARTNERHUB_ variable that names no
    setting (a typo would otherwise be ignored), raises SettingsError."""
    unknown = sorted(
        name
        for name in os.environ
        if name.startswith("PARTNERHUB_") and name not in known_variables()
    )
    if unknown:
        raise SettingsError(
            f"{unknown[0]} is not a setting: the PARTNERHUB_ settings are "
            f"{', '.join(sorted(known_variables()))}"
        )
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{name.upper()}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
