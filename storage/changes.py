"""The change log: what changed in the shared state, written in the changing transaction, tailed by every process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from domain.enums import Topic
from storage.db import Database
from storage.tables import ChangeRow, utcnow
from storage.tail import Position, after, newest, position_of

_CHANGES = cast(Table, ChangeRow.__table__)


@dataclass(frozen=True)
class Change:
    """One entry of the log: a topic and, usually, the key of what changed (e.g. an article id)."""

    position: Position
    topic: Topic
    key: str | None


def publish(s: Session, topic: Topic, key: str | None = None) -> None:
    """Record a change in the caller's transaction, so that it becomes visible exactly when the change does.

    On PostgreSQL a trigger on the table sends ``NOTIFY frontdesk_changes`` at commit.
    """
    s.execute(insert(_CHANGES).values(topic=topic.value, key=key, created_at=utcnow()))


class ChangeLog:
    """Reading and pruning the change log."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.dialect == "postgresql"

    def after(self, position: Position, limit: int = 1000) -> list[Change]:
        """Changes after ``position`` in commit order (only those that can no longer be joined by earlier ones)."""
        where, order = after(_CHANGES, position, self._postgres)
        with self.db.read() as s:
            rows = s.execute(select(_CHANGES).where(where).order_by(*order).limit(limit)).all()
        known = {t.value for t in Topic}  # a topic of a newer version of the service is not ours to handle
        return [Change(position_of(r), Topic(r.topic), r.key) for r in rows if r.topic in known]

    def newest(self) -> Position:
        """Where a reader that has just loaded the whole state starts."""
        with self.db.read() as s:
            return newest(s, _CHANGES, self._postgres)

    def oldest(self) -> Position | None:
        """The position of the oldest change still kept (None when the log is empty)."""
        with self.db.read() as s:
            row = s.execute(select(_CHANGES.c.tx, _CHANGES.c.id).order_by(_CHANGES.c.id).limit(1)).first()
        return position_of(row) if row else None

    def prune(self, before: datetime) -> int:
        """Delete changes older than ``before``, always keeping the newest one (a reader needs a place to start)."""
        with self.db.session() as s:
            last = s.scalar(select(func.max(_CHANGES.c.id)))
            if last is None:
                return 0
            result: Any = s.execute(delete(_CHANGES).where(_CHANGES.c.created_at < before, _CHANGES.c.id < last))
            return int(result.rowcount or 0)
