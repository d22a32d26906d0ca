"""Temperature scaling and thresholds chosen on validation scores, on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.calibration import expected_calibration_error, fit_temperature, nll, softmax
from nlu.oos_score import TypicalityReference
from nlu.thresholds import choose_ambiguous_margin, choose_oos_threshold

pytestmark = pytest.mark.unit


def _sampled(temperature: float, n: int = 4000, classes: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature): the right temperature is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, classes))
    probs = softmax(logits, temperature)
    labels = np.array([rng.choice(classes, p=p) for p in probs])
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_the_true_temperature(true_t: float) -> None:
    logits, labels = _sampled(true_t)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.1)
    assert nll(logits, labels, fitted) <= nll(logits, labels, 1.0) + 1e-9


def test_temperature_scaling_reduces_calibration_error() -> None:
    logits, labels = _sampled(2.5, seed=1)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, fit_temperature(logits, labels)), labels)
    assert before > 0.1 and after < 0.03


def test_expected_calibration_error_of_known_cases() -> None:
    # Always 80% sure, right 4 times out of 5: perfectly calibrated.
    probs = np.array([[0.8, 0.2]] * 5)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 0, 1])) == pytest.approx(0.0)
    # Always 80% sure, never right: off by 0.8.
    assert expected_calibration_error(probs, np.array([1] * 5)) == pytest.approx(0.8)


def test_nothing_to_fit_keeps_the_logits() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0


def test_threshold_keeps_the_false_out_of_scope_rate_at_the_target() -> None:
    in_scores = np.arange(1, 101) / 100  # 0.01 .. 1.00
    choice = choose_oos_threshold(in_scores, np.array([]), target_false_oos=0.03, max_false_oos=0.1)
    assert choice.rule == "false_oos_target"
    assert 0.03 < choice.threshold < 0.04  # exactly 0.01, 0.02, 0.03 fall below
    assert choice.false_oos_rate == pytest.approx(0.03)
    assert choice.oos_recall is None and choice.in_scope_examples == 100
    wider = choose_oos_threshold(in_scores, np.array([]), target_false_oos=0.10, max_false_oos=0.1)
    assert 0.10 < wider.threshold < 0.11 and wider.false_oos_rate == pytest.approx(0.10)


def test_with_out_of_scope_examples_the_best_f1_within_the_cap_wins() -> None:
    in_scores = np.array([0.30, 0.55, 0.60, 0.70, 0.80, 0.85, 0.90, 0.92, 0.95, 0.99])
    oos_scores = np.array([0.10, 0.20, 0.35, 0.50, 0.65])
    # Below 0.52: catches 4 of 5 with one in-scope lost (F1 = 1.6 / 1.9); below 0.66 would catch all 5 but lose 3.
    choice = choose_oos_threshold(in_scores, oos_scores, target_false_oos=0.03, max_false_oos=0.25)
    assert choice.rule == "best_f1"
    assert 0.50 < choice.threshold < 0.55
    assert choice.oos_recall == pytest.approx(0.8) and choice.false_oos_rate == pytest.approx(0.1)
    assert choice.oos_precision == pytest.approx(0.8)
    # A tighter cap forbids losing any in-scope message: only what lies below 0.30 is caught.
    tight = choose_oos_threshold(in_scores, oos_scores, target_false_oos=0.03, max_false_oos=0.05)
    assert tight.threshold < 0.30 and tight.false_oos_rate == 0.0 and tight.oos_recall == pytest.approx(0.4)


def test_a_configured_threshold_overrides_but_is_still_measured() -> None:
    choice = choose_oos_threshold(np.array([0.2, 0.6, 0.9]), np.array([0.1, 0.7]), 0.03, 0.1, override=0.65)
    assert choice.rule == "override" and choice.threshold == 0.65
    assert choice.false_oos_rate == pytest.approx(2 / 3) and choice.oos_recall == pytest.approx(0.5)


def test_ambiguous_margin_is_where_held_out_predictions_become_reliable() -> None:
    rng = np.random.default_rng(3)
    margins = rng.uniform(0, 1, 5000)
    # Right half the time below a margin of 0.3, always right above it.
    correct = np.where(margins < 0.3, rng.uniform(0, 1, 5000) < 0.5, True)
    margin = choose_ambiguous_margin(margins, correct, target_accuracy=0.9)
    assert margin == pytest.approx(0.3, abs=0.02)


def test_ambiguous_margin_edges() -> None:
    margins = np.array([0.1, 0.5, 0.9])
    assert choose_ambiguous_margin(margins, np.array([True, True, True]), 0.9) == 0.0
    assert choose_ambiguous_margin(margins, np.array([False, False, False]), 0.9) == 1.0
    assert choose_ambiguous_margin(np.array([]), np.array([], dtype=bool), 0.9) == 0.0


def test_typicality_is_the_less_typical_of_probability_and_similarity() -> None:
    held_out_probs = np.linspace(0.5, 1.0, 101)  # in-scope messages: 0.5 .. 1.0
    held_out_sims = np.linspace(0.4, 0.9, 101)
    reference = TypicalityReference.from_validation(held_out_probs, held_out_sims)
    scores = reference.score(np.array([0.75, 0.99, 0.75, 0.2]), np.array([0.65, 0.3, 0.95, 0.8]))
    assert scores[0] == pytest.approx(0.5, abs=0.01)  # median on both counts
    assert scores[1] == 0.0  # a confident guess far from every example
    assert scores[2] == pytest.approx(0.5, abs=0.01)  # very close to an example: the probability decides
    assert scores[3] == 0.0  # close enough, but the head cannot place it
    again = TypicalityReference.from_arrays(reference.arrays())
    assert np.array_equal(again.score(held_out_probs, held_out_sims), reference.score(held_out_probs, held_out_sims))
