"""Migrations: upgrading a database with data, and down/up round trips, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage.db import Database, alembic_config
from storage.tables import Base

pytestmark = pytest.mark.integration


def _downgrade_all(db: Database) -> None:
    with db.engine.begin() as connection:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")


def _upgrade(db: Database, revision: str) -> None:
    with db.engine.begin() as connection:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_upgrade_keeps_existing_rows_and_matches_the_models(db: Database) -> None:
    _downgrade_all(db)
    _upgrade(db, "0001")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO customers (id, tier, created_at) VALUES (1, 'standard', '2026-01-02 03:04:05')"))
        conn.execute(text("INSERT INTO conversations (id, customer_id, channel, status, token_hash, created_at, "
                          "updated_at) VALUES ('c1', 1, 'web', 'human', 'h', '2026-01-02 03:04:05', "
                          "'2026-01-02 03:04:05')"))
        conn.execute(text("INSERT INTO handoffs (id, conversation_id, state, reason, reason_detail, team, urgency, "
                          "urgency_rank, summary, context, created_at, updated_at) VALUES (1, 'c1', 'open', "
                          "'no_answer', '', 'billing', 'normal', 1, '', '{}', '2026-01-02 03:04:05', "
                          "'2026-01-02 03:04:05')"))
    db.migrate()
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT tier, required_skills, queued_at, created_at FROM handoffs")).one()
        assert row.tier == 1 and row.queued_at == row.created_at
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    _downgrade_all(db)
    db.migrate()
