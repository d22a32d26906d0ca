"""Persistence: SQLAlchemy 2 tables, Alembic migrations and repositories (SQLite or PostgreSQL)."""
