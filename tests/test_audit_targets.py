"""How an audit event names its target: "Kind:key" in domain terms, read back
exactly (the global id clients see is made by the schema; tests/test_audit_events.py
checks it for every mutation)."""

from __future__ import annotations

import pytest

from app.domain.audit import AuditTarget, parse_target_ref
from app.domain.mutations import audit_target


def test_a_target_is_its_kind_and_key() -> None:
    assert audit_target("Admin", 5) == "Admin:5"
    assert audit_target("PartnerOrganization", 2**31 - 1) == "PartnerOrganization:2147483647"


@pytest.mark.parametrize(
    ("kind", "key"), [("Admin", 1), ("ReportSchedule", 42), ("AuditEvent", 2**63 - 1)]
)
def test_a_stored_target_reads_back_as_it_was_written(kind: str, key: int) -> None:
    assert parse_target_ref(audit_target(kind, key)) == AuditTarget(kind, key)


@pytest.mark.parametrize(
    "stored",
    [None, "", "Admin", "Admin:", "Admin:0", "Admin:05", "admin:5", "Admin:5 ", "Admin:-5",
     "Admin:5:6", "QWRtaW46NQ", "Admin:\uff11", "Admin:" + "9" * 20],
)  # fmt: skip
def test_anything_else_names_no_target(stored: str | None) -> None:
    assert parse_target_ref(stored) is None


@pytest.mark.parametrize(("kind", "key"), [("admin", 5), ("Admin", 0), ("Ad min", 5), ("", 1)])
def test_a_mutation_cannot_name_a_malformed_target(kind: str, key: int) -> None:
    with pytest.raises(ValueError, match="not an audit target"):
        audit_target(kind, key)
