"""License arithmetic (SPEC.md): per line, available = max(quantity - assigned, 0)
and overage = max(assigned - quantity, 0); totals are sums over lines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from app.models.enums import LICENSE_PRODUCT, LicenseType, Product, SubscriptionStatus
from app.models.subscriptions import LicenseCountsFields


class HasStatus(Protocol):
    """A subscription or a trial's subscription row (a model or a typed value)."""

    @property
    def status(self) -> SubscriptionStatus | str: ...


S = TypeVar("S", bound=HasStatus)

# Subscriptions (and trials) in these states hold their licenses.
HOLDING_STATUSES = frozenset(
    {SubscriptionStatus.ACTIVE, SubscriptionStatus.SUSPENDED, SubscriptionStatus.PENDING_SETUP}
)


@dataclass(frozen=True)
class LicenseCounts:
    total: int = 0
    assigned: int = 0
    used: int = 0
    available: int = 0
    overage: int = 0


def available(quantity: int, assigned: int) -> int:
    """A line's licenses not assigned."""
    return max(quantity - assigned, 0)


def overage(quantity: int, assigned: int) -> int:
    """A line's licenses assigned beyond its quantity."""
    return max(assigned - quantity, 0)


def line_counts(line: LicenseCountsFields) -> LicenseCounts:
    return LicenseCounts(
        total=line.quantity,
        assigned=line.assigned,
        used=line.used,
        available=available(line.quantity, line.assigned),
        overage=overage(line.quantity, line.assigned),
    )


def products_of_lines(lines: Iterable[LicenseCountsFields]) -> list[Product]:
    """The products a subscription's license lines are for, each once, in line order."""
    return list(dict.fromkeys(LICENSE_PRODUCT[LicenseType(line.license_type)] for line in lines))


def sum_counts(lines: Iterable[LicenseCountsFields]) -> LicenseCounts:
    """The sums of `line_counts` over the lines (in one pass)."""
    total = assigned = used = unassigned = over = 0
    for line in lines:
        quantity, taken = line.quantity, line.assigned
        total += quantity
        assigned += taken
        used += line.used
        unassigned += available(quantity, taken)
        over += overage(quantity, taken)
    return LicenseCounts(
        total=total, assigned=assigned, used=used, available=unassigned, overage=over
    )


def holding(subscriptions: Iterable[S]) -> list[S]:
    """The subscriptions and trials whose licenses count (a customer's license totals)."""
    return [s for s in subscriptions if SubscriptionStatus(s.status) in HOLDING_STATUSES]
