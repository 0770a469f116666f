"""CSV text of a report: UTF-8, a header row of column titles, RFC 4180 quoting
(CRLF line ends, quotes doubled), and cells that a spreadsheet would run as a
formula made inert."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def safe_cell(text: str) -> str:
    """Prefix `'` to a cell that starts like a formula and is not a number
    (CSV formula injection: OWASP's advice)."""
    if text.startswith(FORMULA_STARTS) and not is_number(text):
        return "'" + text
    return text


def encode_rows(rows: Sequence[Sequence[str]]) -> bytes:
    """Rows as CSV bytes (every cell made safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([safe_cell(c) for c in row] for row in rows)
    return buffer.getvalue().encode("utf-8")
