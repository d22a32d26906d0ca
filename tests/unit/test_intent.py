"""The intent model: training checks, cross-fitted calibration and thresholds, out of scope, persistence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from domain.errors import SourceFileError, ValidationError
from knowledge_index.encoder import HashEncoder
from nlu.calibration import fit_temperature
from nlu.fitting import FitConfig, HeldOut, fit_intent_head, fold_ids, in_scope_probabilities
from nlu.intent import IntentModel, check_training_data, latest_model, model_version
from nlu.thresholds import choose_ambiguous_margin, choose_oos_threshold
from nlu.training import load_or_train, train_model
from tests.fakes.model_files import MemoryModelFiles

pytestmark = pytest.mark.unit

TOPICS = {
    "cancel": ["cancel my subscription", "stop my premium plan", "end my membership now", "cancel premium please",
               "i want to cancel", "please stop my subscription", "cancel the plan today", "end premium membership"],
    "password": ["reset my password", "forgot my password", "password reset link", "cannot remember password",
                 "change my password", "new password please", "my password does not work", "reset password mail"],
    "device": ["speaker will not connect", "bluetooth speaker pairing", "tv app not connecting",
               "connect to my car", "speaker connection drops", "pair my bluetooth headphones",
               "car stereo will not connect", "tv will not pair"],
}
PAIRS = [(text, intent) for intent, texts in TOPICS.items() for text in texts]
UNRELATED = ["what is the capital of peru", "recipe for banana bread", "who won the football match",
             "weather in lisbon tomorrow", "translate hello into french", "how tall is mount everest"]
CONFIG = FitConfig(method="linear", folds=4)


def _train(encoder: HashEncoder, config: FitConfig = CONFIG, oos: list[str] | None = None) -> IntentModel:
    texts = [t for t, _ in PAIRS]
    oos = oos or []
    oos_vectors = encoder.encode(oos) if oos else np.zeros((0, encoder.dim), np.float32)
    return train_model(PAIRS, oos, encoder.encode(texts), oos_vectors, encoder.name, config)


@pytest.mark.parametrize("method", ["linear", "knn", "ensemble"])
def test_predicts_known_intents_with_a_ranking(hash_encoder: HashEncoder, method: str) -> None:
    model = _train(hash_encoder, replace(CONFIG, method=method))  # type: ignore[arg-type]
    text = "please cancel my premium subscription"
    prediction = model.predict(text, hash_encoder.encode([text])[0])
    assert prediction.intent == "cancel" and not prediction.out_of_scope
    assert sorted(name for name, _ in prediction.ranking) == ["cancel", "device", "password"]
    assert sum(p for _, p in prediction.ranking) == pytest.approx(1.0, abs=1e-5)  # no out-of-scope class
    assert prediction.margin == pytest.approx(prediction.ranking[0][1] - prediction.ranking[1][1])
    assert prediction.model_version == model.version and model.version.startswith(
        {"linear": "lin-", "knn": "knn-", "ensemble": "ens-"}[method])
    assert model.method == method


def test_folds_are_stratified_and_seeded() -> None:
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    folds = fold_ids(labels, 5, seed=1)
    for label in (0, 1):
        assert sorted(np.bincount(folds[labels == label], minlength=5)) == ([2] * 5 if label == 0 else [1] * 5)
    assert len(set(folds[labels == 2])) == 2  # a small class still spreads over two folds
    assert np.array_equal(folds, fold_ids(labels, 5, seed=1))


def test_threshold_and_temperature_come_from_the_held_out_split(hash_encoder: HashEncoder) -> None:
    """With a held-out split, the stored threshold is exactly the one its scores call for."""
    intents = sorted(TOPICS)
    train = [(t, i) for i, texts in TOPICS.items() for t in texts[:5]]
    held = [(t, i) for i, texts in TOPICS.items() for t in texts[5:]]
    x = hash_encoder.encode([t for t, _ in train])
    y = np.array([intents.index(i) for _, i in train])
    hx = hash_encoder.encode([t for t, _ in held])
    hy = np.array([intents.index(i) for _, i in held])
    config = replace(CONFIG, target_false_oos=0.2)
    fit = fit_intent_head(x, y, 3, np.zeros((0, x.shape[1]), np.float32), config, held_out=HeldOut(hx, hy))
    model = IntentModel.from_fit(intents, fit, "v")
    scores = model.oos_scores(hx)
    expected = choose_oos_threshold(scores, np.array([]), 0.2, config.max_false_oos)
    assert fit.oos.threshold == pytest.approx(expected.threshold)
    assert fit.oos.false_oos_rate <= 0.2 and fit.oos.in_scope_examples == len(held)
    probs = in_scope_probabilities(fit.head.logits(hx), fit.temperature, 3)
    top2 = -np.sort(-probs, axis=1)[:, :2]
    assert fit.ambiguous_margin == pytest.approx(choose_ambiguous_margin(
        top2[:, 0] - top2[:, 1], probs.argmax(axis=1) == hy, config.ambiguity_target_accuracy))
    assert fit.temperature == pytest.approx(fit_temperature(fit.head.logits(hx), hy), rel=1e-3)
    assert fit.report["validation"] == "held_out"


def test_a_higher_false_out_of_scope_target_gives_a_higher_threshold(hash_encoder: HashEncoder) -> None:
    strict = _train(hash_encoder, replace(CONFIG, target_false_oos=0.02))
    loose = _train(hash_encoder, replace(CONFIG, target_false_oos=0.3))
    assert strict.oos.rule == loose.oos.rule == "false_oos_target"
    assert loose.oos.threshold > strict.oos.threshold
    # Cross-fitting: every training example was scored once by a model that did not see it.
    assert strict.oos.in_scope_examples == len(PAIRS)
    assert strict.oos.false_oos_rate <= 0.02 and loose.oos.false_oos_rate <= 0.3
    assert strict.version != loose.version


def test_out_of_scope_from_in_scope_data_alone(hash_encoder: HashEncoder) -> None:
    model = _train(hash_encoder, replace(CONFIG, target_false_oos=0.1))
    assert not model.oos_class and model.oos.oos_examples == 0
    far = model.predict_many(hash_encoder.encode(UNRELATED))
    assert sum(p.out_of_scope for p in far) >= 4, [round(p.confidence, 3) for p in far]
    assert all(p.intent is None and p.top_intent is not None and not p.ambiguous for p in far if p.out_of_scope)
    near = ["cancel my premium", "reset the password", "bluetooth speaker not connecting"]
    assert [p.intent for p in model.predict_many(hash_encoder.encode(near))] == ["cancel", "password", "device"]


def test_out_of_scope_examples_train_a_class_and_choose_the_threshold(hash_encoder: HashEncoder) -> None:
    oos = ["what is the capital of france", "capital of spain", "banana bread recipe", "bread recipe please",
           "football match results", "who won the match", "weather tomorrow", "weather in paris"]
    model = _train(hash_encoder, replace(CONFIG, max_false_oos=0.1), oos=oos)
    assert model.oos_class and model.oos.rule == "best_f1" and model.oos.oos_examples == len(oos)
    assert model.oos.false_oos_rate <= 0.1
    assert model.oos.oos_recall is not None and model.oos.oos_recall >= 0.5
    unseen = ["what is the capital of peru", "recipe for banana bread", "who won the football match"]
    predictions = model.predict_many(hash_encoder.encode(unseen))
    assert all(p.out_of_scope for p in predictions), [round(p.confidence, 3) for p in predictions]
    assert all(sum(q for _, q in p.ranking) < 0.9 for p in predictions)  # the rest is "none of these"
    assert model.version != _train(hash_encoder, replace(CONFIG, max_false_oos=0.1)).version


@pytest.mark.parametrize("method", ["linear", "knn", "ensemble"])
def test_a_single_out_of_scope_example_only_moves_the_threshold(hash_encoder: HashEncoder, method: str) -> None:
    model = _train(hash_encoder, replace(CONFIG, method=method), oos=["weather in paris"])  # type: ignore[arg-type]
    assert not model.oos_class and model.oos.rule == "best_f1" and model.oos.oos_examples == 1
    assert model.oos.in_scope_examples == len(PAIRS)


def test_ambiguity_is_flagged_below_the_validated_margin(hash_encoder: HashEncoder) -> None:
    model = _train(hash_encoder)
    model.oos = replace(model.oos, threshold=0.0)
    blend = "cancel my password"
    vector = hash_encoder.encode([blend])[0]
    margin = model.predict(blend, vector).margin
    model.ambiguous_margin = margin + 0.01  # as if validation had found such close calls unreliable
    prediction = model.predict(blend, vector)
    assert prediction.ambiguous and not prediction.out_of_scope and prediction.intent is not None
    model.ambiguous_margin = margin - 0.01
    assert not model.predict(blend, vector).ambiguous


def test_training_data_checks() -> None:
    with pytest.raises(ValidationError, match="at least two intents, found 1"):
        check_training_data([("a", "x"), ("b", "x")])
    with pytest.raises(ValidationError, match=r"fewer than 3 examples: lonely \(1\)"):
        check_training_data([("a", "x"), ("b", "x"), ("c", "x"), ("d", "lonely")], min_examples=3)
    assert check_training_data(PAIRS, 4) == {"cancel": 8, "password": 8, "device": 8}


def test_version_changes_with_data_encoder_params_and_oos_examples() -> None:
    base = model_version(PAIRS, "enc", {"C": 1.0})
    assert base == model_version(list(reversed(PAIRS)), "enc", {"C": 1.0})
    assert base != model_version(PAIRS[:-1], "enc", {"C": 1.0})
    assert base != model_version(PAIRS, "other", {"C": 1.0})
    assert base != model_version(PAIRS, "enc", {"C": 2.0})
    assert base != model_version(PAIRS, "enc", {"C": 1.0}, oos_texts=["weather"])


@pytest.mark.parametrize("method", ["linear", "knn", "ensemble"])
def test_save_load_round_trip_without_pickle(hash_encoder: HashEncoder, tmp_path: Path, method: str) -> None:
    model = _train(hash_encoder, replace(CONFIG, method=method), oos=["weather today", "weather tomorrow"])  # type: ignore[arg-type]
    path = model.save(tmp_path)
    with np.load(path, allow_pickle=False) as data:
        assert "meta" in data.files
    loaded = IntentModel.load(tmp_path, model.version)
    assert loaded is not None and loaded.intents == model.intents and loaded.method == method
    assert loaded.oos == model.oos and loaded.temperature == model.temperature and loaded.oos_class
    vectors = hash_encoder.encode(["my bluetooth speaker", "forgot password", "weather"])
    assert np.allclose(loaded.probabilities(vectors), model.probabilities(vectors))
    assert IntentModel.load(tmp_path, "missing") is None
    (tmp_path / "broken.npz").write_bytes(b"not an npz")
    assert IntentModel.load(tmp_path, "broken") is None
    np.savez(tmp_path / "lin-old.npz", classes=np.array(["a"]), coef=np.zeros((1, 2)))  # the old format
    assert IntentModel.load(tmp_path, "lin-old") is None


def test_latest_finds_the_newest_readable_model(hash_encoder: HashEncoder) -> None:
    files = MemoryModelFiles()
    assert latest_model(files) is None
    model = _train(hash_encoder)
    files.put(model.version, model.to_bytes())
    files.put("lin-unreadable", b"not a model file")
    latest = latest_model(files)
    assert latest is not None and latest.version == model.version


def _write_nlu(path: Path, extra: str = "") -> None:
    body = "".join(f"- intent: {i}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
                   for i, texts in TOPICS.items())
    path.write_text('version: "3.1"\nnlu:\n' + body + extra)


def test_load_or_train_reuses_the_saved_model(hash_encoder: HashEncoder, tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    _write_nlu(nlu)
    files = MemoryModelFiles()
    first = load_or_train(nlu, hash_encoder, files, CONFIG)
    second = load_or_train(nlu, hash_encoder, files, CONFIG)
    assert second.version == first.version and files.versions() == [first.version]
    assert load_or_train(nlu, hash_encoder, files, replace(CONFIG, folds=3)).version != first.version
    nlu.write_text(nlu.read_text() + "    - connect my watch\n")
    assert load_or_train(nlu, hash_encoder, files, CONFIG).version != first.version


def test_load_or_train_refuses_bad_data(hash_encoder: HashEncoder, tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text("nlu:\n- intent: only\n  examples: |\n    - one\n    - two\n")
    with pytest.raises(ValidationError, match="at least two intents"):
        load_or_train(nlu, hash_encoder, MemoryModelFiles(), CONFIG)
    nlu.write_text("nlu:\n- intent: a\n  examples: |\n    - one\n- intent: b\n  examples: [\n")
    with pytest.raises(SourceFileError, match=r"nlu.yml:7: invalid YAML"):
        load_or_train(nlu, hash_encoder, MemoryModelFiles(), CONFIG)


def test_a_bad_file_in_a_training_folder_is_skipped(hash_encoder: HashEncoder, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for intent, texts in TOPICS.items():
        lines = "".join(f"    - {t}\n" for t in texts)
        (folder / f"{intent}.yml").write_text(f"nlu:\n- intent: {intent}\n  examples: |\n{lines}")
    (folder / "broken.yml").write_text("nlu:\n- intent: x\n  examples: [\n")
    model = load_or_train(folder, hash_encoder, MemoryModelFiles(), CONFIG)
    assert sorted(model.intents) == ["cancel", "device", "password"]
    assert any("broken.yml:" in r.getMessage() for r in caplog.records)
