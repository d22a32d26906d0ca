"""Trained intent models in the database, so that every server process, on any host, can load any version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from storage.db import Database
from storage.tables import ModelFileRow, utcnow


class SqlModelFiles:
    """``nlu.intent.ModelFiles`` on the ``model_files`` table (a few MB a model)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, version: str) -> bytes | None:
        with self.db.read() as s:
            data = s.scalar(select(ModelFileRow.data).where(ModelFileRow.version == version))
            return bytes(data) if data is not None else None

    def put(self, version: str, data: bytes) -> None:
        with self.db.session() as s:
            row = s.get(ModelFileRow, version)
            if row is None:
                s.add(ModelFileRow(version=version, data=data, created_at=utcnow()))
            else:
                row.data, row.created_at = data, utcnow()

    def delete(self, version: str) -> bool:
        with self.db.session() as s:
            result: Any = s.execute(delete(ModelFileRow).where(ModelFileRow.version == version))
            return bool(result.rowcount)

    def versions(self) -> list[str]:
        with self.db.read() as s:
            return list(s.scalars(select(ModelFileRow.version)
                                  .order_by(ModelFileRow.created_at.desc(), ModelFileRow.version)).all())
