"""What the public contract still misses in the served schema, item by item.

`../shared/contract/check.py` prints one line per breaking difference; a type
that is missing altogether is one line. This module runs that script and
expands each missing type into the type and every field or enum value the
contract gives it, so the pending list can shrink one item at a time.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

from graphql import GraphQLEnumType, GraphQLSchema, build_schema

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_DIR = ROOT.parent / "shared" / "contract"
PENDING_FILE = ROOT / "tests" / "contract_pending.txt"

_PATTERNS = [
    ("TYPE_REMOVED", re.compile(r"^(\w+) was removed\.$"), "{0}"),
    (
        "TYPE_REMOVED",
        re.compile(r"^Standard scalar (\w+) was removed because it is not referenced anymore\.$"),
        "{0}",
    ),
    ("FIELD_REMOVED", re.compile(r"^Field (\w+)\.(\w+) was removed\.$"), "{0}.{1}"),
    (
        "VALUE_REMOVED_FROM_ENUM",
        re.compile(r"^(\w+) was removed from enum type (\w+)\.$"),
        "{1}.{0}",
    ),
    (
        "ARG_REMOVED",
        re.compile(r"^Argument (\w+)\.(\w+)\((\w+):\) was removed\.$"),
        "{0}.{1}({2}:)",
    ),
    ("ARG_REMOVED", re.compile(r"^(\w+)\.(\w+) arg (\w+) was removed\.$"), "{0}.{1}({2}:)"),
]


def served_sdl() -> str:
    from schema import schema

    return schema.as_str()


def run_check(sdl: str) -> tuple[int, list[str]]:
    """Exit code and output lines of the contract's own check script."""
    proc = subprocess.run(
        [sys.executable, str(CONTRACT_DIR / "check.py"), "-"],
        input=sdl,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if not lines or not lines[-1].startswith("contract:"):
        raise RuntimeError(
            f"check.py did not finish (exit {proc.returncode}): {proc.stderr[-2000:]}"
        )
    return proc.returncode, lines


@functools.cache
def contract_schema() -> GraphQLSchema:
    return build_schema((CONTRACT_DIR / "schema.graphql").read_text())


def contract_members(type_name: str) -> list[str]:
    gql_type = contract_schema().type_map[type_name]
    if isinstance(gql_type, GraphQLEnumType):
        return [f"{type_name}.{value}" for value in gql_type.values]
    fields = getattr(gql_type, "fields", None) or {}
    return [f"{type_name}.{name}" for name in fields]


def broken_items(lines: list[str]) -> tuple[set[str], list[str]]:
    """(missing contract items, break lines that are not a missing item)."""
    missing: set[str] = set()
    other: list[str] = []
    for line in lines:
        if line.startswith("contract:"):
            continue
        kind, _, description = line.partition(": ")
        for pattern_kind, pattern, template in _PATTERNS:
            match = pattern.match(description) if kind == pattern_kind else None
            if match:
                item = template.format(*match.groups())
                missing.add(item)
                if kind == "TYPE_REMOVED":
                    missing.update(contract_members(item))
                break
        else:
            other.append(line)
    return missing, other


def pending_items() -> set[str]:
    lines = PENDING_FILE.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


if __name__ == "__main__":
    # Print the current missing items (for writing the pending list by hand).
    _, out = run_check(served_sdl())
    items, others = broken_items(out)
    print("\n".join(sorted(items)))
    for line in others:
        print("# NOT A MISSING ITEM:", line, file=sys.stderr)
