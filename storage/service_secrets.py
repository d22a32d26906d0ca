"""Secrets the service generates once and every process shares (e.g. the key that signs customer tokens)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import Database
from storage.tables import ServiceSecretRow, utcnow


class ServiceSecrets:
    """``service_secrets`` rows: created by whichever process asks first, then read by all."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get_or_create(self, name: str, nbytes: int = 32) -> str:
        """The secret ``name``; a random one (``nbytes`` of entropy) is stored the first time it is asked for."""
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        with self.db.session() as s:
            s.execute(dialect.insert(ServiceSecretRow)
                      .values(name=name, value=secrets.token_urlsafe(nbytes), created_at=utcnow())
                      .on_conflict_do_nothing())
            value = s.scalar(select(ServiceSecretRow.value).where(ServiceSecretRow.name == name))
        assert value is not None
        return value
