"""Train the urgency model from labelled tickets: read JSONL, cross-validate, tune thresholds, refit, save."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from domain.enums import Urgency
from domain.errors import SourceFileError, SourceProblem, ValidationError
from domain.models import IntentPrediction
from domain.ports import Encoder
from nlu.training import encode_all
from nlu.urgency import RuleEvidence, RuleUrgencyScorer, UrgencyContext
from nlu.urgency_model import LEVELS, Thresholds, UrgencyModel

log = logging.getLogger(__name__)

# Ticket labels and the levels they mean; anything else in the file is refused with its line number.
LABELS: dict[str, Urgency] = {
    "very_low": Urgency.LOW, "low": Urgency.LOW,
    "medium": Urgency.NORMAL, "normal": Urgency.NORMAL,
    "high": Urgency.HIGH, "urgent": Urgency.HIGH, "critical": Urgency.HIGH,
}
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
MIN_PER_LEVEL = 5
_NO_INTENT = IntentPrediction(None, 0.0, (), True, "none")


def read_labelled(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and level ranks (0 low, 1 normal, 2 high) from a JSONL of ``{"text", "priority"}``.

    Only ``text`` and ``priority`` are read: other fields (an agent's answer, a resolution) would leak the
    outcome into the inputs.

    Raises:
        SourceFileError: a line is not JSON, has no text, or has an unknown priority (with its line number).
    """
    texts: list[str] = []
    ranks: list[int] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SourceFileError(SourceProblem(str(path), None, f"cannot read: {e.strerror or e}")) from e
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceFileError(SourceProblem(str(path), number, f"not JSON: {e.msg}")) from e
        text = row.get("text") if isinstance(row, dict) else None
        label = str(row.get("priority", "")).strip().lower() if isinstance(row, dict) else ""
        if not isinstance(text, str) or not text.strip():
            raise SourceFileError(SourceProblem(str(path), number, "no 'text'"))
        if label not in LABELS:
            raise SourceFileError(SourceProblem(
                str(path), number, f"priority {label!r} is not one of {', '.join(sorted(LABELS))}"))
        texts.append(text)
        ranks.append(LABELS[label].rank)
    return texts, np.asarray(ranks, dtype=np.int64)


