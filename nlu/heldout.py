"""The trainers' held-out slice, chosen by text hash so that no retrained model ever learns from it, and its scores.

Why a hash and not a seeded shuffle: a shuffle picks a different slice whenever the data changes, so the model
serving now may well have learnt from the examples a new candidate is tested on. A text whose hash falls in the
slice is in it whatever else the data holds, so every candidate (all trained without the slice) is scored on
examples that neither it nor an earlier candidate saw. Exceptions, which keep a text in training:

* trainers' in-scope examples (relabels, confirmed predictions): corrections must be learnt; regression cases,
  not the slice, check them;
* texts kept as regression cases (every model must pass them, so every model learns them);
* a label (an intent, or out of scope) keeps at least ``MIN_TRAINING_PER_LABEL`` training examples.

Trainers' out-of-scope examples take part (nlu.yml has none), which is what makes an out-of-scope recall
measurable. A text can still move into the slice later (its correction or regression case removed, or a tiny
label growing): the one way an earlier candidate's score can be optimistic, and a rare one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nlu.metrics import score_predictions

HELDOUT_RULE = "text-sha256"  # recorded with every candidate: which models share the slice
MIN_TRAINING_PER_LABEL = 2


def heldout_position(text: str) -> float:
    """Where a text falls in [0, 1) by its SHA-256 (stable across processes, data and seeds)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class HeldOutSplit:
    """Training data without the slice, and the slice itself (intent None: out of scope)."""

    train_pairs: tuple[tuple[str, str], ...]
    train_oos: tuple[str, ...]
    heldout: tuple[tuple[str, str | None], ...]

    @property
    def heldout_texts(self) -> frozenset[str]:
        """The texts of the slice."""
        return frozenset(text for text, _ in self.heldout)


def split_heldout(pairs: Sequence[tuple[str, str]], oos_texts: Sequence[str], fraction: float,
                  keep_in_training: Iterable[str] = ()) -> HeldOutSplit:
    """Hold out the texts whose hash position is below ``fraction`` (see the module docstring for exceptions).

    Args:
        pairs: in-scope (text, intent) examples; oos_texts: out-of-scope examples.
        fraction: share of the data to hold out (0 holds out nothing).
        keep_in_training: texts that always stay in training (trainers' corrections, regression cases).
    """
    keep = frozenset(keep_in_training)
    groups: dict[str | None, list[str]] = defaultdict(list)
    for text, intent in pairs:
        groups[intent].append(text)
    for text in oos_texts:
        groups[None].append(text)
    held: set[str] = set()
    for texts in groups.values():
        chosen = sorted((t for t in texts if t not in keep and heldout_position(t) < fraction),
                        key=heldout_position)
        room = max(0, len(texts) - MIN_TRAINING_PER_LABEL)
        held.update(chosen[:room])
    return HeldOutSplit(
        train_pairs=tuple((t, i) for t, i in pairs if t not in held),
        train_oos=tuple(t for t in oos_texts if t not in held),
        heldout=tuple([(t, i) for t, i in pairs if t in held] + [(t, None) for t in oos_texts if t in held]),
    )


def heldout_scores(gold: Sequence[str | None], predicted: Sequence[str | None]) -> dict[str, Any]:
    """What the trainers' comparison shows (None = out of scope).

    ``accuracy`` and ``macro_f1`` are over the in-scope examples (one judged out of scope is wrong);
    ``false_oos`` is the share of in-scope examples judged out of scope (all three None for an empty slice);
    ``oos_recall`` (only when the slice has out-of-scope examples) the share of those judged out of scope.
    """
    metrics = score_predictions(gold, predicted)
    in_scope = metrics.in_scope_accuracy is not None
    out: dict[str, Any] = {
        "accuracy": metrics.in_scope_accuracy,
        "macro_f1": metrics.macro_f1 if in_scope else None,
        "false_oos": metrics.false_oos_rate,
    }
    if metrics.oos_recall is not None:
        out["oos_recall"] = metrics.oos_recall
    return out
