"""Named leases for background jobs that must run in one process at a time, and the record of their last run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import Database, rowcount
from storage.tables import JobLeaseRow


@dataclass(frozen=True)
class JobStatus:
    """A background job as operators see it: who holds it and how its last run went."""

    name: str
    owner: str | None
    expires_at: datetime | None
    runs: int
    last_owner: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_detail: str | None


class JobLeases:
    """``job_leases`` rows: a lease is held by one owner (a process) until it expires or is released.

    Taking a lease is one conditional UPDATE, so of several processes asking at once exactly one gets it
    (PostgreSQL re-checks the condition after waiting for the row lock; SQLite has one writer at a time).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(self, name: str, owner: str, ttl: timedelta, now: datetime) -> bool:
        """Take or renew the lease ``name`` until ``now + ttl``; False when another owner holds it."""
        with self.db.session() as s:
            self._ensure(s, name)
            won = rowcount(s.execute(
                update(JobLeaseRow)
                .where(JobLeaseRow.name == name,
                       or_(JobLeaseRow.owner == owner, JobLeaseRow.owner.is_(None), JobLeaseRow.expires_at < now))
                .values(owner=owner, expires_at=now + ttl)))
            return won == 1

    def release(self, name: str, owner: str) -> None:
        """Give the lease up (at shutdown) so another process can take it at once."""
        with self.db.session() as s:
            s.execute(update(JobLeaseRow).where(JobLeaseRow.name == name, JobLeaseRow.owner == owner)
                      .values(owner=None, expires_at=None))

    def record(self, name: str, owner: str, started: datetime, finished: datetime, status: str,
               detail: str) -> None:
        """Remember a run (shown to operators)."""
        with self.db.session() as s:
            self._ensure(s, name)
            s.execute(update(JobLeaseRow).where(JobLeaseRow.name == name).values(
                runs=JobLeaseRow.runs + 1, last_owner=owner, last_started_at=started, last_finished_at=finished,
                last_status=status, last_detail=detail[:500]))

    def all(self) -> list[JobStatus]:
        """Every job that ever ran, by name."""
        with self.db.read() as s:
            rows = s.scalars(select(JobLeaseRow).order_by(JobLeaseRow.name)).all()
            return [JobStatus(r.name, r.owner, r.expires_at, r.runs, r.last_owner, r.last_started_at,
                              r.last_finished_at, r.last_status, r.last_detail) for r in rows]

    def _ensure(self, s: Any, name: str) -> None:
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        s.execute(dialect.insert(JobLeaseRow).values(name=name, runs=0).on_conflict_do_nothing())
