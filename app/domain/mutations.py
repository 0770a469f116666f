"""The one frame every mutation runs in: the setup gate and the role check (a
`MutationRule` of app/domain/access.py), one transaction, the work, and exactly
one audit event in that same transaction.

    return await run_mutation(viewer, CREATE_TAG, "tag.create", work)

`work` runs inside the transaction and returns `Audited(result, target_id,
summary)`, or `Unaudited(result)` when nothing changed (a no-op writes no audit
event). A refusal raised by `work` (MutationRejected) rolls everything back, so a
refused mutation leaves neither a change nor an event. Validation runs inside
`work` too: after the role check, as before.

Checks that must not hold a transaction open (a webhook URL's DNS lookup) go in
`prepare` of `run_prepared_mutation`: it runs after the role check and before the
transaction, and what it returns is handed to `work`.

This module is the only caller of `audit.record` and the only place a mutation
opens a transaction (tests/test_layout.py checks both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tortoise.transactions import in_transaction

from app.domain import audit
from app.domain.access import MutationRule, Viewer

T = TypeVar("T")
P = TypeVar("P")


def audit_target(kind: str, key: int) -> str:
    """How an audit event names what a mutation changed, in domain terms: its kind
    and key, "Kind:key" (e.g. "Admin:5"; `audit.parse_target_ref` reads it back).
    The GraphQL layer makes the client's global id of it (`AuditEvent.targetId`)."""
    return audit.target_ref(kind, key)


@dataclass(frozen=True)
class Audited(Generic[T]):
    """What the mutation did: its result, and the audit event's target (an
    `audit_target(kind, key)`, or None when it names nothing) and summary."""

    result: T
    target_id: str | None
    summary: str


@dataclass(frozen=True)
class Unaudited(Generic[T]):
    """A mutation that changed nothing (e.g. a role set to the role it has): no event."""

    result: T


Outcome = Audited[T] | Unaudited[T]


async def run_mutation(
    viewer: Viewer,
    rule: MutationRule,
    action: str,
    work: Callable[[], Awaitable[Outcome[T]]],
) -> T:
    """Check `rule` (setup gate, then role: FORBIDDEN naming the roles), run `work` in
    one transaction and record one audit event of `action` in it (none for
    `Unaudited`); returns the work's result once committed."""
    rule.check(viewer)
    return await _in_transaction(viewer, action, work)


async def run_prepared_mutation(
    viewer: Viewer,
    rule: MutationRule,
    action: str,
    prepare: Callable[[], Awaitable[P]],
    work: Callable[[P], Awaitable[Outcome[T]]],
) -> T:
    """`run_mutation` with checks that run outside the transaction: the rule, then
    `prepare` (no transaction open), then `work(prepared)` and the audit event in
    one transaction."""
    rule.check(viewer)
    prepared = await prepare()
    return await _in_transaction(viewer, action, lambda: work(prepared))


async def _in_transaction(
    viewer: Viewer, action: str, work: Callable[[], Awaitable[Outcome[T]]]
) -> T:
    async with in_transaction():
        outcome = await work()
        if isinstance(outcome, Audited):
            await audit.record(viewer, action, outcome.target_id, outcome.summary)
    return outcome.result
