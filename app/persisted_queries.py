"""Persisted queries: Apollo's automatic persisted queries (APQ) kept in Redis,
and trusted documents (a manifest of hash -> document) for browser sign-ins.

APQ: a client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": H}`
without the query; an unknown H answers PERSISTED_QUERY_NOT_FOUND, the client
sends the query with H, the service checks that H is the query's sha256,
stores it and runs it; from then on H alone runs it (every API process reads
the same Redis).

Trusted documents: the manifest GraphQL Code Generator's persisted documents
and Relay write, a JSON object of sha256 hash to document text. Operations of
viewers who signed in through OIDC (the SPA) may run only its documents, named
by hash or sent as identical text; API-token integrations may run any document.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.optional_redis import OptionalRedis

log = logging.getLogger("partnerhub.persisted_queries")

KEY_PREFIX = "partnerhub:apq:"
KEEP_SECONDS = 30 * 24 * 3600  # a stored query lives 30 days after its last registration
MAX_QUERY_BYTES = 256 * 1024


def document_hash(document: str) -> str:
    """The sha256 (hex) of a document's UTF-8 text, as APQ and manifests name it."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def is_sha256_hex(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 64
        and all(c in "0123456789abcdef" for c in value.lower())
    )


class PersistedQueryError(ValueError):
    """A persisted-query request the client must fix; `code` goes in extensions.code."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class PersistedQueryRequest:
    """What `extensions.persistedQuery` asks for."""

    sha256: str


def persisted_query_of(extensions: dict[str, Any] | None) -> PersistedQueryRequest | None:
    """The APQ request in a request's extensions, or None; malformed: an error."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    given = extensions["persistedQuery"]
    if not isinstance(given, dict) or given.get("version") != 1:
        raise PersistedQueryError(
            'extensions.persistedQuery must be {"version": 1, "sha256Hash": "<hex>"}.',
            "PERSISTED_QUERY_INVALID",
        )
    sha = given.get("sha256Hash")
    if not is_sha256_hex(sha):
        raise PersistedQueryError(
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal characters.",
            "PERSISTED_QUERY_INVALID",
        )
    return PersistedQueryRequest(sha.lower())  # type: ignore[union-attr]


class QueryStore:
    """Stored APQ documents in Redis. Redis down: nothing is found (the client
    sends the full query again) and nothing is stored; one warning an outage."""

    def __init__(self, redis_url: str) -> None:
        self.redis = OptionalRedis(redis_url, "persisted queries", log)

    async def get(self, sha256: str) -> str | None:
        _, found = await self.redis.run(lambda redis: redis.get(KEY_PREFIX + sha256))
        return found.decode("utf-8") if found is not None else None

    async def put(self, sha256: str, document: str) -> None:
        await self.redis.run(
            lambda redis: redis.set(KEY_PREFIX + sha256, document.encode(), ex=KEEP_SECONDS)
        )

    async def close(self) -> None:
        await self.redis.close()


class ManifestError(ValueError):
    """A trusted-documents manifest that cannot be used; the message says why."""


class TrustedDocuments:
    """The documents of a manifest, by hash and by text."""

    def __init__(self, documents: dict[str, str]) -> None:
        self.by_hash = documents
        self.texts = frozenset(documents.values())

    @classmethod
    def load(cls, path: Path) -> TrustedDocuments:
        """Read a manifest: a JSON object of sha256 hash -> document text, each key
        the sha256 of its document (GraphQL Code Generator and Relay write them so)."""
        try:
            raw = orjson.loads(path.read_bytes())
        except OSError as exc:
            raise ManifestError(f"cannot read the manifest {path}: {exc.strerror}") from None
        except orjson.JSONDecodeError as exc:
            raise ManifestError(f"the manifest {path} is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ManifestError(f"the manifest {path} must be a JSON object of hash -> document")
        documents: dict[str, str] = {}
        for key, document in raw.items():
            if not isinstance(document, str) or not document.strip():
                raise ManifestError(f"the manifest entry {key!r} is not a document (a string)")
            if not is_sha256_hex(key):
                raise ManifestError(f"the manifest key {key!r} is not a sha256 hash (64 hex)")
            if document_hash(document) != key.lower():
                raise ManifestError(f"the manifest key {key} is not the sha256 of its document")
            documents[key.lower()] = document
        return cls(documents)

    def document(self, sha256: str) -> str | None:
        return self.by_hash.get(sha256)

    def allows(self, document: str) -> bool:
        return document in self.texts


async def resolve_document(
    query: str | None,
    extensions: dict[str, Any] | None,
    store: QueryStore,
    trusted: TrustedDocuments | None,
    *,
    trusted_only: bool,
) -> str | None:
    """The document a request runs: its own text, or the one its APQ hash names
    (stored in Redis, or in the trusted manifest). A document outside the
    manifest is refused when `trusted_only` (an OIDC sign-in) and a manifest is set."""
    persisted = persisted_query_of(extensions)
    if persisted is not None:
        if query is None:
            query = (trusted.document(persisted.sha256) if trusted else None) or await store.get(
                persisted.sha256
            )
            if query is None:
                raise PersistedQueryError(
                    "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", status=200
                )
        elif document_hash(query) != persisted.sha256:
            raise PersistedQueryError(
                "The sha256Hash of extensions.persistedQuery is not the sha256 of the query.",
                "PERSISTED_QUERY_HASH_MISMATCH",
            )
        elif len(query.encode("utf-8")) <= MAX_QUERY_BYTES:
            await store.put(persisted.sha256, query)
    if trusted_only and trusted is not None and query is not None and not trusted.allows(query):
        raise PersistedQueryError(
            "This document is not one of the trusted documents of this service: browser "
            "sign-ins run only the documents of its manifest.",
            "DOCUMENT_NOT_TRUSTED",
            status=403,
        )
    return query
