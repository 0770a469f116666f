"""What the service accepts as text from a client: no lone surrogates, no
control characters, no noncharacters; line breaks and tabs only where a value
may span several lines. Written once for GraphQL arguments (schema/input_checks.py)
and ingest lines (app/domain/ingest.py)."""

from __future__ import annotations

import re

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
_ALWAYS_REFUSED = f"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}"
_MULTI_LINE_REFUSED = re.compile(f"[{_ALWAYS_REFUSED}]")
_ONE_LINE_REFUSED = re.compile(f"[{_ALWAYS_REFUSED}\t\n\r\u2028\u2029]")


def text_fault(value: str, *, multi_line: bool = False) -> str | None:
    """Why `value` is not acceptable text, or None when it is."""
    found = (_MULTI_LINE_REFUSED if multi_line else _ONE_LINE_REFUSED).search(value)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"holds a lone surrogate ({code}), which is not a character"
    if char in "\t\n\r\u2028\u2029":
        return f"holds a line break or tab ({code}): this value is a single line"
    if ord(char) <= 0x9F:
        return f"holds a control character ({code})"
    return f"holds a noncharacter ({code})"
