"""The append-only event log that live views (agent console, customer chat) tail by id."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from domain.enums import EventKind
from domain.models import Event
from storage.db import Database
from storage.tables import EventRow, utcnow
from storage.tail import Position, after, newest, resolve

_EVENTS = cast(Table, EventRow.__table__)
_INSERT = insert(_EVENTS)  # built once: executed with new values only


def append_event(s: Session | Connection, kind: EventKind, *, handoff_id: int | None = None,
                 conversation_id: str | None = None, team: str | None = None, actor: str | None = None,
                 payload: dict[str, Any] | None = None) -> None:
    """Add an event in the caller's transaction (so it exists exactly when the change does)."""
    s.execute(_INSERT, {"kind": kind.value, "handoff_id": handoff_id, "conversation_id": conversation_id, "team": team,
                        "actor": actor, "payload": payload or {}, "created_at": utcnow()})


class EventLog:
    """Reading the event log in commit order (``storage.tail``), from any process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._postgres = db.dialect == "postgresql"

    def after(self, position: Position, *, conversation_id: str | None = None, kinds: tuple[str, ...] = (),
              teams: frozenset[str] = frozenset(), limit: int = 200) -> list[Event]:
        """Events after ``position``, oldest first, optionally for one conversation or some teams."""
        where, order = after(_EVENTS, position, self._postgres)
        query = select(_EVENTS).where(where)
        if conversation_id is not None:
            query = query.where(_EVENTS.c.conversation_id == conversation_id)
        if kinds:
            query = query.where(_EVENTS.c.kind.in_(kinds))
        if teams:
            query = query.where(or_(_EVENTS.c.team.in_(sorted(teams)), _EVENTS.c.team.is_(None)))
        with self.db.read() as s:
            rows = s.execute(query.order_by(*order).limit(limit)).all()
        return [Event(r.id, r.kind, r.created_at, r.handoff_id, r.conversation_id, r.team, r.actor,
                      dict(r.payload or {}), tx=int(r.tx or 0)) for r in rows]

    def newest(self) -> Position:
        """Where a live view starts: after every event that can no longer change."""
        with self.db.read() as s:
            return newest(s, _EVENTS, self._postgres)

    def resolve(self, position: Position) -> Position:
        """A position from a client (e.g. a bare event id) made complete."""
        with self.db.read() as s:
            return resolve(s, _EVENTS, position, self._postgres)
