"""The house rule of DESIGN.md: the service core (app/) imports neither the
GraphQL layer nor the workers; only the composition root wires them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = {"app/http.py", "app/cli.py"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_app_core_imports_neither_schema_nor_workers() -> None:
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in COMPOSITION_ROOT:
            continue
        wrong = imported_packages(path) & {"schema", "workers"}
        if wrong:
            offenders.append(f"{relative} imports {sorted(wrong)}")
    assert offenders == []


def test_workers_do_not_import_the_graphql_layer() -> None:
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "workers").rglob("*.py"))
        if "schema" in imported_packages(path)
    ]
    assert offenders == []
