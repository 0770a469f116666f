"""Reports written by PostgreSQL itself: the report's SELECT makes every cell's
final text (the columns the template asks for, in its order, with the formula
rule of report_csv.py) and `COPY (…) TO STDOUT WITH (FORMAT csv)` streams the
CSV out, so Python only fixes the line ends, counts rows, hashes and stores.

The file is byte for byte what the Python writer (`encode_rows`, SQLite) makes
of the same rows:
- a missing or empty cell is written as nothing: COPY writes NULL as nothing
  and an empty text as `""`, so empty texts become NULL; but a row of a single
  empty cell is `""`, as Python's csv writes it (an empty line would be no row);
- quoting: both quote a cell holding a comma, a quote, CR or LF and double its
  quotes (and a single-cell row of exactly `\\.`, see report_csv.END_OF_DATA);
- line ends: COPY ends rows with LF, the report with CRLF; `RowEnds` turns
  row ends (not line breaks inside quoted cells) into CRLF and counts them.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.report_columns import ReportDefinition
from app.domain.report_csv import safe_cell_sql
from app.domain.report_rows import CopyCell, RowQuery
from app.domain.sql import Sql

QUOTE = b'"'
LF = b"\n"
CRLF = b"\r\n"


def cell_sql(cell: CopyCell, alone: bool) -> str:
    """The SQL of one output cell; `alone` when it is the row's only cell."""
    if cell.free_text:
        text = safe_cell_sql(cell.sql, empty_as_null=not alone)
    else:
        text = cell.sql
    return f"COALESCE(({text})::text, '')" if alone else text


def copy_query(query: RowQuery, definition: ReportDefinition, keys: Sequence[str]) -> Sql:
    """The SELECT whose rows are the report's cells, as text, for `keys` in order."""
    assert len(query.copy_cells) == len(definition.column_keys), definition.report_type
    cells = [query.copy_cells[definition.column_keys.index(k)] for k in keys]
    if not cells:
        raise ValueError("a report needs at least one column")
    columns = ",\n  ".join(cell_sql(c, alone=len(cells) == 1) for c in cells)
    names = ", ".join(f"c{n}" for n in range(query.width))
    # The producer's ORDER BY stays inside: a subquery with an ORDER BY is
    # scanned in that order, and the outer SELECT only computes columns.
    return Sql(f"SELECT\n  {columns}\nFROM ({query.sql.text}) AS r({names})", query.sql.params)


class RowEnds:
    """Turns COPY's CSV, piece by piece, into the report's: each row end (a LF
    outside quotes) becomes CRLF and is counted; a LF inside a quoted cell stays.
    Whether a LF is inside quotes is the parity of the quotes before it in its
    row (a quote inside a quoted cell is doubled), carried across pieces."""

    def __init__(self) -> None:
        self.rows = 0
        self._quoted = False  # inside a quoted cell at the end of the last piece
        self._open = False  # a row started and not ended yet

    def feed(self, data: bytes) -> bytes:
        if not data:
            return data
        self._open = not data.endswith(LF)
        if QUOTE not in data:
            if self._quoted:  # all of it inside one quoted cell
                self._open = True
                return data
            self.rows += data.count(LF)
            return data.replace(LF, CRLF)
        pieces = data.split(LF)
        out = []
        quoted = self._quoted
        for piece in pieces[:-1]:
            if piece.count(QUOTE) & 1:
                quoted = not quoted
            out.append(piece)
            if quoted:
                out.append(LF)
            else:
                out.append(CRLF)
                self.rows += 1
        last = pieces[-1]
        if last.count(QUOTE) & 1:
            quoted = not quoted
        out.append(last)
        self._quoted = quoted
        self._open = self._open or quoted
        return b"".join(out)

    def finish(self) -> int:
        """The number of rows; an error when the CSV stopped inside a row."""
        if self._quoted or self._open:
            raise ValueError("the CSV from COPY ended inside a row")
        return self.rows
