"""The ARQ worker as this service runs it: it rides out Redis outages, beats
a heartbeat, and drains on shutdown.

ARQ's own worker exits with a traceback when its Redis connection drops in the
poll loop, and cancels running jobs at once on SIGTERM. This one:
- retries a lost Redis with capped backoff (one log line when the outage
  starts, one when it ends) and resumes polling by itself; a job that finished
  during the outage keeps trying to record its result until Redis is back;
- writes a heartbeat (app/worker_health.py) every few seconds;
- on SIGTERM (or the service's shutdown, in process) takes no new job, lets
  running ones finish within `worker_drain_seconds`, then cancels what is left:
  a job cut that way gives its work back (jobs read `ctx["shutdown"].draining`)
  and ARQ queues it again for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from redis.exceptions import RedisError

from app.outage import Outage, database_unreachable, redis_unreachable
from app.worker_health import HEARTBEAT_SECONDS, WorkerBeat, beat, forget, new_worker_id

log = logging.getLogger("partnerhub.worker")

# How long a job that finished during a Redis outage keeps trying to record it.
RESULT_RECORD_SECONDS = 600.0


# The database as this process's jobs see it: one line when it is lost, one when
# it is back, however many jobs and ticks fail meanwhile.
DATABASE_OUTAGE = Outage("Database", log)

Job = TypeVar("Job", bound=Callable[..., Awaitable[Any]])


def rides_out_database_outages(job: Job) -> Job:
    """For periodic jobs: a run that cannot reach the database ends quietly
    (the next tick tries again) instead of a traceback on every tick."""

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = await job(ctx, *args, **kwargs)
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            DATABASE_OUTAGE.failed(exc)
            return None
        DATABASE_OUTAGE.recovered()
        return result

    return run  # type: ignore[return-value]


@dataclass
class Shutdown:
    """Shared with every job through ctx["shutdown"]: set when the worker drains."""

    draining: bool = False


def draining(ctx: dict[str, Any]) -> bool:
    """True in a job whose worker is shutting down (its work should be given back)."""
    shutdown = ctx.get("shutdown")
    return bool(shutdown and shutdown.draining)


def _redis_outage(exc: BaseException) -> bool:
    return isinstance(exc, (RedisError, OSError, asyncio.TimeoutError)) and redis_unreachable(exc)


class PartnerHubWorker(Worker):
    """arq.Worker that survives Redis outages, beats a heartbeat and drains."""

    def __init__(self, *args: Any, drain_seconds: float = 30.0, **kwargs: Any) -> None:
        if kwargs.get("handle_signals", True):
            # ARQ's waiting signal handler (a float works, though typed int).
            kwargs["job_completion_wait"] = drain_seconds
        super().__init__(*args, **kwargs)
        self.drain_seconds = drain_seconds
        self.shutdown = Shutdown()
        self.ctx["shutdown"] = self.shutdown
        self.redis_outage = Outage("Redis (job queue)", log)
        self.beat = WorkerBeat(id=new_worker_id(), started_at=time.time())
        self.ctx["worker_id"] = self.beat.id
        self._last_beat = 0.0

    # ------------------------------------------------------------ outages

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as exc:
            if not _redis_outage(exc):
                raise
            await self.redis_outage.wait_after(exc)
        else:
            self.redis_outage.recovered()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except Exception as exc:
            if _redis_outage(exc):
                # ARQ took a slot for the job it was starting when Redis went away.
                self.job_counter -= 1
                self.sem.release()
            raise

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except Exception as exc:
            if not _redis_outage(exc):
                raise
            # Redis went away before the job ran (or after it was recorded):
            # free its in-progress mark once Redis is back, so it runs (again).
            log.warning("job %s not started: Redis unreachable; it runs when Redis is back", job_id)
            await self._retry_redis(lambda: self.pool.delete(in_progress_key_prefix + job_id))

    async def finish_job(self, *args: Any, **kwargs: Any) -> None:
        await self._retry_redis(lambda: super(PartnerHubWorker, self).finish_job(*args, **kwargs))

    async def finish_failed_job(self, *args: Any, **kwargs: Any) -> None:
        await self._retry_redis(
            lambda: super(PartnerHubWorker, self).finish_failed_job(*args, **kwargs)
        )

    async def _retry_redis(self, step: Any) -> None:
        """Run a Redis step, retrying through an outage for up to RESULT_RECORD_SECONDS."""
        deadline = time.monotonic() + RESULT_RECORD_SECONDS
        outage = Outage("Redis (recording a job)", log)
        while True:
            try:
                await step()
            except Exception as exc:
                if not _redis_outage(exc) or time.monotonic() > deadline:
                    raise
                await outage.wait_after(exc)
            else:
                outage.recovered()
                return

    # ------------------------------------------------------------ heartbeat

    async def heart_beat(self) -> None:
        await super().heart_beat()
        if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
            self.beat.running_jobs = sum(not t.done() for t in self.tasks.values())
            self.beat.jobs_complete = self.jobs_complete
            self.beat.jobs_failed = self.jobs_failed
            self.beat.jobs_retried = self.jobs_retried
            self.beat.draining = self.shutdown.draining
            await beat(self.pool, self.beat)
            self._last_beat = time.monotonic()

    # ------------------------------------------------------------ drain

    def handle_sig_wait_for_completion(self, signum: signal.Signals) -> None:
        self.shutdown.draining = True
        log.info(
            "draining: no new jobs; %d running get up to %.0f s",
            len(self.tasks),
            self.drain_seconds,
        )
        super().handle_sig_wait_for_completion(signum)

    def handle_sig(self, signum: signal.Signals) -> None:
        self.shutdown.draining = True
        super().handle_sig(signum)

    async def drain(self) -> None:
        """The in-process worker's shutdown: take no new job, wait for running
        ones up to `drain_seconds`, then stop (cancelling what is left)."""
        self.allow_pick_jobs = False
        self.shutdown.draining = True
        running = [t for t in self.tasks.values() if not t.done()]
        if running and self.drain_seconds:
            await asyncio.wait(running, timeout=self.drain_seconds)
        await self.close()

    async def close(self) -> None:
        """ARQ's close, except that a Redis that is away does not stop the
        shutdown (the heartbeat key then simply expires)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if self._pool is None:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pool.delete(self.health_check_key)
            await forget(self.pool, self.beat.id)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        with contextlib.suppress(Exception):
            await self.pool.close(close_connection_pool=True)
        self._pool = None
