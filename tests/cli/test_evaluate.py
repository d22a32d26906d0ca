"""``frontdesk evaluate`` on tiny labelled sets with the hash encoder: report, cache, refusals."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

import cli

pytestmark = pytest.mark.unit

TOPICS = {
    "cancel": ["cancel my subscription", "stop my premium plan", "end my membership now", "cancel premium please",
               "i want to cancel", "please stop my subscription", "cancel the plan today", "end premium membership",
               "cancel it all", "stop charging me for premium"],
    "password": ["reset my password", "forgot my password", "password reset link", "cannot remember password",
                 "change my password", "new password please", "my password does not work", "reset password mail",
                 "password help", "lost my password"],
    "device": ["speaker will not connect", "bluetooth speaker pairing", "tv app not connecting", "connect to my car",
               "speaker connection drops", "pair my bluetooth headphones", "car stereo will not connect",
               "tv will not pair", "bluetooth keeps dropping", "my speaker is not found"],
}
TEST = [("cancel premium now", "cancel"), ("password reset please", "password"), ("bluetooth will not pair", "device"),
        ("stop my plan", "cancel"), ("forgot password again", "password"), ("car will not connect", "device")]
OOS = ["what is the capital of peru", "recipe for banana bread", "who won the football match"]


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FRONTDESK_ENCODER__MODEL", "hash")
    monkeypatch.setenv("FRONTDESK_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("FRONTDESK_NLU__VALIDATION_FOLDS", "3")
    monkeypatch.chdir(tmp_path)


def _jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _dataset(tmp_path: Path) -> Path:
    rows: list[dict[str, object]] = [{"text": t, "label": i, "split": "train"} for i, ts in TOPICS.items() for t in ts]
    rows += [{"text": t, "label": i, "split": "test"} for t, i in TEST]
    rows += [{"text": t, "label": "oos", "split": "test", "is_oos": True} for t in OOS]
    return _jsonl(tmp_path / "tiny.jsonl", rows)


def test_evaluates_a_jsonl_set_and_writes_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path)
    out = tmp_path / "report"
    assert cli.main(["evaluate", str(data), "--method", "linear", "--method", "knn", "--out", str(out),
                     "--latency-samples", "5"]) == 0
    captured = capsys.readouterr()
    assert "[linear] top-1 accuracy" in captured.out and "[knn] top-1 accuracy" in captured.out
    assert "out-of-scope recall" in captured.out and "worst confusions" in captured.out
    assert "per message: encode" in captured.out and "ambiguous (margin <" in captured.out
    assert "Training linear" in captured.err and "Encoding tiny.jsonl" in captured.err  # progress bars
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sizes"] == {"train": 30, "train_oos": 0, "valid": 0, "test": 9, "test_oos": 3}
    assert summary["validation"] == "3-fold cross-fitting of train"
    linear = summary["methods"][0]
    assert linear["method"] == "linear" and linear["metrics"]["examples"] == 9
    assert linear["closed_set_accuracy"] >= 5 / 6
    assert linear["oos_threshold"]["in_scope_examples"] == 30  # chosen on folds of train, never on test
    assert linear["latency_ms"]["samples"] == 5
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "data-cache").glob("*.npy"))  # vectors cached for the next run


def test_uses_a_valid_split_for_calibration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[dict[str, object]] = [{"text": t, "label": i, "split": "train" if n < 7 else "valid"}
                                     for i, ts in TOPICS.items() for n, t in enumerate(ts)]
    rows += [{"text": t, "label": i, "split": "test"} for t, i in TEST]
    rows += [{"text": "weather tomorrow", "label": "oos", "split": "valid"}]
    data = _jsonl(tmp_path / "valid.jsonl", rows)
    assert cli.main(["evaluate", str(data), "--out", str(tmp_path / "r"), "--latency-samples", "2"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["validation"] == "the valid split" and summary["sizes"]["valid"] == 10
    assert summary["methods"][0]["oos_threshold"]["in_scope_examples"] == 9
    assert summary["methods"][0]["oos_threshold"]["oos_examples"] == 1
    assert "the valid split" in capsys.readouterr().out


def test_evaluates_an_nlu_yml_with_held_out_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text('version: "3.1"\nnlu:\n' + "".join(
        f"- intent: {i}\n  examples: |\n" + "".join(f"    - {t}\n" for t in ts) for i, ts in TOPICS.items()))
    test = _jsonl(tmp_path / "heldout.jsonl", [{"text": t, "intent": i} for t, i in TEST])
    oos = _jsonl(tmp_path / "oos.jsonl", [{"text": t} for t in OOS])
    out = tmp_path / "yml-report"
    assert cli.main(["evaluate", str(nlu), "--test", str(test), "--oos-test", str(oos), "--out", str(out),
                     "--latency-samples", "3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "nlu.yml" and summary["sizes"]["test"] == 9 and summary["sizes"]["test_oos"] == 3
    assert summary["methods"][0]["method"] == "linear"  # the configured default
    assert "[linear]" in capsys.readouterr().out
    # Without test files a slice of the data is held out, and the report says so.
    assert cli.main(["evaluate", str(nlu), "--out", str(tmp_path / "r2"), "--latency-samples", "1"]) == 0
    assert "was held out as test" in capsys.readouterr().out


def test_refuses_data_it_cannot_learn_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = _jsonl(tmp_path / "one.jsonl", [{"text": t, "label": "cancel", "split": "train"} for t in TOPICS["cancel"]]
                 + [{"text": "stop it", "label": "cancel", "split": "test"}])
    assert cli.main(["evaluate", str(one)]) == 2
    assert "needs at least two intents, found 1 (cancel)" in capsys.readouterr().err
    thin = _jsonl(tmp_path / "thin.jsonl", [{"text": t, "label": "cancel", "split": "train"} for t in TOPICS["cancel"]]
                  + [{"text": "reset my password", "label": "password", "split": "train"},
                     {"text": "stop it", "label": "cancel", "split": "test"}])
    assert cli.main(["evaluate", str(thin)]) == 2
    assert "intents with fewer than 2 examples: password (1)" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "hi", "label": "greet"}\n{"text": "oops", "label": \n')
    assert cli.main(["evaluate", str(broken)]) == 2
    assert f"{broken}:2: invalid JSON" in capsys.readouterr().err
