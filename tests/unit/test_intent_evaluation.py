"""Evaluation metrics on hand-made predictions with known answers, and reading labelled sets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from domain.errors import SourceFileError, ValidationError
from knowledge_index.encoder import HashEncoder
from nlu.eval_report import most_confused
from nlu.labelled_data import LabelledExample, check_labelled, read_labelled, stratified_split
from nlu.metrics import Confusion, confusion_matrix, score_predictions
from nlu.vector_cache import encode_cached

pytestmark = pytest.mark.unit

#         gold        predicted
CASES = [("a", "a"), ("a", "a"), ("a", "b"), ("a", None),
         ("b", "b"), ("b", "a"),
         ("c", "c"), ("c", "c"),
         (None, None), (None, "a")]
GOLD = [g for g, _ in CASES]
PREDICTED = [p for _, p in CASES]


def test_accuracy_and_in_scope_accuracy() -> None:
    m = score_predictions(GOLD, PREDICTED)
    assert m.examples == 10
    assert m.accuracy == pytest.approx(6 / 10)  # a,a,b,c,c and the out-of-scope one
    assert m.in_scope_accuracy == pytest.approx(5 / 8)


def test_macro_f1_over_the_gold_intents() -> None:
    # a: tp 2, fp 2 (b->a, oos->a), fn 2 -> 4/8; b: tp 1, fp 1, fn 1 -> 2/4; c: perfect -> 1.
    assert score_predictions(GOLD, PREDICTED).macro_f1 == pytest.approx((0.5 + 0.5 + 1.0) / 3, abs=1e-4)


def test_out_of_scope_precision_recall_and_false_rate() -> None:
    m = score_predictions(GOLD, PREDICTED)
    assert m.oos_examples == 2
    assert m.oos_recall == pytest.approx(0.5)  # one of the two out-of-scope messages caught
    assert m.oos_precision == pytest.approx(0.5)  # of the two judged out of scope, one was
    assert m.false_oos_rate == pytest.approx(1 / 8)


def test_out_of_scope_figures_are_undefined_without_out_of_scope() -> None:
    m = score_predictions(["a", "b"], ["a", "a"])
    assert m.oos_recall is None and m.oos_precision is None and m.false_oos_rate == 0.0
    # Judging something out of scope when nothing is: precision 0, not undefined.
    assert score_predictions(["a", "b"], [None, "b"]).oos_precision == 0.0


def test_worst_confusion_pairs_first() -> None:
    m = score_predictions(["a", "a", "a", "b", "b", None], ["b", "b", "c", "a", "b", "a"], top=3)
    assert m.confusions == (Confusion("a", "b", 2), Confusion("a", "c", 1), Confusion("b", "a", 1))
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        score_predictions(["a", "b"], ["a"])


def test_confusion_matrix_and_the_most_confused_classes() -> None:
    names, counts = confusion_matrix(GOLD, PREDICTED)
    assert names == ["a", "b", "c", "out_of_scope"]
    assert counts.tolist() == [[2, 1, 0, 1], [1, 1, 0, 0], [0, 0, 2, 0], [1, 0, 0, 1]]
    assert [names[i] for i in most_confused(names, counts, 2)] == ["a", "b"]  # c is never confused
    assert len(most_confused(names, counts, 10)) == 3


def test_jsonl_labels_splits_and_out_of_scope(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "hi", "label": "greet", "split": "train"}\n\n'
                    '{"text": "weather?", "label": "oos", "split": "validation"}\n'
                    '{"text": "bye", "intent": "goodbye"}\n'
                    '{"text": "tax advice", "label": "anything", "is_oos": true, "split": "test"}\n')
    assert read_labelled(path) == [
        LabelledExample("hi", "greet", "train"), LabelledExample("weather?", None, "valid"),
        LabelledExample("bye", "goodbye", "all"), LabelledExample("tax advice", None, "test")]
    assert all(e.label is None for e in read_labelled(path, all_oos=True))


@pytest.mark.parametrize(("line", "reason"), [
    ('{"text": "hi", "label": "greet"', "invalid JSON"),
    ('["hi", "greet"]', "must be a JSON object"),
    ('{"label": "greet"}', "'text' must be a non-empty string"),
    ('{"text": "hi"}', "'label' (or 'intent') must be a non-empty string"),
    ('{"text": "hi", "label": "greet", "split": "later"}', "'split' must be one of"),
])
def test_malformed_lines_are_reported_with_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": "greet"}\n' + line + "\n")
    with pytest.raises(SourceFileError) as caught:
        read_labelled(path)
    assert str(caught.value).startswith(f"{path}:2: ") and reason in str(caught.value)


def test_rasa_yaml_is_a_labelled_set(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello\n"
                    "- intent: bye\n  examples: |\n    - bye [now](when)\n")
    assert read_labelled(path) == [LabelledExample("hi", "greet", "all"), LabelledExample("hello", "greet", "all"),
                                   LabelledExample("bye now", "bye", "all")]


def test_too_few_intents_or_examples_are_refused_by_name() -> None:
    one = [LabelledExample("hi", "greet", "train"), LabelledExample("hello", "greet", "train")]
    with pytest.raises(ValidationError, match=r"the set needs at least two intents, found 1 \(greet\)"):
        check_labelled(one, 2, "the set")
    thin = [*one, LabelledExample("bye", "goodbye", "train")]
    with pytest.raises(ValidationError, match=r"fewer than 2 examples: goodbye \(1\)"):
        check_labelled(thin, 2, "the set")
    assert check_labelled([*thin, LabelledExample("ciao", "goodbye", "train")], 2, "x") == {"greet": 2, "goodbye": 2}


def test_stratified_split_keeps_every_label() -> None:
    examples = [LabelledExample(f"{label} {i}", label, "all") for label in ("a", "b") for i in range(10)]
    examples.append(LabelledExample("solo", "c", "all"))
    kept, held = stratified_split(examples, 0.2, seed=1)
    assert sorted(e.label or "" for e in held) == ["a", "a", "b", "b"]
    assert {e.label for e in kept} == {"a", "b", "c"} and len(kept) + len(held) == len(examples)
    assert stratified_split(examples, 0.2, seed=1) == (kept, held)


class CountingEncoder:
    """The hash encoder, counting the texts it was asked to encode."""

    def __init__(self) -> None:
        self.inner = HashEncoder(32)
        self.name, self.dim = self.inner.name, self.inner.dim
        self.encoded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += len(texts)
        return self.inner.encode(texts)


def test_vectors_are_cached_per_encoder_and_texts(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    first = encode_cached(encoder, ["a b", "c d"], tmp_path)
    again = encode_cached(encoder, ["a b", "c d"], tmp_path)
    assert encoder.encoded == 2 and np.array_equal(first, again)
    encode_cached(encoder, ["a b", "c d", "e"], tmp_path)  # other texts: encoded afresh
    assert encoder.encoded == 5
    (next(tmp_path.glob("*-2-*.npy"))).write_bytes(b"garbage")
    assert np.array_equal(encode_cached(encoder, ["a b", "c d"], tmp_path), first) and encoder.encoded == 7
    encode_cached(encoder, ["a b"], None)  # caching off
    assert encoder.encoded == 8
