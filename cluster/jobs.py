"""Background jobs: named loops with one way to lease, run and report them.

A job is either *exclusive* (one process of the service runs it at a time, holding a lease in the database
that it renews on every run; if that process dies, another takes over when the lease expires) or runs in every
process, for work that is itself leased row by row (outbound delivery, recovery of unanswered messages,
retraining): there, more processes just share the rows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio

from storage.leases import JobLeases

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """What one run did."""

    done: int = 0
    failed: int = 0
    detail: str = ""


@dataclass(frozen=True)
class Job:
    """A named background loop."""

    name: str
    run: Callable[[], Awaitable[JobOutcome]]
    every_seconds: float
    exclusive: bool = False  # one process at a time (a lease); else every process, the work leased row by row
    # How to wait between runs; by default a sleep. A job woken by new work passes e.g. ChangeNotifier.wait.
    wait: Callable[[float], Awaitable[object]] | None = None

    @property
    def lease_ttl(self) -> timedelta:
        """How long an exclusive job's lease outlives its holder: three missed runs, at least 30 s."""
        return timedelta(seconds=max(3 * self.every_seconds, 30.0))


def process_owner() -> str:
    """A name for this process that no other process of the service shares (host, pid, random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobRunner:
    """Runs jobs as asyncio tasks until stopped; exclusive jobs only while holding their lease."""

    def __init__(self, jobs: Sequence[Job], leases: JobLeases, owner: str) -> None:
        self.jobs = tuple(jobs)
        self.leases = leases
        self.owner = owner
        self.last: dict[str, tuple[datetime, str, JobOutcome | None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one task per job (call from the event loop)."""
        self._tasks = [asyncio.create_task(self._loop(job), name=f"job-{job.name}") for job in self.jobs]

    async def stop(self) -> None:
        """Cancel the loops and give up the leases held, so another process takes over at once."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for job in self.jobs:
            if job.exclusive:
                try:
                    await anyio.to_thread.run_sync(self.leases.release, job.name, self.owner)
                except Exception as e:  # shutting down with the database gone: the lease simply expires
                    log.warning("could not release the lease of job %s: %s", job.name, type(e).__name__)

    async def run_once(self, job: Job) -> JobOutcome | None:
        """One run of ``job`` (None when another process holds its lease); failures are logged and recorded."""
        started = datetime.now(UTC)
        if job.exclusive and not await anyio.to_thread.run_sync(
                self.leases.acquire, job.name, self.owner, job.lease_ttl, started):
            return None
        try:
            outcome = await job.run()
        except Exception as e:  # a job must survive e.g. the database going away; next run tries again
            log.error("job %s failed: %s", job.name, type(e).__name__)
            self.last[job.name] = (started, "error", None)
            await self._record(job, started, "error", type(e).__name__)
            return None
        self.last[job.name] = (started, "ok", outcome)
        if job.exclusive or outcome.done or outcome.failed:
            detail = outcome.detail or f"{outcome.done} done, {outcome.failed} failed"
            await self._record(job, started, "ok", detail)
        return outcome

    async def _record(self, job: Job, started: datetime, status: str, detail: str) -> None:
        try:
            await anyio.to_thread.run_sync(self.leases.record, job.name, self.owner, started, datetime.now(UTC),
                                           status, detail)
        except Exception as e:  # recording is best effort
            log.debug("could not record a run of job %s: %s", job.name, type(e).__name__)

    async def _loop(self, job: Job) -> None:
        wait = job.wait or anyio.sleep
        while True:
            outcome = None
            try:
                outcome = await self.run_once(job)
            except Exception as e:  # the lease table itself is unreachable: wait and try again
                log.warning("job %s could not run: %s", job.name, type(e).__name__)
            if outcome is not None and (outcome.done or outcome.failed):
                continue  # it found work: more may have arrived meanwhile (a wake-up during a run is not kept)
            await wait(job.every_seconds)
