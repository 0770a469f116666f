"""Global opaque ids: `base64url("<TypeName>:<primary key>")`.

Clients must treat them as opaque. Decoding never raises: a malformed id, or
one naming another type, reads as "no such object".
"""

from __future__ import annotations

import base64
import binascii

MAX_ID_LENGTH = 200


def encode_global_id(type_name: str, pk: int) -> str:
    raw = f"{type_name}:{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, primary key), or None when the id is not one of ours."""
    if not isinstance(global_id, str) or not 0 < len(global_id) <= MAX_ID_LENGTH:
        return None
    padded = global_id + "=" * (-len(global_id) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, pk = raw.partition(":")
    if not sep or not type_name.isidentifier() or not pk.isdigit() or len(pk) > 18:
        return None
    return type_name, int(pk)


def decode_id_of(global_id: str, type_name: str) -> int | None:
    """The primary key when `global_id` names an object of `type_name`, else None."""
    decoded = decode_global_id(global_id)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]
