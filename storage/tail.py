"""Read an append-only log (events, changes) in commit order, on PostgreSQL as on SQLite.

Ids come from a sequence when a row is inserted, not when its transaction commits: on PostgreSQL, with several
writers, row 11 can be visible while row 10 is still being written, so a reader that remembers "the last id I
saw" would skip row 10 for good. Each row therefore also records its transaction id (``tx``, a column default),
and readers only take rows of transactions older than every transaction still running
(``pg_snapshot_xmin``): those can no longer change. Positions are ``(tx, id)`` pairs, which only grow.
SQLite has one writer at a time, so its ids are already in commit order (``tx`` stays NULL and reads as 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column, select, tuple_
from sqlalchemy.orm import Session

# The oldest transaction still running: rows of older transactions are final.
_HORIZON: ColumnElement[int] = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True, order=True)
class Position:
    """Where a reader is in a log: after the row ``id`` of transaction ``tx`` (``tx`` 0 on SQLite)."""

    tx: int = 0
    id: int = 0

    def __str__(self) -> str:
        return f"{self.tx}.{self.id}"

    @classmethod
    def parse(cls, text: str | None) -> Position | None:
        """``"tx.id"`` (what :meth:`__str__` writes, e.g. an SSE ``Last-Event-ID``), or a bare id; else None."""
        if not text:
            return None
        head, _, tail = text.strip().partition(".")
        if not head.isdigit() or (tail and not tail.isdigit()):
            return None
        return cls(int(head), int(tail)) if tail else cls(0, int(head))


def after(table: Any, position: Position, postgres: bool) -> tuple[ColumnElement[bool], tuple[Any, ...]]:
    """The WHERE condition and ORDER BY columns for rows after ``position`` that can no longer change."""
    if not postgres:
        return table.c.id > position.id, (table.c.id,)
    # A row comparison, so PostgreSQL walks the (tx, id) index.
    newer = tuple_(table.c.tx, table.c.id) > tuple_(position.tx, position.id)
    return and_(newer, table.c.tx < _HORIZON), (table.c.tx, table.c.id)


def position_of(row: Any) -> Position:
    """The position of a row read from a tailed table."""
    return Position(int(row.tx or 0), int(row.id))


def newest(s: Session, table: Any, postgres: bool) -> Position:
    """The position after every row that can no longer change: a new reader starts here."""
    if not postgres:
        return Position(0, int(s.scalar(select(func.max(table.c.id))) or 0))
    row = s.execute(select(table.c.tx, table.c.id).where(table.c.tx < _HORIZON)
                    .order_by(table.c.tx.desc(), table.c.id.desc()).limit(1)).first()
    return Position(int(row.tx), int(row.id)) if row else Position()


def resolve(s: Session, table: Any, position: Position, postgres: bool) -> Position:
    """A bare id (``tx`` 0, e.g. from an older client) completed with its row's transaction on PostgreSQL."""
    if not postgres or position.tx or not position.id:
        return position
    found = s.scalar(select(table.c.tx).where(table.c.id == position.id))
    return Position(int(found or 0), position.id)

