"""The held-out slice by text hash, and its scores: pure functions."""

from __future__ import annotations

import pytest

from nlu.heldout import MIN_TRAINING_PER_LABEL, heldout_position, heldout_scores, split_heldout
from tests.trainer.slice_texts import texts_at

pytestmark = pytest.mark.unit


def test_the_slice_depends_on_each_text_only() -> None:
    pairs = [(f"refund please {i}", "refund") for i in range(40)] + [(f"hello there {i}", "greet") for i in range(40)]
    split = split_heldout(pairs, (), 0.2)
    assert sorted(split.train_pairs + tuple((t, str(i)) for t, i in split.heldout)) == sorted(pairs)
    assert not split.heldout_texts & {t for t, _ in split.train_pairs}
    assert split.heldout_texts == {t for t, _ in pairs if heldout_position(t) < 0.2}
    assert 0 < len(split.heldout) < 40
    # Other data changes nothing for a text: no reshuffle when trainers add examples or nlu.yml grows.
    grown = split_heldout(pairs[::-1] + [(f"cancel it {i}", "cancel") for i in range(30)], (), 0.2)
    assert split.heldout_texts <= grown.heldout_texts
    assert {t for t in grown.heldout_texts if not t.startswith("cancel")} == split.heldout_texts
    assert split_heldout(pairs, (), 0.0).heldout == ()


def test_corrections_and_regression_cases_stay_in_training() -> None:
    inside = texts_at(6, "refund", inside=True)
    pairs = [(t, "refund") for t in inside + texts_at(10, "refund", inside=False)]
    pairs += [(t, "greet") for t in texts_at(10, "hi", inside=False)]
    split = split_heldout(pairs, (), 0.2, keep_in_training={inside[0], inside[1]})
    assert split.heldout_texts == set(inside[2:])


def test_every_label_keeps_training_examples() -> None:
    tiny = texts_at(3, "tiny", inside=True)  # all three fall in the slice
    pairs = [(t, "tiny") for t in tiny] + [(t, "greet") for t in texts_at(10, "hi", inside=False)]
    split = split_heldout(pairs, (), 0.2)
    assert sum(i == "tiny" for _, i in split.train_pairs) == MIN_TRAINING_PER_LABEL
    assert len(split.heldout) == len(tiny) - MIN_TRAINING_PER_LABEL
    # Which one is held out is decided by the hash too (deterministic).
    assert split_heldout(list(reversed(pairs)), (), 0.2).heldout_texts == split.heldout_texts


def test_out_of_scope_examples_are_held_out_too() -> None:
    oos_in, oos_out = texts_at(2, "gibberish", inside=True), texts_at(5, "gibberish", inside=False)
    pairs = [(t, "greet") for t in texts_at(10, "hi", inside=False)]
    split = split_heldout(pairs, oos_out + oos_in, 0.2)
    assert [t for t, i in split.heldout if i is None] == oos_in
    assert set(split.train_oos) == set(oos_out)


def test_scores() -> None:
    gold = ["a", "a", "b", None, None]
    predicted = ["a", None, "b", None, "a"]
    scores = heldout_scores(gold, predicted)
    assert scores["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["false_oos"] == pytest.approx(1 / 3, abs=1e-4)
    assert scores["oos_recall"] == 0.5
    # F1 over the in-scope gold labels: a = 2*1/(2+1+1) = 0.5, b = 1 -> 0.75
    assert scores["macro_f1"] == 0.75
    assert "oos_recall" not in heldout_scores(["a", "b"], ["a", "a"])
    assert heldout_scores([], []) == {"accuracy": None, "macro_f1": None, "false_oos": None}
