"""Canned responses (reply templates) managed by supervisors."""

from __future__ import annotations

from sqlalchemy import or_, select

from domain.enums import Topic
from domain.errors import NotFoundError
from domain.models import CannedResponse
from storage.changes import publish
from storage.db import Database
from storage.tables import CannedResponseRow, utcnow


class CannedStore:
    """CRUD of canned responses (read from the database on every use, so every process sees the same ones)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self, team: str | None = None) -> list[CannedResponse]:
        """All templates, or those for a team plus the ones for every team."""
        with self.db.read() as s:
            query = select(CannedResponseRow)
            if team:
                query = query.where(or_(CannedResponseRow.team == team, CannedResponseRow.team.is_(None)))
            return [_canned(r) for r in s.scalars(query.order_by(CannedResponseRow.title)).all()]

    def get(self, canned_id: int) -> CannedResponse:
        """One template; raises NotFoundError."""
        with self.db.read() as s:
            row = s.get(CannedResponseRow, canned_id)
            if row is None:
                raise NotFoundError(f"canned response {canned_id} does not exist")
            return _canned(row)

    def save(self, canned_id: int | None, title: str, body: str, team: str | None, actor: str) -> CannedResponse:
        """Create (``canned_id`` None) or update a template."""
        with self.db.session() as s:
            if canned_id is None:
                row = CannedResponseRow(title=title, body=body, team=team, updated_by=actor)
                s.add(row)
            else:
                found = s.get(CannedResponseRow, canned_id)
                if found is None:
                    raise NotFoundError(f"canned response {canned_id} does not exist")
                row = found
                row.title, row.body, row.team, row.updated_by, row.updated_at = title, body, team, actor, utcnow()
            s.flush()
            publish(s, Topic.CANNED, str(row.id))
            return _canned(row)

    def delete(self, canned_id: int) -> None:
        """Remove a template; raises NotFoundError."""
        with self.db.session() as s:
            row = s.get(CannedResponseRow, canned_id)
            if row is None:
                raise NotFoundError(f"canned response {canned_id} does not exist")
            s.delete(row)
            publish(s, Topic.CANNED, str(canned_id))


def _canned(row: CannedResponseRow) -> CannedResponse:
    return CannedResponse(row.id, row.title, row.body, row.team, row.updated_by, row.updated_at)
