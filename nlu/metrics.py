"""Scores of intent predictions against gold labels: accuracy, macro-F1, out-of-scope precision/recall, confusions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

OOS_NAME = "out_of_scope"  # how None (out of scope) is named in confusion pairs and reports


@dataclass(frozen=True)
class Confusion:
    """``count`` messages of ``gold`` were predicted as ``predicted``."""

    gold: str
    predicted: str
    count: int


@dataclass(frozen=True)
class Metrics:
    """Scores of one set of predictions; out-of-scope figures are None when they are undefined.

    ``accuracy`` counts out of scope as one more label; ``in_scope_accuracy`` is over in-scope messages only
    (one judged out of scope is wrong); ``macro_f1`` averages F1 over the gold in-scope intents.
    """

    examples: int
    accuracy: float
    in_scope_accuracy: float | None
    macro_f1: float
    oos_examples: int
    oos_recall: float | None  # share of gold out-of-scope messages judged out of scope
    oos_precision: float | None  # share of messages judged out of scope that were
    false_oos_rate: float | None  # share of in-scope messages judged out of scope
    confusions: tuple[Confusion, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


def _name(label: str | None) -> str:
    return OOS_NAME if label is None else label


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def score_predictions(gold: Sequence[str | None], predicted: Sequence[str | None], top: int = 10) -> Metrics:
    """Score predictions (None = out of scope) against gold labels.

    Args:
        top: how many of the most frequent (gold, predicted) error pairs to keep.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    pairs = list(zip(gold, predicted, strict=True))
    in_scope = [(g, p) for g, p in pairs if g is not None]
    oos = [(g, p) for g, p in pairs if g is None]
    judged_oos = sum(p is None for _, p in pairs)
    f1s = []
    for label in sorted({g for g, _ in in_scope}):
        tp = sum(g == label and p == label for g, p in pairs)
        fp = sum(g != label and p == label for g, p in pairs)
        fn = sum(g == label and p != label for g, p in pairs)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    errors = Counter((_name(g), _name(p)) for g, p in pairs if g != p)
    confusions = tuple(Confusion(g, p, n) for (g, p), n in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0])))
    return Metrics(
        examples=len(pairs),
        accuracy=round(sum(g == p for g, p in pairs) / len(pairs), 4) if pairs else 0.0,
        in_scope_accuracy=_ratio(sum(g == p for g, p in in_scope), len(in_scope)),
        macro_f1=round(float(np.mean(f1s)), 4) if f1s else 0.0,
        oos_examples=len(oos),
        oos_recall=_ratio(sum(p is None for _, p in oos), len(oos)),
        oos_precision=_ratio(sum(p is None for _, p in oos), judged_oos) if oos or judged_oos else None,
        false_oos_rate=_ratio(sum(p is None for _, p in in_scope), len(in_scope)),
        confusions=confusions[:top],
    )


def confusion_matrix(gold: Sequence[str | None], predicted: Sequence[str | None]
                     ) -> tuple[list[str], np.ndarray]:
    """Labels (out of scope last, if present) and counts[gold, predicted]."""
    names = sorted({_name(x) for x in (*gold, *predicted)} - {OOS_NAME})
    if any(x is None for x in (*gold, *predicted)):
        names.append(OOS_NAME)
    index = {n: i for i, n in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        counts[index[_name(g)], index[_name(p)]] += 1
    return names, counts
