"""The learned urgency model: training from JSONL, saving without pickle, loading, combining with the rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from domain.enums import Urgency
from domain.errors import ConfigurationError, SourceFileError, ValidationError
from domain.models import IntentPrediction
from knowledge_index.encoder import HashEncoder
from nlu.urgency import RuleUrgencyScorer, UrgencyContext
from nlu.urgency_model import LearnedUrgencyScorer, UrgencyModel, build_urgency_scorer
from nlu.urgency_training import read_labelled, train_from_jsonl
from settings import UrgencySettings
from tests.nlu_urgency.conftest import synthetic_tickets

pytestmark = pytest.mark.unit

ENCODER = HashEncoder(384)
NO_INTENT = IntentPrediction(None, 0.0, (), True, "test")


def _train(tickets_file: Path, out: Path) -> UrgencyModel:
    report = train_from_jsonl(tickets_file, ENCODER, RuleUrgencyScorer({}), out, min_high_recall=0.9)
    assert report.path == out and out.exists()
    assert report.validation["combined_high_recall"] >= 0.9
    assert report.validation["model_macro_f1"] >= 0.9  # the wording decides the label here
    return report.model


def test_train_save_load_round_trip(tickets_file: Path, tmp_path: Path) -> None:
    model = _train(tickets_file, tmp_path / "urgency.npz")
    with np.load(tmp_path / "urgency.npz", allow_pickle=False) as data:  # plain arrays, no pickled objects
        assert set(data.files) == {"coef", "intercept", "mean", "scale", "meta"}
        meta = json.loads(str(data["meta"]))
    assert meta["encoder"] == "hash-384" and meta["counts"] == {"low": 40, "normal": 40, "high": 40}
    loaded = UrgencyModel.load(tmp_path / "urgency.npz")
    assert loaded.version == model.version and loaded.thresholds == model.thresholds
    vectors = ENCODER.encode(["servers unreachable, orders lost since 7"])
    features = np.zeros((1, len(model.features)), dtype=np.float32)
    np.testing.assert_allclose(loaded.probabilities(vectors, features), model.probabilities(vectors, features))


def test_learned_levels_come_with_a_reason_and_the_rules_keep_theirs(tickets_file: Path, tmp_path: Path) -> None:
    _train(tickets_file, tmp_path / "urgency.npz")
    scorer = build_urgency_scorer({"greet": Urgency.LOW, "account_compromised": Urgency.HIGH}, ENCODER,
                                  UrgencySettings(model_path=str(tmp_path / "urgency.npz")))
    assert isinstance(scorer, LearnedUrgencyScorer)
    high = scorer.assess("production database is down and 5000 users cannot work", NO_INTENT, UrgencyContext())
    assert high.level == Urgency.HIGH
    assert high.reasons[0].startswith("similar tickets were high priority (p=0.")
    assert any("outage ('is down')" in r for r in high.reasons)  # the rule's reason stays
    low = scorer.assess("no rush, question about invoice layout 12", NO_INTENT, UrgencyContext())
    assert low.level == Urgency.LOW and low.reasons[0].startswith("similar tickets were low priority")
    assert 0 <= low.score < 0.25 <= high.score - 0.25
    safety = scorer.assess("no rush, but I want to end my life", NO_INTENT, UrgencyContext())
    assert safety.level == Urgency.CRITICAL
    prior = scorer.assess("just curious whether feature 3 exists", IntentPrediction(
        "account_compromised", 0.9, (("account_compromised", 0.9),), False, "t"), UrgencyContext())
    assert prior.level == Urgency.HIGH and "intent 'account_compromised' is high priority by default" in prior.reasons
    waited = scorer.assess("no rush, question about invoice layout 12", NO_INTENT,
                           UrgencyContext(waiting_seconds=7200))
    assert waited.level == Urgency.NORMAL and any("waiting 2 h 00 min" in r for r in waited.reasons)


def test_the_answer_field_is_never_read(tickets_file: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in tickets_file.read_text().splitlines()]
    texts, levels = read_labelled(tickets_file)
    assert len(texts) == 120 and sorted(set(levels.tolist())) == [0, 1, 2]
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({**r, "answer": "the opposite"}) + "\n" for r in rows))
    first = _train(tickets_file, tmp_path / "a.npz")
    second = _train(other, tmp_path / "b.npz")
    assert first.version == second.version


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", ":2: not JSON"),
        ('{"priority": "high"}', ":2: no 'text'"),
        ('{"text": "hi", "priority": "whenever"}', ":2: priority 'whenever' is not one of"),
    ],
)
def test_bad_lines_are_refused_with_their_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "ok", "priority": "low"}\n' + line + "\n")
    with pytest.raises(SourceFileError, match=message):
        read_labelled(path)


def test_too_few_tickets_per_level_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rows = [*[r for r in synthetic_tickets() if r["priority"] != "low"][:60], {"text": "x", "priority": "low"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValidationError, match=r"low \(1\)"):
        train_from_jsonl(path, ENCODER, RuleUrgencyScorer({}), None)


def test_two_levels_are_enough(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in synthetic_tickets() if r["priority"] != "low"))
    report = train_from_jsonl(path, ENCODER, RuleUrgencyScorer({}), tmp_path / "m.npz")
    probs = report.model.probabilities(ENCODER.encode(["printer 4 needs a driver update"]),
                                       np.zeros((1, len(report.model.features))))
    assert probs[0, 0] < 1e-6 and probs[0, 1] > 0.5  # low never comes out of a model that never saw it


def test_a_model_that_does_not_fit_the_running_setup_is_refused(tickets_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "urgency.npz"
    _train(tickets_file, path)
    with pytest.raises(ConfigurationError, match="trained on vectors of 'hash-384'"):
        build_urgency_scorer({}, HashEncoder(64), UrgencySettings(model_path=str(path)))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigurationError, match="cannot load the urgency model"):
        build_urgency_scorer({}, ENCODER, UrgencySettings(model_path=str(tmp_path / "broken.npz")))
    with pytest.raises(ConfigurationError, match="cannot load the urgency model"):
        build_urgency_scorer({}, ENCODER, UrgencySettings(model_path=str(tmp_path / "missing.npz")))


def test_without_a_model_the_rules_alone_serve_and_the_hash_encoder_gets_no_semantics() -> None:
    scorer = build_urgency_scorer({}, ENCODER, UrgencySettings())
    assert isinstance(scorer, RuleUrgencyScorer) and scorer.semantic is None


def test_settings_refuse_a_very_long_wait_below_the_long_one() -> None:
    with pytest.raises(ValueError, match="very_long_wait_minutes"):
        UrgencySettings(long_wait_minutes=30, very_long_wait_minutes=10)
