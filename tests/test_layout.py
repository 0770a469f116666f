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


# ------------------------------------------------ the one frame of every mutation
#
# app/domain/mutations.py runs every mutation: setup gate and role check (a
# MutationRule of access.py), one transaction, one audit event. Nothing else
# writes audit events, and in app/domain nothing else opens a transaction except
# the named writers below, which are not mutations.

FRAME = "app/domain/mutations.py"
FRAME_FUNCTIONS = {"run_mutation", "run_prepared_mutation"}
# (module, function) -> why it opens its own transaction without the frame.
TRANSACTIONS_OUTSIDE_THE_FRAME = {
    ("app/domain/trials.py", "align_trial_subscriptions"): "daily job, no viewer",
    ("app/domain/trials.py", "expire_due_trials"): "daily job, no viewer",
    ("app/domain/report_templates.py", "ensure_default_templates"): "install step (migrate)",
    ("app/domain/resources.py", "ensure_reference_resources"): "install step (migrate)",
    ("app/domain/report_schedules.py", "_run_schedule"): "scheduler queuing a due run",
    ("app/domain/calling_rollup.py", "rollup_week"): "rollup job, no viewer",
    ("app/domain/call_leg_partitions.py", "create_week_partition"): "partition upkeep, DDL",
    ("app/domain/call_leg_partitions.py", "_drop_partition"): "partition upkeep, DDL",
    # The NDJSON ingest endpoint (POST /ingest, `partnerhub ingest`): no GraphQL
    # mutation, its own error shape (HTTP status), not audited (SPEC: integrations).
    ("app/domain/ingest.py", "ingest"): "ingest endpoint, not a GraphQL mutation",
}


AUDIT_EVENT_WRITES = {
    f"AuditEvent.{method}"
    for method in ("create", "bulk_create", "get_or_create", "update_or_create")
}


def _called_name(call: ast.Call) -> str | None:
    """`f(...)` -> "f", `x.f(...)` -> "x.f"."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return None


def _calls_by_function(tree: ast.AST) -> list[tuple[str, str]]:
    """(innermost enclosing top-level function, called name) for every call."""
    found: list[tuple[str, str]] = []
    for top in ast.iter_child_nodes(tree):
        owner = top.name if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else "<module>"
        for node in ast.walk(top):
            if isinstance(node, ast.Call) and (name := _called_name(node)):
                found.append((owner, name))
    return found


def _imports_record_from_audit(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "app.domain.audit"
        and any(alias.name == "record" for alias in node.names)
        for node in ast.walk(tree)
    )


def _python_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


def test_only_the_mutation_frame_writes_audit_events() -> None:
    offenders = []
    for path in _python_files("app", "schema", "workers"):
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())
        if relative != FRAME and _imports_record_from_audit(tree):
            offenders.append(f"{relative} imports record from app.domain.audit")
        for owner, name in _calls_by_function(tree):
            writes = name == "audit.record" or (
                name in AUDIT_EVENT_WRITES and relative != "app/domain/audit.py"
            )
            if writes and relative != FRAME:
                offenders.append(f"{relative}:{owner} calls {name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "insert into audit_event" in " ".join(node.value.lower().split())
            ):
                offenders.append(f"{relative}:{node.lineno} inserts into audit_event in SQL")
    assert offenders == []


def test_no_mutation_opens_its_own_transaction() -> None:
    offenders, allowed_seen = [], set()
    for path in _python_files("app/domain", "schema"):
        relative = path.relative_to(ROOT).as_posix()
        if relative == FRAME:
            continue
        for owner, name in _calls_by_function(ast.parse(path.read_text())):
            if name.split(".")[-1] != "in_transaction":
                continue
            if (relative, owner) in TRANSACTIONS_OUTSIDE_THE_FRAME:
                allowed_seen.add((relative, owner))
            else:
                offenders.append(f"{relative}:{owner} opens a transaction")
    assert offenders == []
    # An allow-list entry whose function no longer opens a transaction goes.
    assert allowed_seen == set(TRANSACTIONS_OUTSIDE_THE_FRAME)


def _domain_functions_called(resolver: object) -> list[object]:
    """The app.domain functions a resolver calls (directly or in its lambdas)."""
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(resolver))  # type: ignore[arg-type]
    namespace = resolver.__globals__  # type: ignore[attr-defined]
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not (name := _called_name(node)):
            continue
        head, _, attr = name.partition(".")
        target = namespace.get(head)
        if attr:
            target = getattr(target, attr, None)
        module = getattr(target, "__module__", "") or ""
        if callable(target) and module.startswith("app.domain."):
            found.append(target)
    return found


def _runs_in_the_frame(function: object) -> bool:
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    return any(
        isinstance(node, ast.Call) and _called_name(node) in FRAME_FUNCTIONS
        for node in ast.walk(tree)
    )


def test_every_mutation_field_runs_in_the_frame() -> None:
    """Each field of the Mutation type resolves by calling a domain function that
    runs its work through app/domain/mutations.py (and no resolver does the
    frame's work itself: see the two tests above)."""
    from schema.root import Mutation

    fields = Mutation.__strawberry_definition__.fields  # type: ignore[attr-defined]
    assert len(fields) >= 26
    offenders = []
    for field in fields:
        resolver = field.base_resolver.wrapped_func
        called = _domain_functions_called(resolver)
        framed = [f for f in called if _runs_in_the_frame(f)]
        if not framed:
            names = [f"{f.__module__}.{f.__qualname__}" for f in called] or "no domain function"
            offenders.append(f"{field.python_name}: {resolver.__qualname__} calls {names}")
    assert offenders == []
