"""Engine, sessions and migrations for SQLite (default) or PostgreSQL (``DATABASE_URL``)."""

from __future__ import annotations

import fcntl
import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_SECONDS = 30


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, echo: bool = False, pool_size: int = 20, max_overflow: int = 10) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS}
        else:
            # A database that does not answer must fail a request quickly (a 503), not hang it. No ping before
            # each use (a round trip per transaction, measured at a sixth of the database time of a turn): after a
            # restart the first statement on each stale connection fails, SQLAlchemy drops the whole pool, and that
            # request is answered 503 (clients retry); TCP keepalives notice a peer that vanished silently.
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=10, pool_use_lifo=True,
                          connect_args={"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 30,
                                        "keepalives_interval": 10, "keepalives_count": 3})
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that write
            # transactions can say "BEGIN IMMEDIATE" and take the write lock up front.
            event.listen(self.engine, "begin", _sqlite_begin)
        self._write_engine = self.engine.execution_options(write=True)
        self.sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. This process's writers queue on a lock: SQLite's busy handler
        # instead sleeps with growing back-off (up to 100 ms a nap) and hands the write lock over late, which
        # under load made the p99 of a turn several times its median (docs/performance.md). Other processes
        # still meet the busy timeout.
        self._write_lock = threading.RLock() if self.dialect == "sqlite" else None
        self._memory_lock = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error.

        On SQLite it starts with BEGIN IMMEDIATE, so a writer never fails by upgrading a read lock, and it
        first waits for the other write transactions of this process.
        """
        if self._write_lock is None:
            with self.sessions() as session, session.begin():
                yield session
            return
        # Bounded like the busy timeout: past it, go on and let SQLite's own busy handling decide.
        locked = self._write_lock.acquire(timeout=SQLITE_BUSY_SECONDS)
        try:
            with self.sessions() as session, session.begin():
                yield session
        finally:
            if locked:
                self._write_lock.release()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction on a plain connection, without the ORM's unit of work (the per-turn paths, where
        its bookkeeping cost more CPU than the SQL); committed on success, serialized on SQLite as sessions are."""
        if self._write_lock is None:
            with self._write_engine.begin() as conn:
                yield conn
            return
        locked = self._write_lock.acquire(timeout=SQLITE_BUSY_SECONDS)
        try:
            with self._write_engine.begin() as conn:
                yield conn
        finally:
            if locked:
                self._write_lock.release()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read-only transaction on a plain connection (see :meth:`begin`)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: never takes SQLite's write lock (WAL readers do not block writers)."""
        with self.read_sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; processes starting together take turns."""
        from alembic import command

        with self.exclusive("migrate"), self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold a lock named ``name`` that every process using this database respects (waits for it).

        PostgreSQL: a session advisory lock on a connection held for the block (released if the process
        dies). SQLite: an exclusive ``flock`` on a file next to the database (also released by the kernel).
        """
        if self.dialect == "postgresql":
            key = zlib.crc32(f"frontdesk:{name}".encode()) - 2**31  # a stable signed 32-bit key
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    conn.commit()
            return
        database = make_url(self.url).database
        if not database or database == ":memory:":
            with self._memory_lock:
                yield
            return
        path = Path(f"{database}.{name}.lock")
        with path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not ready"
            log.warning("database ping failed", exc_info=True)
            return False

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def alembic_config(url: str) -> Any:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # autocommit at the driver; SQLAlchemy emits BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    writes = connection.get_execution_options().get("write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def rowcount(result: Any) -> int:
    """Rows touched by an UPDATE/DELETE (typed access to ``CursorResult.rowcount``)."""
    return int(getattr(result, "rowcount", 0) or 0)
