"""``frontdesk train-urgency``, run in-process on the hash encoder and a temporary data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import cli
from nlu.urgency_model import UrgencyModel

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FRONTDESK_ENCODER__MODEL", "hash")
    monkeypatch.setenv("FRONTDESK_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(tmp_path)  # no stray .env is read


def test_train_urgency_saves_a_model_and_reports_validation(tickets_file: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train-urgency", str(tickets_file)]) == 0
    out, err = capsys.readouterr()
    default = tmp_path / "var" / "models" / "urgency.npz"
    assert "urgency model urg-" in out and "low 40, normal 40, high 40" in out
    assert "validation (5-fold cross-validation), rules + model: macro-F1" in out
    assert f"FRONTDESK_URGENCY__MODEL_PATH={default}" in out
    assert "Encoding examples" in err  # the progress bar
    assert UrgencyModel.load(default).encoder == "hash-384"

    chosen = tmp_path / "elsewhere" / "mine.npz"
    assert cli.main(["train-urgency", str(tickets_file), "--out", str(chosen), "--min-high-recall", "0"]) == 0
    assert UrgencyModel.load(chosen).meta["min_high_recall"] == 0.0


def test_train_urgency_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "priority": "high"}\n{"text": "hm", "priority": "soonish"}\n')
    assert cli.main(["train-urgency", str(bad)]) == 2
    assert f"error: {bad}:2: priority 'soonish'" in capsys.readouterr().err
