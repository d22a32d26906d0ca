"""The linear intent classifier: training checks, out-of-scope rule, persistence and versioning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domain.errors import SourceFileError, ValidationError
from knowledge_index.encoder import HashEncoder
from nlu.intent import LinearIntentClassifier, OutOfScopeRule, check_training_data, model_version
from nlu.training import load_or_train

pytestmark = pytest.mark.unit

PAIRS = [
    ("cancel my subscription", "cancel"), ("stop my premium plan", "cancel"), ("end my membership now", "cancel"),
    ("cancel premium please", "cancel"),
    ("reset my password", "password"), ("forgot my password", "password"), ("password reset link", "password"),
    ("cannot remember password", "password"),
    ("speaker will not connect", "device"), ("bluetooth speaker pairing", "device"),
    ("tv app not connecting", "device"), ("connect to my car", "device"),
]


def _train(encoder: HashEncoder, oos: OutOfScopeRule | None = None) -> LinearIntentClassifier:
    texts = [t for t, _ in PAIRS]
    return LinearIntentClassifier.train(texts, [i for _, i in PAIRS], encoder.encode(texts), "v-test",
                                        oos or OutOfScopeRule(0.0, 0.0))


def test_predicts_known_intents_with_a_ranking(hash_encoder: HashEncoder) -> None:
    model = _train(hash_encoder)
    text = "please cancel my premium subscription"
    prediction = model.predict(text, hash_encoder.encode([text])[0])
    assert prediction.intent == "cancel"
    assert not prediction.out_of_scope
    assert prediction.ranking[0][0] == "cancel"
    assert sorted(name for name, _ in prediction.ranking) == ["cancel", "device", "password"]
    assert sum(p for _, p in prediction.ranking) == pytest.approx(1.0, abs=1e-5)
    assert prediction.margin == pytest.approx(prediction.ranking[0][1] - prediction.ranking[1][1])
    assert prediction.model_version == "v-test"


def test_out_of_scope_by_similarity_or_confidence(hash_encoder: HashEncoder) -> None:
    model = _train(hash_encoder, OutOfScopeRule(min_confidence=0.0, min_similarity=0.3))
    text = "what is the capital of peru"
    far = model.predict(text, hash_encoder.encode([text])[0])
    assert far.out_of_scope and far.intent is None and far.top_intent is not None
    strict = _train(hash_encoder, OutOfScopeRule(min_confidence=0.999, min_similarity=-1.0))
    text = "reset my password"
    assert strict.predict(text, hash_encoder.encode([text])[0]).out_of_scope


def test_training_data_checks() -> None:
    with pytest.raises(ValidationError, match="at least two intents, found 1"):
        check_training_data([("a", "x"), ("b", "x")])
    with pytest.raises(ValidationError, match=r"fewer than 3 examples: lonely \(1\)"):
        check_training_data([("a", "x"), ("b", "x"), ("c", "x"), ("d", "lonely")], min_examples=3)
    assert check_training_data(PAIRS, 4) == {"cancel": 4, "password": 4, "device": 4}


def test_version_changes_with_data_encoder_and_params() -> None:
    base = model_version(PAIRS, "enc", {"C": 1.0})
    assert base == model_version(list(reversed(PAIRS)), "enc", {"C": 1.0})
    assert base != model_version(PAIRS[:-1], "enc", {"C": 1.0})
    assert base != model_version(PAIRS, "other", {"C": 1.0})
    assert base != model_version(PAIRS, "enc", {"C": 2.0})


def test_save_load_round_trip(hash_encoder: HashEncoder, tmp_path: Path) -> None:
    model = _train(hash_encoder)
    model.save(tmp_path)
    loaded = LinearIntentClassifier.load(tmp_path, "v-test", model.oos)
    assert loaded is not None and loaded.intents == model.intents
    vectors = hash_encoder.encode(["my bluetooth speaker", "forgot password"])
    assert np.allclose(loaded.probabilities(vectors), model.probabilities(vectors))
    assert LinearIntentClassifier.load(tmp_path, "missing", model.oos) is None
    (tmp_path / "broken.npz").write_bytes(b"not an npz")
    assert LinearIntentClassifier.load(tmp_path, "broken", model.oos) is None


def test_load_or_train_reuses_the_saved_model(hash_encoder: HashEncoder, tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    body = "".join(f"- intent: {i}\n  examples: |\n" + "".join(f"    - {t}\n" for t, j in PAIRS if j == i)
                   for i in ("cancel", "password", "device"))
    nlu.write_text('version: "3.1"\nnlu:\n' + body)
    first = load_or_train(nlu, hash_encoder, tmp_path / "models", OutOfScopeRule())
    files = sorted(p.name for p in (tmp_path / "models").iterdir())
    second = load_or_train(nlu, hash_encoder, tmp_path / "models", OutOfScopeRule())
    assert second.version == first.version and files == [f"{first.version}.npz"]
    nlu.write_text(nlu.read_text() + "    - connect my watch\n")
    assert load_or_train(nlu, hash_encoder, tmp_path / "models", OutOfScopeRule()).version != first.version


def test_load_or_train_refuses_bad_data(hash_encoder: HashEncoder, tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text("nlu:\n- intent: only\n  examples: |\n    - one\n    - two\n")
    with pytest.raises(ValidationError, match="at least two intents"):
        load_or_train(nlu, hash_encoder, tmp_path, OutOfScopeRule())
    nlu.write_text("nlu:\n- intent: a\n  examples: |\n    - one\n- intent: b\n  examples: [\n")
    with pytest.raises(SourceFileError, match=r"nlu.yml:7: invalid YAML"):
        load_or_train(nlu, hash_encoder, tmp_path, OutOfScopeRule())


def test_a_bad_file_in_a_training_folder_is_skipped(hash_encoder: HashEncoder, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for intent in ("cancel", "password", "device"):
        lines = "".join(f"    - {t}\n" for t, j in PAIRS if j == intent)
        (folder / f"{intent}.yml").write_text(f"nlu:\n- intent: {intent}\n  examples: |\n{lines}")
    (folder / "broken.yml").write_text("nlu:\n- intent: x\n  examples: [\n")
    model = load_or_train(folder, hash_encoder, tmp_path / "models", OutOfScopeRule())
    assert sorted(model.intents) == ["cancel", "device", "password"]
    assert any("broken.yml:" in r.getMessage() for r in caplog.records)


def test_latest_finds_the_newest_model(hash_encoder: HashEncoder, tmp_path: Path) -> None:
    assert LinearIntentClassifier.latest(tmp_path / "none", OutOfScopeRule()) is None
    model = _train(hash_encoder)
    model.version = "lin-aaaa"
    model.save(tmp_path)
    latest = LinearIntentClassifier.latest(tmp_path, OutOfScopeRule())
    assert latest is not None and latest.version == "lin-aaaa"
