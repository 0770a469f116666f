"""Signed download URLs of report files: an HMAC (itsdangerous, SHA-256) over
the report id and the expiry time, checked by the download endpoint. The URL is
the only credential, so it carries nothing else and expires.

The check is strict: `expires` is the exact decimal the URL was signed with
(ASCII digits, no sign, no leading zero), and the signature must be the very
string we would sign, compared in constant time; a signature that merely
decodes to the same bytes (e.g. other unused bits in its last base64
character) is refused."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from itsdangerous import Signer

SALT = "partnerhub.report-download"
# Unix seconds as `sign_download` writes them: at most 12 digits (year 33658).
_EXPIRES = re.compile(r"[1-9][0-9]{0,11}")


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


def _signer(key: str) -> Signer:
    return Signer(key, salt=SALT, digest_method=hashlib.sha256)


def _message(report_id: int, expires: int) -> bytes:
    return f"{report_id}:{expires}".encode()


def sign_download(
    key: str, base_url: str, report_id: int, now: datetime, ttl_seconds: int
) -> SignedUrl:
    expires_at = (now + timedelta(seconds=ttl_seconds)).replace(microsecond=0)
    expires = int(expires_at.timestamp())
    signature = _signer(key).get_signature(_message(report_id, expires)).decode()
    query = urlencode({"expires": expires, "signature": signature})
    return SignedUrl(f"{base_url.rstrip('/')}/reports/{report_id}/download?{query}", expires_at)


class DownloadRefused(Exception):
    """Why a download URL is refused; the message is written for the client."""


def check_download(
    key: str, report_id: int, expires: str | None, signature: str | None, now: datetime
) -> None:
    """Raise DownloadRefused unless the URL was signed by us for this report and
    has not expired."""
    if not expires or not signature or not _EXPIRES.fullmatch(expires):
        raise DownloadRefused("This download link is incomplete or altered.")
    expected = _signer(key).get_signature(_message(report_id, int(expires)))
    # Compared as bytes: compare_digest refuses str holding non-ASCII characters.
    if not hmac.compare_digest(signature.encode("utf-8", "surrogatepass"), expected):
        raise DownloadRefused("This download link is not valid (altered or for another report).")
    if int(expires) <= now.timestamp():
        raise DownloadRefused(
            "This download link has expired: ask the API for a fresh one (Report.download)."
        )
