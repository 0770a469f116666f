"""Global opaque ids: `base64url("<TypeName>:<primary key>")`, unpadded.

Clients must treat them as opaque. Decoding never raises, and it accepts only
the canonical form, exactly what `encode_global_id` produces: no padding, no
character outside the base64url alphabet, no unused bits set in the last
character, an ASCII type name, and a primary key in plain ASCII decimal (no
sign, no space, no leading zero, no other script's digits) from 1 to the
largest key of that type's table (`max_pk`). Anything else, or an id naming
another type, reads as "no such object".
"""

from __future__ import annotations

import base64
import binascii
import re

MAX_ID_LENGTH = 200
# Objects are stored with PostgreSQL `integer` primary keys (IntField), so a
# larger number names nothing and must not reach a query; the few types stored
# with `bigint` keys (BigIntField) are listed.
MAX_PK = 2**31 - 1
MAX_BIG_PK = 2**63 - 1
BIG_KEY_TYPES = frozenset({"AuditEvent", "AttentionEvent", "WebhookEventDelivery"})

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_PK = re.compile(r"[1-9][0-9]*")


# base64's alphabet to base64url's (what `base64.urlsafe_b64encode` translates).
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def encode_base64url(raw: bytes) -> str:
    """Unpadded base64url: the text of global ids and cursors (base64.urlsafe_b64encode's
    text without padding, in fewer steps: it makes some 300 a page)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def decode_base64url(text: object, max_length: int) -> bytes | None:
    """The bytes of unpadded base64url text of at most `max_length` characters, or
    None. Callers compare the re-encoding with `text`, which refuses unused bits."""
    if not isinstance(text, str) or not 0 < len(text) <= max_length:
        return None
    if not _BASE64URL.fullmatch(text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def encode_global_id(type_name: str, pk: int) -> str:
    return encode_base64url(f"{type_name}:{pk}".encode())


def max_pk(type_name: str) -> int:
    """The largest primary key an object of `type_name` can have."""
    return MAX_BIG_PK if type_name in BIG_KEY_TYPES else MAX_PK


def decode_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, primary key), or None when the id is not one of ours."""
    decoded = decode_base64url(global_id, MAX_ID_LENGTH)
    if decoded is None or not decoded.isascii():
        return None
    raw = decoded.decode("ascii")
    type_name, sep, pk = raw.partition(":")
    if not sep or not _TYPE_NAME.fullmatch(type_name) or not _PK.fullmatch(pk) or len(pk) > 19:
        return None
    number = int(pk)
    if number > max_pk(type_name) or encode_global_id(type_name, number) != global_id:
        return None  # out of range, or not the canonical encoding (e.g. padding bits set)
    return type_name, number


def decode_id_of(global_id: str, type_name: str) -> int | None:
    """The primary key when `global_id` names an object of `type_name`, else None."""
    decoded = decode_global_id(global_id)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]
