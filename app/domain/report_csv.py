"""CSV text of a report: UTF-8, a header row of column titles, RFC 4180 quoting
(CRLF line ends, quotes doubled), and cells that a spreadsheet would run as a
formula made inert.

The formula rule is written once here, as Python (`safe_cell`, the SQLite
writer) and as the PostgreSQL expression that applies the same rule inside a
report's SELECT (`safe_cell_sql`, reports written by COPY): both come from
FORMULA_STARTS and NUMBER_PATTERN.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A number, as a cell that starts like a formula may still be (e.g. "-1.5",
# "+1e5"): an optional sign, digits with an optional fraction (or a fraction
# alone), an optional exponent; ASCII digits only. Stricter than Python's
# float(), which also takes "-inf", "-nan", "1_0" and surrounding whitespace:
# those are prefixed like any other formula-like text. Written without `?`
# (every `?` of a statement is a placeholder, app/db.py), quotes or backslashes,
# so that it reads the same inside a SQL string literal.
NUMBER_PATTERN = "[+-]{0,1}([0-9]+([.][0-9]*){0,1}|[.][0-9]+)([eE][+-]{0,1}[0-9]+){0,1}"
_NUMBER = re.compile(NUMBER_PATTERN)
assert not set("?'\\") & set(NUMBER_PATTERN)

# A row of one cell that is exactly this is quoted: PostgreSQL's COPY quotes it
# (alone on a line it once meant "end of data"), and both writers agree.
END_OF_DATA = "\\."


def is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def safe_cell(text: str) -> str:
    """Prefix `'` to a cell that starts like a formula and is not a number
    (CSV formula injection: OWASP's advice)."""
    if text.startswith(FORMULA_STARTS) and not is_number(text):
        return "'" + text
    return text


def safe_cell_sql(expr: str, empty_as_null: bool = False) -> str:
    """PostgreSQL: the text expression `expr` with `safe_cell`'s rule applied
    (NULL stays NULL; with `empty_as_null`, so does an empty text). `expr` is
    evaluated several times: pass a column, not a computation. Text that starts
    past every formula character (most text: letters) is settled by the first
    test, and only text that starts like a formula meets the regular expression."""
    codes = [ord(c) for c in FORMULA_STARTS]
    otherwise = f"NULLIF({expr}, '')" if empty_as_null else expr
    return (
        f"CASE WHEN ascii({expr}) > {max(codes)} THEN {expr}"
        f" WHEN ascii({expr}) IN ({', '.join(map(str, codes))})"
        f" AND {expr} !~ '^({NUMBER_PATTERN})$' THEN '''' || {expr}"
        f" ELSE {otherwise} END"
    )


def encode_rows(rows: Sequence[Sequence[str]]) -> bytes:
    """Rows as CSV bytes (every cell made safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        cells = [safe_cell(c) for c in row]
        if len(cells) == 1 and cells[0] == END_OF_DATA:
            buffer.write(f'"{END_OF_DATA}"\r\n')
        else:
            writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")
