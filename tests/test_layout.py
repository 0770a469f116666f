"""The house rules of DESIGN.md, checked on the source: the four arrows that must
never exist (the domain imports no schema, the models no domain, the workers no
schema, the GraphQL layer runs no query of its own), and the one frame that
runs every mutation."""

from __future__ import annotations

import ast
import itertools
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


def test_models_import_no_domain_rules() -> None:
    """app/models/ holds tables only: it imports neither the business rules nor
    the GraphQL layer nor the workers."""
    offenders = []
    for path in sorted((ROOT / "app" / "models").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                if module.split(".")[0] in {"schema", "workers"} or module.startswith(
                    ("app.domain", "app.db")
                ):
                    offenders.append(f"{path.relative_to(ROOT).as_posix()} imports {module}")
    assert offenders == []


# What a Tortoise model class or instance runs a query with.
MODEL_QUERY_METHODS = {
    "all", "annotate", "bulk_create", "bulk_update", "count", "create", "delete",
    "distinct", "exclude", "exists", "filter", "first", "get", "get_or_create",
    "get_or_none", "in_bulk", "raw", "select_for_update", "select_related",
    "update", "update_or_create", "values", "values_list", "prefetch_related",
}  # fmt: skip
# Instance methods that run a query whatever the receiver is called.
INSTANCE_QUERY_METHODS = {"save", "fetch_related", "refresh_from_db"}
# Modules through which code talks to the database directly.
DATABASE_MODULES = ("tortoise", "asyncpg", "aiosqlite", "app.db", "app.bulk")


def queries_run_by(source: str) -> list[str]:
    """Where this module of the GraphQL layer would run SQL itself: an import of a
    database module, a query method called on a model class imported from
    app.models, or an instance method that saves or loads."""
    tree = ast.parse(source)
    model_names: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(DATABASE_MODULES):
                    found.append(f"{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith(DATABASE_MODULES):
                found.append(f"{node.lineno}: imports from {node.module}")
            if node.module.startswith("app.models") and node.module != "app.models.enums":
                model_names.update(alias.asname or alias.name for alias in node.names)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, receiver = node.func.attr, node.func.value
        on_model = isinstance(receiver, ast.Name) and receiver.id in model_names
        if (on_model and method in MODEL_QUERY_METHODS) or method in INSTANCE_QUERY_METHODS:
            found.append(f"{node.lineno}: calls {ast.unparse(node.func)}")
    return found


def test_the_graphql_layer_runs_no_query_of_its_own() -> None:
    offenders = [
        f"{path.relative_to(ROOT).as_posix()}:{where}"
        for path in sorted((ROOT / "schema").rglob("*.py"))
        for where in queries_run_by(path.read_text())
    ]
    assert offenders == []


def test_the_query_check_finds_each_way_of_running_one() -> None:
    """The check above is only as good as what it recognises: each of these
    snippets runs a query from a resolver and must be found."""
    snippets = {
        "from app.models.tags import Tag as T\nasync def f():\n    await T.get_or_none(id=1)": 1,
        "from app.models.customers import Customer\nCustomer.filter(id=1).count()": 1,
        "from tortoise.expressions import Subquery": 1,
        "from app.db import fetch_all": 1,
        "import asyncpg": 1,
        "async def f(x):\n    await x.save()\n    await x.fetch_related('tags')": 2,
        # A domain call or an enum is not a query of the layer's own.
        "from app.domain import tags\nasync def f(v):\n    await tags.delete(v, 1)": 0,
        "from app.models.enums import Region\nRegion.values()": 0,
    }
    for source, expected in snippets.items():
        assert len(queries_run_by(source)) == expected, source


def test_no_table_row_crosses_into_the_graphql_layer() -> None:
    """schema/ builds its types over the domain's typed values (issue 15 item 1):
    it imports no model of app/models but the enums, so no Tortoise instance can
    reach a resolver."""
    offenders = []
    for path in sorted((ROOT / "schema").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
                if node.module == "app.models":
                    modules = [f"app.models.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT).as_posix()}:{node.lineno}: {module}"
                for module in modules
                if module.startswith("app.models") and module != "app.models.enums"
            ]
    assert offenders == []


def _is_camel_case(text: object) -> bool:
    return isinstance(text, str) and any(
        a.islower() and b.isupper() for a, b in itertools.pairwise(text)
    )


def _camel_case_field_paths(source: str) -> list[str]:
    """Field paths of refusals written with the schema's camelCase names: any
    tuple starting with "input", and the first argument of every `reject(...)`
    or `UserError(...)` (e.g. `(*FIELD, "tagIds", str(n))`)."""
    paths: list[ast.Tuple] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "input":
                paths.append(node)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Tuple):
            if _called_name(node) in {"reject", "UserError"}:
                paths.append(node.args[0])
    return sorted(
        {
            f"{path.lineno}: {part.value!r}"
            for path in paths
            for part in path.elts
            if isinstance(part, ast.Constant) and _is_camel_case(part.value)
        }
    )


def test_the_domain_names_fields_in_its_own_terms() -> None:
    """GraphQL naming lives in schema/ only (issue 15 item 4): the domain refuses
    `("input", "customer_ids", "2")`; schema/payloads.py turns it into the
    client's `["input", "customerIds", "2"]`. The domain makes no global ids
    either, except in what leaves the service for clients that use them: a
    report webhook's payload and a schedule's label in a template's message."""
    offenders = [
        f"{path.relative_to(ROOT).as_posix()}:{where}"
        for path in sorted((ROOT / "app").rglob("*.py"))
        for where in _camel_case_field_paths(path.read_text())
    ]
    assert offenders == []
    assert _camel_case_field_paths('raise reject(("input", "tagIds", "0"), "x", c)')
    assert _camel_case_field_paths('UserError((*FIELD, "tagIds", str(n)), "x", c)')
    assert not _camel_case_field_paths('raise reject(("input", "tag_ids", "0"), "x", c)')
    makes_global_ids = {
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "app").rglob("*.py"))
        if "encode_global_id" in path.read_text()
    }
    assert makes_global_ids == {
        "app/domain/ids.py",
        "app/domain/webhooks.py",
        "app/domain/report_templates.py",
        # The attention webhook payload: clients use its ids with the API.
        "app/domain/attention_webhooks.py",
    }


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
    ("app/domain/attention_states.py", "scan_all"): "daily job, no viewer",
    ("app/domain/attention_webhooks.py", "_record"): "webhook sender, no viewer",
}

# Audit events that no admin caused (audit.record_unattended), by the only
# functions that write them.
UNATTENDED_AUDIT = {
    ("app/domain/attention_webhooks.py", "_record_disabled"): "sender disables a failing webhook",
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
            if name == "audit.record_unattended" and (relative, owner) not in UNATTENDED_AUDIT:
                offenders.append(f"{relative}:{owner} calls {name}")
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
