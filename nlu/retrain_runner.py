"""Runs queued retrain jobs: one process of the service claims each job and runs it in a child process at low
priority (or in a thread, for tests), renewing the job's lease; if that process dies, another one starts it again."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from domain.trainer import JobStatus, RetrainJob

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the child gets a signal when its parent dies


class JobStore(Protocol):
    """``storage.trainer.TrainerStore``: leasing retrain jobs."""

    def claim_job(self, owner: str, now: datetime, lease: timedelta, max_attempts: int = 2) -> RetrainJob | None: ...

    def renew_job(self, job_id: int, owner: str, until: datetime) -> bool: ...

    def update_job(self, job_id: int, **changes: Any) -> None: ...

    def job(self, job_id: int) -> RetrainJob: ...


class RetrainRunner:
    """Claims the next queued retrain job and runs it to its end.

    ``mode="process"`` (the default of the service) runs ``command + [job id]`` as a child process with a lower
    CPU priority, so a retrain cannot starve the turns of the processes serving customers, and kills it if this
    process loses the job's lease; the child dies with this process (``PR_SET_PDEATHSIG``), and the lease then
    lapses so another process starts the job again. ``mode="thread"`` calls ``run_inline(job_id)`` instead.
    """

    def __init__(self, store: JobStore, owner: str, *, mode: Literal["process", "thread"] = "process",
                 command: Sequence[str] = (), run_inline: Callable[[int], None] | None = None,
                 lease_seconds: float = 60.0, nice: int = 10) -> None:
        if mode == "process" and not command:
            raise ValueError("a child-process runner needs the command that runs one job")
        if mode == "thread" and run_inline is None:
            raise ValueError("a thread runner needs run_inline")
        self.store = store
        self.owner = owner
        self.mode = mode
        self.command = list(command)
        self.run_inline = run_inline
        self.lease = timedelta(seconds=lease_seconds)
        self.nice = nice
        self._stop = threading.Event()

    def run_next(self) -> int | None:
        """Claim one job and run it (blocking); returns its id, or None when nothing was queued."""
        job = self.store.claim_job(self.owner, datetime.now(UTC), self.lease)
        if job is None:
            return None
        log.info("retrain job %s: started here (attempt %s)", job.id, getattr(job, "attempts", "?"))
        if self.mode == "thread":
            assert self.run_inline is not None
            done = threading.Event()
            renewer = threading.Thread(target=self._renew_until, args=(job.id, done), daemon=True)
            renewer.start()
            try:
                self.run_inline(job.id)
            finally:
                done.set()
            return int(job.id)
        self._run_child(int(job.id))
        return int(job.id)

    def stop(self) -> None:
        """Stop waiting for a child (it is killed)."""
        self._stop.set()

    def _run_child(self, job_id: int) -> None:
        child = subprocess.Popen([*self.command, str(job_id), "--parent-pid", str(os.getpid())],
                                 stdin=subprocess.DEVNULL)
        try:
            os.setpriority(os.PRIO_PROCESS, child.pid, self.nice)
        except OSError as e:  # not permitted here: it still runs, at normal priority
            log.warning("retrain job %s: could not lower its priority (%s)", job_id, e.strerror)
        try:
            while True:
                try:
                    code = child.wait(timeout=self.lease.total_seconds() / 3)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self._stop.is_set():
                    log.warning("retrain job %s: shutting down; stopping its process", job_id)
                elif self._renew(job_id) or not self._taken_over(job_id):
                    continue
                else:
                    log.warning("retrain job %s: another process took it over; stopping its process", job_id)
                child.kill()
                child.wait()
                return
        except BaseException:
            child.kill()
            child.wait()
            raise
        if code != 0:
            log.error("retrain job %s: its process exited with %s", job_id, code)
            self.store.update_job(job_id, status=JobStatus.FAILED, step="failed", stage="failed",
                                  error=f"the training process exited with code {code}")

    def _taken_over(self, job_id: int) -> bool:
        """True when the job is running under another process's lease (not when it simply finished)."""
        try:
            return bool(self.store.job(job_id).status == JobStatus.RUNNING)
        except Exception:  # cannot tell: keep the child running; its lease will tell next time
            return False

    def _renew(self, job_id: int) -> bool:
        try:
            return self.store.renew_job(job_id, self.owner, datetime.now(UTC) + self.lease)
        except Exception as e:  # the database is briefly unreachable: keep going, the lease has slack
            log.warning("retrain job %s: could not renew its lease (%s)", job_id, type(e).__name__)
            return True

    def _renew_until(self, job_id: int, done: threading.Event | None) -> None:
        interval = self.lease.total_seconds() / 3
        while done is not None and not done.wait(interval):
            self._renew(job_id)


def die_with_parent(parent_pid: int) -> None:
    """Called first thing in a job's child process: be killed when the process that started it dies.

    Raises:
        SystemExit: the parent is already gone (it died before this line ran).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        raise SystemExit("the process that started this retrain has exited")
