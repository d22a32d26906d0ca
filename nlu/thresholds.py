"""Decision thresholds chosen on validation data: out of scope, and ambiguity of the top-2 margin."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OosThreshold:
    """A message is out of scope when its in-scope score is below ``threshold``; how it was chosen and
    what it achieved on the validation data it was chosen on."""

    threshold: float
    rule: str  # "false_oos_target", "best_f1" or "override"
    false_oos_rate: float  # share of in-scope validation messages judged out of scope
    oos_recall: float | None  # None without out-of-scope validation examples
    oos_precision: float | None
    in_scope_examples: int
    oos_examples: int

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the model file and reports."""
        return asdict(self)


def _rates(in_scores: np.ndarray, oos_scores: np.ndarray, threshold: float
           ) -> tuple[float, float | None, float | None]:
    flagged_in = int((in_scores < threshold).sum())
    false_oos = flagged_in / len(in_scores) if len(in_scores) else 0.0
    if not len(oos_scores):
        return false_oos, None, None
    caught = int((oos_scores < threshold).sum())
    precision = caught / (caught + flagged_in) if caught + flagged_in else 1.0
    return false_oos, caught / len(oos_scores), precision


def _candidates(scores: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct scores, and one value below/above all of them."""
    values = np.unique(scores.astype(np.float64))
    if not len(values):
        return np.array([0.0])
    mids = (values[1:] + values[:-1]) / 2
    return np.concatenate([[values[0] - 1e-6], mids, [values[-1] + 1e-6]])


def choose_oos_threshold(in_scores: np.ndarray, oos_scores: np.ndarray, target_false_oos: float,
                         max_false_oos: float, override: float | None = None) -> OosThreshold:
    """Pick the out-of-scope threshold on validation scores (higher score = more in scope).

    Without out-of-scope examples: the highest threshold that judges at most ``target_false_oos`` of the
    in-scope validation messages out of scope. With them: the threshold with the best out-of-scope F1 among
    those whose false-out-of-scope rate stays within ``max_false_oos`` (ties: the lower false-OOS rate).
    The F1 weighs the out-of-scope examples as a group as much as the in-scope ones, because how many of
    each a trainer labelled says nothing about how often they occur in traffic; with a dozen OOS examples
    among thousands of in-scope ones a plain F1 would hardly ever call anything out of scope.

    Args:
        in_scores: scores of in-scope messages the model did not train on.
        oos_scores: scores of out-of-scope examples the model did not train on (may be empty).
        override: a configured threshold that wins; its validation rates are still reported.
    """
    in_scores = np.asarray(in_scores, dtype=np.float64)
    oos_scores = np.asarray(oos_scores, dtype=np.float64)
    if override is not None:
        threshold, rule = float(override), "override"
    elif not len(oos_scores):
        threshold, rule = _threshold_at_false_oos(in_scores, target_false_oos), "false_oos_target"
    else:
        threshold, rule = _best_f1(in_scores, oos_scores, max_false_oos), "best_f1"
    false_oos, recall, precision = _rates(in_scores, oos_scores, threshold)
    return OosThreshold(threshold, rule, false_oos, recall, precision, len(in_scores), len(oos_scores))


def _threshold_at_false_oos(in_scores: np.ndarray, target: float) -> float:
    if not len(in_scores):
        return float("-inf")
    allowed = int(np.floor(target * len(in_scores) + 1e-9))  # messages that may fall below the threshold
    ordered = np.sort(in_scores)
    if allowed >= len(ordered):
        return float(ordered[-1] + 1e-6)
    if allowed == 0:
        return float(ordered[0] - 1e-6)
    # Between the allowed-th and the next score, so exactly ``allowed`` (ties permitting) fall below.
    return float((ordered[allowed - 1] + ordered[allowed]) / 2) if ordered[allowed] > ordered[allowed - 1] \
        else float(ordered[allowed - 1] - 1e-9)


def _best_f1(in_scores: np.ndarray, oos_scores: np.ndarray, max_false_oos: float) -> float:
    candidates = _candidates(np.concatenate([in_scores, oos_scores]))
    in_sorted, oos_sorted = np.sort(in_scores), np.sort(oos_scores)
    flagged_in = np.searchsorted(in_sorted, candidates, side="left")  # in-scope scores < candidate
    caught = np.searchsorted(oos_sorted, candidates, side="left")
    recall = caught / len(oos_sorted)
    false_oos = flagged_in / max(1, len(in_sorted))
    f1 = 2 * recall / (1 + recall + false_oos)  # 2TP / (2TP + FP + FN) with both groups weighted to 1
    f1 = np.where(false_oos <= max_false_oos + 1e-12, f1, -1.0)
    best = np.flatnonzero(f1 == f1.max())
    return float(candidates[best[np.argmin(false_oos[best])]])


def choose_ambiguous_margin(margins: np.ndarray, correct: np.ndarray, target_accuracy: float) -> float:
    """The top-2 margin from which held-out predictions are right at least ``target_accuracy`` of the time.

    Accuracy as a function of the margin is estimated by isotonic regression (non-decreasing) on held-out
    predictions; below the returned margin, predictions *like this one* were right less often than the
    target, so they are called ambiguous. 0.0 when even the closest calls reach the target, 1.0 when no
    margin does.
    """
    from sklearn.isotonic import IsotonicRegression

    margins = np.asarray(margins, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if not len(margins):
        return 0.0
    order = np.argsort(margins, kind="stable")
    m, c = margins[order], correct[order]
    fitted = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0).fit_transform(m, c)
    reached = np.flatnonzero(fitted >= target_accuracy)
    if not len(reached):
        return 1.0
    first = int(reached[0])
    if first == 0:
        return 0.0
    # Midway between the last margin below the target and the first one reaching it.
    return float((m[first - 1] + m[first]) / 2)