def macro_f1(y: np.ndarray, pred: np.ndarray, classes: int = 3) -> float:
    """Unweighted mean F1 over the levels low, normal, high (critical counts as high)."""
    pred = np.minimum(pred, classes - 1)
    scores = []
    for c in range(classes):
        tp = float(np.sum((pred == c) & (y == c)))
        fp = float(np.sum((pred == c) & (y != c)))
        fn = float(np.sum((pred != c) & (y == c)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def high_recall(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of the truly high tickets rated high or critical."""
    mask = y == Urgency.HIGH.rank
    return float(np.mean(pred[mask] >= Urgency.HIGH.rank)) if mask.any() else float("nan")


def outcome_table(evidence: Sequence[RuleEvidence]) -> np.ndarray:
    """For each message, the final rank (critical counted as high) if the learned part said low/normal/high."""
    table = np.zeros((len(evidence), 3), dtype=np.int64)
    for i, ev in enumerate(evidence):
        for base in range(3):
            table[i, base] = min(ev.resolve(base).level.rank, 2)
    return table


def tune_thresholds(probs: np.ndarray, y: np.ndarray, table: np.ndarray | None = None,
                    min_high_recall: float = 0.0) -> Thresholds:
    """The thresholds with the best validation macro-F1 among those reaching ``min_high_recall``.

    ``table`` (from :func:`outcome_table`) tunes the combination with the rules; None tunes the model alone.
    If no pair reaches the recall, the pair with the highest recall wins. Ties go to the higher thresholds.
    """
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    table = np.tile(np.arange(3), (len(y), 1)) if table is None else table
    rows = np.arange(len(y))
    best: tuple[float, float, float, float] | None = None  # (meets, f1 or recall, high, low)
    for t_high in grid:
        ranks = np.ones((len(grid), len(y)), dtype=np.int64)  # one row per low threshold
        ranks[probs[None, :, 0] >= grid[:, None]] = 0
        ranks[:, probs[:, 2] >= t_high] = 2
        pred = table[rows[None, :], ranks]
        f1s = np.zeros(len(grid))
        for c in range(3):
            tp = np.sum((pred == c) & (y == c), axis=1)
            wrong = np.sum((pred == c) != (y == c), axis=1)  # false positives + false negatives
            f1s += np.where(tp > 0, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0) / 3
        highs = y == 2
        recalls = np.mean(pred[:, highs] == 2, axis=1) if highs.any() else np.ones(len(grid))
        for j, t_low in enumerate(grid):
            meets = float(recalls[j] >= min_high_recall)
            key = (meets, float(f1s[j]) if meets else float(recalls[j]), float(t_high), float(t_low))
            if best is None or key > best:
                best = key
    assert best is not None
    return Thresholds(best[2], best[3])


def fit_weights(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardize and fit; returns (coef (3, d), intercept (3,), mean, scale) with a row per level."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    model.fit((x - mean) / scale, y)
    coef = np.zeros((3, x.shape[1]), dtype=np.float64)
    intercept = np.full(3, -30.0)  # a level absent from the data gets (almost) no probability
    present = [int(k) for k in model.classes_]
    if len(present) == 2:  # sklearn fits one row for two classes: logits (0, w.x + b) give the same softmax
        coef[present[1]] = model.coef_[0]
        intercept[present[0]], intercept[present[1]] = 0.0, model.intercept_[0]
    else:
        for row, k in enumerate(present):
            coef[k] = model.coef_[row]
            intercept[k] = model.intercept_[row]
    return coef, intercept, mean, scale


@dataclass
class TrainingReport:
    """What training did and how the model did on held-out tickets."""

    model: UrgencyModel
    path: Path | None
    counts: dict[str, int]
    validation: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph for the CLI."""
        v = self.validation
        counts = ", ".join(f"{k} {n}" for k, n in self.counts.items())
        folds = self.model.meta.get("folds")
        how = f"{folds}-fold cross-validation" if folds else "held-out slice"
        return (f"urgency model {self.model.version} ({counts}; C={self.model.meta.get('c')})\n"
                f"validation ({how}), rules + model: macro-F1 {v['combined_macro_f1']:.3f}, high recall "
                f"{v['combined_high_recall']:.3f}; model alone: macro-F1 {v['model_macro_f1']:.3f}\n"
                f"thresholds: high if p(high) >= {self.model.thresholds.high:.2f}, "
                f"low if p(low) >= {self.model.thresholds.low:.2f}")


def rule_evidence(rules: RuleUrgencyScorer, texts: Sequence[str], vectors: np.ndarray) -> list[RuleEvidence]:
    """The rules' evidence for tickets (no intent, no customer context: tickets carry text only)."""
    return [rules.evidence(t, _NO_INTENT, UrgencyContext(), v) for t, v in zip(texts, vectors, strict=True)]


def train_urgency(texts: Sequence[str], y: np.ndarray, vectors: np.ndarray, rules: RuleUrgencyScorer,
                  encoder_name: str, min_high_recall: float = 0.9, val_fraction: float = 0.2,
                  seed: int = 13, folds: int = 5) -> tuple[UrgencyModel, dict[str, float]]:
    """Choose C (log-loss) and thresholds (macro-F1 at ``min_high_recall``) on held-out predictions, then fit.

    With ``folds`` >= 2 (the default) the held-out predictions are out-of-fold ones from a stratified k-fold
    split of all tickets, and the final model is refitted on all of them; the validation figures are then
    cross-validated ones (thresholds chosen on the same predictions, so slightly optimistic). With ``folds``
    below 2, one stratified slice of ``val_fraction`` is held out and the model keeps the weights fitted on
    the rest (the first protocol; kept for comparison in ``bench/experiments/urgency_cv.py``).

    Raises:
        ValidationError: fewer than two levels, or a level with fewer than 5 tickets.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    counts = {LEVELS[k].value: int(np.sum(y == k)) for k in range(3) if np.sum(y == k)}
    thin = [f"{k} ({n})" for k, n in counts.items() if n < MIN_PER_LEVEL]
    if thin:
        raise ValidationError(f"too few tickets (at least {MIN_PER_LEVEL} per level): {', '.join(thin)}")
    if len(counts) < 2:
        raise ValidationError(f"urgency training needs tickets of at least two levels, found {counts or 'none'}")
    evidence = rule_evidence(rules, texts, vectors)
    features = np.stack([ev.features for ev in evidence])
    x = np.hstack([vectors, features]).astype(np.float64)
    if folds >= 2:
        k = min(folds, MIN_PER_LEVEL)
        splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y))
        held_out = np.arange(len(y))
    else:
        tr, va = train_test_split(np.arange(len(y)), test_size=val_fraction, stratify=y, random_state=seed)
        splits = [(tr, va)]
        held_out = va
    best: tuple[float, float, np.ndarray] | None = None  # (log-loss, C, held-out probabilities)
    for c in C_GRID:
        probs = np.zeros((len(y), 3))
        for tr, va in splits:
            coef, intercept, mean, scale = fit_weights(x[tr], y[tr], c)
            probs[va] = _probabilities(x[va], coef, intercept, mean, scale)
        loss = float(-np.mean(np.log(np.maximum(probs[held_out, y[held_out]], 1e-9))))
        if best is None or loss < best[0]:
            best = (loss, c, probs)
    assert best is not None
    loss, c, probs = best
    fit_rows = np.arange(len(y)) if folds >= 2 else splits[0][0]
    coef, intercept, mean, scale = fit_weights(x[fit_rows], y[fit_rows], c)
    probs, y_va = probs[held_out], y[held_out]
    table = outcome_table([evidence[i] for i in held_out])
    combined = tune_thresholds(probs, y_va, table, min_high_recall)
    alone = tune_thresholds(probs, y_va, None, min_high_recall)
    pred = table[np.arange(len(held_out)), combined.ranks(probs)]
    validation = {
        "combined_macro_f1": macro_f1(y_va, pred), "combined_high_recall": high_recall(y_va, pred),
        "model_macro_f1": macro_f1(y_va, alone.ranks(probs)),
        "model_high_recall": high_recall(y_va, alone.ranks(probs)), "log_loss": loss,
    }
    meta: dict[str, Any] = {
        "c": c, "seed": seed, "folds": len(splits) if folds >= 2 else 0,
        "val_fraction": None if folds >= 2 else val_fraction, "min_high_recall": min_high_recall,
        "counts": counts, "n_fit": len(fit_rows), "n_validation": len(held_out), "validation": validation,
        "model_alone_thresholds": {"high": alone.high, "low": alone.low},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    final = UrgencyModel(coef, intercept, mean, scale, combined, encoder_name, rules.feature_names(),
                         rules.semantic is not None, meta)
    return final, validation


def _probabilities(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray,
                   scale: np.ndarray) -> np.ndarray:
    """Softmax of the standardized logits, as :meth:`UrgencyModel.probabilities` computes them."""
    logits = ((x - mean) / scale) @ coef.T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def train_from_jsonl(path: Path, encoder: Encoder, rules: RuleUrgencyScorer, out: Path | None,
                     min_high_recall: float = 0.9, seed: int = 13, progress: bool = False,
                     folds: int = 5) -> TrainingReport:
    """Read, encode (with a progress bar), train and save; the CLI's ``train-urgency``."""
    texts, y = read_labelled(path)
    vectors = encode_all(encoder, texts, progress=progress)
    model, validation = train_urgency(texts, y, vectors, rules, encoder.name, min_high_recall, seed=seed,
                                      folds=folds)
    saved = model.save(out) if out is not None else None
    counts = {LEVELS[k].value: int(np.sum(y == k)) for k in range(3)}
    log.info("trained urgency model %s on %d tickets", model.version, len(texts))
    return TrainingReport(model, saved, counts, validation)
