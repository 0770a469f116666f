"""Logs of every process: one format for every logger, the request's context on
each line, and no credential in any of them.

PARTNERHUB_LOG_FORMAT=json writes one JSON object a line (time in ISO 8601 UTC,
level, logger, message, and when known request_id, partner_id and operation);
`text` (the default) writes plain lines for a terminal with the same fields.
Every record goes through structlog's processors, whoever logs it: the
service's own loggers, uvicorn's error and access logs, arq's, httpx's.

The request context lives in contextvars (structlog.contextvars): the RequestId
middleware binds the request id, BearerAuth the partner id once the token signs
someone in, the GraphQL layer (schema/metrics.py) the operation name. Any line
logged while the request is served, uvicorn's access line included, carries
them.

Bearer tokens, API tokens, JWTs and the signature of a download URL are
redacted from every line (the message, an exception's text, any field).
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from app.auth import TOKEN_PREFIX
from app.config import Settings

# Demo admins' tokens (app/demo.py demo_token) are API tokens too.
DEMO_TOKEN_PREFIX = "phd_"
# The request's context, in this order after time, level, logger and message.
FIRST_KEYS = ("time", "level", "logger", "message", "request_id", "partner_id", "operation")

_CREDENTIALS: list[tuple[re.Pattern[str], str]] = [
    # `Authorization: Bearer <token>`, however it got into a message.
    (re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+"), r"\1\2REDACTED"),
    # JWTs (OIDC access tokens): three base64url parts, the first a JSON header.
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "REDACTED-JWT"),
    # API tokens (app/auth.py new_token) and the demo admins' (app/demo.py).
    (re.compile(rf"\b({TOKEN_PREFIX}|{DEMO_TOKEN_PREFIX})[A-Za-z0-9_-]+"), r"\1REDACTED"),
    # A signed download URL's signature, and credentials put in a query string.
    (
        re.compile(
            r"(?i)([?&;\s]"
            r"(?:signature|token|access_token|auth|authorization|api_key|key|secret)=)"
            r"[^&;\s\"']*"
        ),
        r"\1REDACTED",
    ),
    # A webhook's signature header (`X-PartnerHub-Signature: sha256=...`).
    (re.compile(r"(?i)(signature[\"']?\s*:\s*[\"']?)[^\s\"',;}]+"), r"\1REDACTED"),
]


def redact(text: str) -> str:
    """`text` with every bearer token, API token, JWT and URL signature replaced
    by REDACTED. A download URL keeps its `expires` (it is no credential, and it
    tells why a link was refused)."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


def redact_credentials(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """structlog processor: redact() on every text field of a line."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def _first_keys(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Time, level, logger, message and the request's context first, as people read them."""
    ordered = {key: event.pop(key) for key in FIRST_KEYS if key in event}
    ordered.update(event)
    return ordered


def _shared_processors() -> list[Processor]:
    """What every line gets, whether a structlog or a standard logger wrote it."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        structlog.processors.StackInfoRenderer(),
    ]


def formatter(log_format: str = "text", process_wide: bool = False) -> logging.Formatter:
    """The logging.Formatter of every handler (also named in the dictConfig that
    uvicorn applies in each of its worker processes). `process_wide` also sets
    up what a dictConfig cannot: structlog's own loggers and Python warnings."""
    if process_wide:
        _configure_structlog()
        logging.captureWarnings(True)
    renderer: Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        rename: list[Processor] = [structlog.processors.EventRenamer("message")]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=False,
            timestamp_key="time",
            exception_formatter=structlog.dev.plain_traceback,
            pad_event_to=0,
            sort_keys=False,
        )
        rename = []
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_credentials,
            *rename,
            _first_keys,
            renderer,
        ],
    )


def _configure_structlog() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _level(name: str) -> int:
    level = logging.getLevelName(name.upper())
    if isinstance(level, int):
        return level
    return 5 if name.lower() == "trace" else logging.INFO  # uvicorn's TRACE


def logging_config(settings: Settings, level: str | None = None) -> dict[str, Any]:
    """A logging.config.dictConfig for this process and uvicorn's workers: one
    handler on stderr with formatter(), for the root logger and uvicorn's own
    loggers alike (theirs propagate to it)."""
    chosen = _level(level or settings.log_level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "partnerhub": {
                "()": "app.logs.formatter",
                "log_format": settings.log_format,
                "process_wide": True,
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "partnerhub",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": chosen},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": chosen}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq")
        },
    }


def configure_logging(settings: Settings, *, quiet: bool = False) -> None:
    """Set up logging for this process, once a command (app/cli.py). `serve` and
    `worker` log at PARTNERHUB_LOG_LEVEL; the other commands are `quiet`
    (WARNING or above), so that their own output stays what a user reads."""
    level = settings.log_level
    if quiet and _level(level) < logging.WARNING:
        level = "warning"
    logging.config.dictConfig(logging_config(settings, level))
