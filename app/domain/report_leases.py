"""Leases on running reports: who runs a report, and for how long without news.

A job takes a QUEUED report (or a RUNNING one whose lease lapsed) with one
compare-and-set UPDATE, so two jobs never run one report at once. While it
writes the file it renews the lease every few seconds; a job that finds its
lease gone (the tick handed the report to another job) stops before its file
is moved into place. A worker that dies stops renewing: the tick sees the lease
lapse and queues the report again under a new job id, within about a minute
whatever the job time limit, until its tries are used up (then FAILED).

A job cut short by a worker's shutdown (drain) gives its report back QUEUED
without counting the try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.expressions import F, Q

from app.clock import utcnow
from app.models.enums import ReportStatus
from app.models.reports import Report
from app.outage import database_unreachable

log = logging.getLogger(__name__)

# Tries of one report (a try ends when its job fails or its worker dies).
MAX_TRIES = 5


@dataclass(frozen=True)
class LeaseTerms:
    owner: str  # the job run holding the lease: job id, try and worker
    seconds: float = 30.0
    renew_seconds: float = 10.0


class LeaseLost(Exception):
    """The report's lease went to another job: this one must stop and write nothing."""


def _takeable(now: datetime) -> Q:
    return Q(status=ReportStatus.QUEUED) | Q(
        Q(status=ReportStatus.RUNNING)
        & Q(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
    )


async def take(report_id: int, terms: LeaseTerms, now: datetime) -> bool:
    """Move the report to RUNNING under this lease (one more try); False when it
    is finished or another job holds a live lease on it."""
    taken = await (
        Report.filter(_takeable(now), id=report_id)
        .filter(attempts__lt=MAX_TRIES)
        .update(
            status=ReportStatus.RUNNING,
            started_at=now,
            attempts=F("attempts") + 1,
            error=None,
            lease_owner=terms.owner,
            lease_expires_at=now + timedelta(seconds=terms.seconds),
        )
    )
    return bool(taken)


async def renew(report_id: int, terms: LeaseTerms, now: datetime) -> None:
    """Extend the lease; LeaseLost when this job no longer holds it."""
    renewed = await Report.filter(
        id=report_id, status=ReportStatus.RUNNING, lease_owner=terms.owner
    ).update(lease_expires_at=now + timedelta(seconds=terms.seconds))
    if not renewed:
        raise LeaseLost(f"report {report_id}: lease {terms.owner} was lost")


async def give_back(report_id: int, terms: LeaseTerms, now: datetime) -> bool:
    """Drain: the report goes back to QUEUED for another worker, this try uncounted."""
    returned = await Report.filter(
        id=report_id, status=ReportStatus.RUNNING, lease_owner=terms.owner
    ).update(
        status=ReportStatus.QUEUED,
        attempts=F("attempts") - 1,
        lease_owner=None,
        lease_expires_at=None,
        started_at=None,
        queued_at=now,
    )
    return bool(returned)


async def let_lapse(
    report_id: int, terms: LeaseTerms, now: datetime, error: str | None = None
) -> None:
    """A try that ended badly (time limit, error: kept on the report): the lease
    ends now, so the next tick queues the report again (or fails it after its
    last try)."""
    await Report.filter(id=report_id, status=ReportStatus.RUNNING, lease_owner=terms.owner).update(
        lease_expires_at=now, error=error[:2000] if error else None
    )


@dataclass
class KeptLease:
    terms: LeaseTerms
    report_id: int
    lost: bool = False
    _holder: asyncio.Task | None = field(default=None, repr=False)

    async def confirm(self) -> None:
        """Renew now; LeaseLost if another job has the report (call before
        anything that must happen once, like moving the file into place)."""
        try:
            await renew(self.report_id, self.terms, utcnow())
        except LeaseLost:
            self.lost = True
            raise


@contextlib.asynccontextmanager
async def kept(report_id: int, terms: LeaseTerms) -> AsyncIterator[KeptLease]:
    """Renew the lease every `terms.renew_seconds` while the body runs; if it
    is lost, the body is cancelled and LeaseLost comes out instead. A renewal
    that fails because the database is away is tried again at the next beat."""
    lease = KeptLease(terms, report_id, _holder=asyncio.current_task())

    async def renew_forever() -> None:
        while True:
            await asyncio.sleep(terms.renew_seconds)
            try:
                await renew(report_id, terms, utcnow())
            except LeaseLost:
                lease.lost = True
                log.warning("report %s: lease lost to another job; stopping", report_id)
                assert lease._holder is not None
                lease._holder.cancel()
                return
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                log.warning("report %s: lease not renewed (database unreachable)", report_id)

    renewer = asyncio.create_task(renew_forever(), name=f"lease:{report_id}")
    try:
        yield lease
    except asyncio.CancelledError:
        if lease.lost and lease._holder is not None and lease._holder.uncancel() == 0:
            raise LeaseLost(f"report {report_id}: lease {terms.owner} was lost") from None
        raise
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await renewer


@dataclass(frozen=True)
class Swept:
    requeued: list[Report]
    failed: list[Report]


async def sweep_lapsed(now: datetime) -> Swept:
    """RUNNING reports whose lease lapsed (their worker died or gave up): queued
    again for another try, or FAILED when every try is used."""
    lapsed = await Report.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
        status=ReportStatus.RUNNING,
    )
    requeued, failed = [], []
    for report in lapsed:
        still_lapsed = Report.filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
            id=report.id,
            status=ReportStatus.RUNNING,
            lease_owner=report.lease_owner,
        )
        if report.attempts >= MAX_TRIES:
            changed = await still_lapsed.update(
                status=ReportStatus.FAILED,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
                error=f"Generation failed after {report.attempts} tries; the last one: "
                f"{report.error}"
                if report.error
                else f"The report did not finish in {report.attempts} tries "
                "(its worker stopped or its job timed out each time).",
            )
            target = failed
        else:
            changed = await still_lapsed.update(
                status=ReportStatus.QUEUED, lease_owner=None, lease_expires_at=None, queued_at=now
            )
            target = requeued
        if changed:
            await report.refresh_from_db()
            target.append(report)
    return Swept(requeued, failed)


async def waiting_since(cutoff: datetime, limit: int = 100) -> list[Report]:
    """QUEUED reports queued before `cutoff` (their job may have been lost with
    a Redis that kept no data): the tick queues their job again, a no-op when
    the queue still holds it."""
    return (
        await Report.filter(
            Q(queued_at__lt=cutoff) | Q(queued_at__isnull=True, created_at__lt=cutoff),
            status=ReportStatus.QUEUED,
        )
        .order_by("id")
        .limit(limit)
    )
