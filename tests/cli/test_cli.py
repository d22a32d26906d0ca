"""The ``frontdesk`` command line, run in-process on the hash encoder and a temporary data folder."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

import cli
from settings import DEMO_DIR

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FRONTDESK_ENCODER__MODEL", "hash")
    monkeypatch.setenv("FRONTDESK_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(tmp_path)  # no stray .env is read


def test_import_reports_bad_files_and_imports_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "ok.md").write_text("---\nid: ok\ntitle: Fine\n---\nGood text.\n")
    (folder / "bad.md").write_text("---\nid: bad\n---\nno title\n")
    assert cli.main(["import-articles", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert "1 created" in out and "1 with problems" in out
    assert f"skipped {folder / 'bad.md'}:2: front matter has no 'title'" in err
    assert "Importing articles" in err  # the progress bar
    assert cli.main(["search", "good text", "-k", "1"]) == 0
    assert "ok" in capsys.readouterr().out


def test_init_seeds_indexes_and_trains(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["init"]) == 0
    out = capsys.readouterr().out
    assert "database: sqlite; articles: 55" in out and "25 intents" in out
    # Vectors and the model live in the database, so every process (on any host) can load them.
    with sqlite3.connect(tmp_path / "var" / "frontdesk.db") as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE vector IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM model_files").fetchone()[0] >= 1
    assert (tmp_path / "var" / "admin-password.txt").stat().st_mode & 0o777 == 0o600


def test_add_user_and_bad_training_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli.main(["add-user", "sam", "--role", "agent", "--role", "editor", "--password-stdin"]) == 0
    assert "added sam with roles agent, editor" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["add-user", "tim", "--role", "agent", "--password-stdin"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    bad = tmp_path / "nlu.yml"
    bad.write_text("nlu:\n- intent: a\n  examples: |\n    - x\n  oops: [\n")
    monkeypatch.setenv("FRONTDESK_NLU__TRAINING_DATA", str(bad))
    assert cli.main(["train"]) == 2
    assert f"{bad}:" in capsys.readouterr().err
    monkeypatch.setenv("FRONTDESK_NLU__TRAINING_DATA", str(DEMO_DIR / "nlu" / "nlu.yml"))
    assert cli.main(["train"]) == 0
