"""The append-only event log that live views (agent console, customer chat) tail by id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from domain.models import Event
from storage.db import Database
from storage.tables import EventRow


def append_event(s: Session, kind: str, *, handoff_id: int | None = None, conversation_id: str | None = None,
                 team: str | None = None, actor: str | None = None, payload: dict[str, Any] | None = None) -> None:
    """Add an event in the caller's transaction (so it exists exactly when the change does)."""
    s.add(EventRow(kind=kind, handoff_id=handoff_id, conversation_id=conversation_id, team=team, actor=actor,
                   payload=payload or {}))


class EventLog:
    """Reading the event log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def after(self, last_id: int, *, conversation_id: str | None = None, kinds: tuple[str, ...] = (),
              teams: frozenset[str] = frozenset(), limit: int = 200) -> list[Event]:
        """Events with an id above ``last_id``, oldest first, optionally for one conversation or some teams."""
        with self.db.read() as s:
            query = select(EventRow).where(EventRow.id > last_id)
            if conversation_id is not None:
                query = query.where(EventRow.conversation_id == conversation_id)
            if kinds:
                query = query.where(EventRow.kind.in_(kinds))
            if teams:
                query = query.where(or_(EventRow.team.in_(sorted(teams)), EventRow.team.is_(None)))
            rows = s.scalars(query.order_by(EventRow.id).limit(limit)).all()
            return [Event(r.id, r.kind, r.created_at, r.handoff_id, r.conversation_id, r.team, r.actor,
                          dict(r.payload or {})) for r in rows]

    def last_id(self) -> int:
        """The newest event id (0 when empty): a live view starts from here."""
        with self.db.read() as s:
            return int(s.scalar(select(func.max(EventRow.id))) or 0)
