"""Fit an intent head with cross-fitting: hyper-parameters, temperature and thresholds from held-out predictions."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nlu.calibration import expected_calibration_error, fit_temperature, nll, softmax
from nlu.heads import (
    EnsembleHead,
    Head,
    KnnHead,
    LinearHead,
    ensemble_logits,
    top_neighbours,
    top_neighbours_grouped,
)
from nlu.oos_score import TypicalityReference, nearest_similarity
from nlu.thresholds import OosThreshold, choose_ambiguous_margin, choose_oos_threshold

log = logging.getLogger(__name__)

Method = Literal["linear", "knn", "ensemble"]
Progress = Callable[[float, str], None]

# Searched on held-out predictions of the data being trained on; the grids span what worked on BANKING77,
# CLINC150 and the demo data (docs/nlu-evaluation.md), and the chosen values are stored with the model.
C_GRID = (2.0, 8.0, 32.0)
K_GRID = (5, 10, 20, 40)
TAU_GRID = (0.02, 0.05, 0.1)
WEIGHT_GRID = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class FitConfig:
    """How to fit (from settings): method, folds and the targets thresholds are chosen for."""

    method: Method = "linear"
    folds: int = 5
    target_false_oos: float = 0.03  # without OOS examples: in-scope messages we accept to lose
    max_false_oos: float = 0.05  # with OOS examples: never trade more in-scope messages than this
    oos_threshold: float | None = None  # override of the learned threshold (an in-scope percentile, 0..1)
    ambiguity_target_accuracy: float = 0.75
    seed: int = 13


@dataclass(frozen=True)
class HeldOut:
    """Vectors (with labels) the head does not train on; replaces cross-fitting (e.g. a ``valid`` split).

    ``labels`` are class indices; -1 marks an out-of-scope example.
    """

    vectors: np.ndarray
    labels: np.ndarray


@dataclass
class FitResult:
    """A fitted head with everything learned from held-out predictions."""

    head: Head
    temperature: float
    oos: OosThreshold  # on the score of ``reference``
    reference: TypicalityReference
    ambiguous_margin: float
    oos_class: bool  # the head has one extra, last column for out-of-scope examples
    examples: np.ndarray  # the in-scope training vectors (nearest-example similarity)
    report: dict[str, Any] = field(default_factory=dict)


def in_scope_probabilities(logits: np.ndarray, temperature: float, n_intents: int) -> np.ndarray:
    """Calibrated probabilities of the intents; with an out-of-scope column it is dropped (rows sum below 1)."""
    return softmax(logits, temperature)[:, :n_intents]


def fold_ids(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold of every example: each class dealt round-robin over the folds after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        out[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)  # spreads small classes over different folds
    return out


def fit_intent_head(vectors: np.ndarray, labels: np.ndarray, n_intents: int, oos_vectors: np.ndarray,
                    config: FitConfig, progress: Progress | None = None, held_out: HeldOut | None = None,
                    ) -> FitResult:
    """Fit the configured head; choose hyper-parameters, temperature, OOS threshold and ambiguity margin.

    Out-of-scope examples, when given, train an extra class and take part in choosing the threshold.
    Validation predictions come from ``held_out`` when given, else from ``config.folds``-fold cross-fitting
    of the training data (each example predicted by a model that did not see it).

    Args:
        vectors: (n, d) normalized in-scope training vectors; labels: (n,) intent indices < n_intents.
        oos_vectors: (m, d) out-of-scope examples (m may be 0).
    """
    report_progress = progress or (lambda _f, _s: None)
    started = time.perf_counter()
    oos_class = len(oos_vectors) >= 2
    x = np.concatenate([vectors, oos_vectors]) if oos_class else vectors
    y = np.concatenate([labels, np.full(len(oos_vectors), n_intents)]) if oos_class else labels
    n_classes = n_intents + int(oos_class)
    if held_out is not None:
        val_x = held_out.vectors
        val_y = np.where(held_out.labels < 0, n_intents if oos_class else -1, held_out.labels)
        groups = None
    else:
        groups = fold_ids(y, config.folds, config.seed)
        val_x, val_y = x, y
        if not oos_class and len(oos_vectors):  # a single OOS example: only for the threshold
            val_x = np.concatenate([x, oos_vectors])
            val_y = np.concatenate([y, [-1]])
    chosen = _select(config.method, x, y, n_classes, val_x, val_y, groups, config, report_progress)
    report_progress(SELECT_SHARE, "fitting the final model")
    head = _final_head(config.method, x, y, n_classes, chosen)
    report_progress(0.95, "calibrating the temperature and the thresholds")
    val_logits: np.ndarray = chosen["logits"]
    scorable = val_y >= 0
    temperature = fit_temperature(val_logits[scorable], val_y[scorable])
    probs = in_scope_probabilities(val_logits, temperature, n_intents)
    is_oos = (val_y < 0) | (val_y == n_intents)
    sims = _validation_similarity(x, y < n_intents, val_x, groups)
    reference = TypicalityReference.from_validation(probs.max(axis=1)[~is_oos], sims[~is_oos])
    scores = reference.score(probs.max(axis=1), sims)
    oos = choose_oos_threshold(scores[~is_oos], scores[is_oos], config.target_false_oos, config.max_false_oos,
                               config.oos_threshold)
    in_probs = probs[~is_oos]
    top2 = -np.sort(-in_probs, axis=1)[:, :2]
    correct = in_probs.argmax(axis=1) == val_y[~is_oos]
    margin = choose_ambiguous_margin(top2[:, 0] - top2[:, 1], correct, config.ambiguity_target_accuracy)
    cal = softmax(val_logits[scorable], temperature)
    report = {
        "method": config.method, "params": head.params(), "oos_class": oos_class,
        "validation": "held_out" if held_out is not None else f"{config.folds}_fold_cross_fitting",
        "validation_accuracy": round(float(correct.mean()) if len(correct) else 0.0, 4),
        "temperature": round(temperature, 4),
        "nll_before": round(nll(val_logits[scorable], val_y[scorable]), 4),
        "nll_after": round(nll(val_logits[scorable], val_y[scorable], temperature), 4),
        "ece_before": round(expected_calibration_error(softmax(val_logits[scorable]), val_y[scorable]), 4),
        "ece_after": round(expected_calibration_error(cal, val_y[scorable]), 4),
        "oos_threshold": oos.as_dict(), "ambiguous_margin": round(margin, 4),
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    log.info("fitted %s head: validation accuracy %.4f, T=%.3f, OOS threshold %.4f (%s)", config.method,
             report["validation_accuracy"], temperature, oos.threshold, oos.rule)
    report_progress(1.0, "fitted")
    return FitResult(head, temperature, oos, reference, margin, oos_class, x[y < n_intents], report)


def _validation_similarity(x: np.ndarray, in_scope: np.ndarray, val_x: np.ndarray, groups: np.ndarray | None,
                           ) -> np.ndarray:
    """Nearest in-scope training similarity of every validation row, from examples of other folds only."""
    if groups is None:
        return nearest_similarity(val_x, x[in_scope])
    out = np.empty(len(val_x), dtype=np.float32)
    for fold in np.unique(groups):
        rows = np.flatnonzero(groups == fold)
        out[rows] = nearest_similarity(x[rows], x[in_scope & (groups != fold)])
    if len(val_x) > len(x):  # OOS-only rows, in no fold
        out[len(x):] = nearest_similarity(val_x[len(x):], x[in_scope])
    return out


# Shares of fit_intent_head's progress: the fold fits (hyper-parameter search), then the final head; in an
# ensemble the linear folds take most of the search (the neighbour search is one matrix product per block).
SELECT_SHARE = 0.85
ENSEMBLE_LINEAR_SHARE = 0.8


def _select(method: Method, x: np.ndarray, y: np.ndarray, n_classes: int, val_x: np.ndarray, val_y: np.ndarray,
            groups: np.ndarray | None, config: FitConfig, progress: Progress) -> dict[str, Any]:
    """Held-out logits of every candidate setting; returns the best (by accuracy, then NLL) with its logits.

    Reports progress from 0 to ``SELECT_SHARE`` as the folds are fitted.
    """
    candidates: list[dict[str, Any]] = []
    linear: list[dict[str, Any]] = []
    knn: list[dict[str, Any]] = []
    linear_share = SELECT_SHARE * (ENSEMBLE_LINEAR_SHARE if method == "ensemble" else 1.0)
    if method in ("linear", "ensemble"):
        linear = _linear_candidates(x, y, n_classes, val_x, val_y, groups, config,
                                    lambda f, s: progress(linear_share * f, s))
    if method in ("knn", "ensemble"):
        start = linear_share if method == "ensemble" else 0.0
        knn = _knn_candidates(x, y, n_classes, val_x, groups,
                              lambda f, s: progress(start + (SELECT_SHARE - start) * f, s))
    if method == "linear":
        candidates = linear
    elif method == "knn":
        candidates = knn
    else:
        best_linear = max(linear, key=lambda c: _quality(c["logits"], val_y))
        best_knn = max(knn, key=lambda c: _quality(c["logits"], val_y))
        for weight in WEIGHT_GRID:
            logits = ensemble_logits(best_linear["logits"], best_knn["logits"], weight)
            candidates.append({**best_linear, **best_knn, "weight": weight, "logits": logits})
    return max(candidates, key=lambda c: _quality(c["logits"], val_y))


def _quality(logits: np.ndarray, val_y: np.ndarray) -> tuple[float, float]:
    scorable = val_y >= 0
    accuracy = float((logits[scorable].argmax(axis=1) == val_y[scorable]).mean()) if scorable.any() else 0.0
    return round(accuracy, 4), -nll(logits[scorable], val_y[scorable]) if scorable.any() else 0.0


def _linear_candidates(x: np.ndarray, y: np.ndarray, n_classes: int, val_x: np.ndarray, val_y: np.ndarray,
                       groups: np.ndarray | None, config: FitConfig, progress: Progress) -> list[dict[str, Any]]:
    out = []
    warm: dict[int, LinearHead] = {}
    folds = [-1] if groups is None else list(range(config.folds))
    steps = len(C_GRID) * len(folds)
    for ci, c in enumerate(C_GRID):
        logits = np.zeros((len(val_x), n_classes), dtype=np.float32)
        fold_heads: dict[int, LinearHead] = {}
        for fi, fold in enumerate(folds):
            where = "on the validation set" if groups is None else f"fold {fi + 1} of {len(folds)}"
            progress((ci * len(folds) + fi) / steps,
                     f"fitting folds: linear head, C={c:g} ({ci + 1} of {len(C_GRID)}), {where}")
            train = np.ones(len(x), dtype=bool) if groups is None else groups != fold
            # Warm start: this fold at the previous C, else the previous fold (their solutions are close).
            init = warm.get(fold) or (fold_heads[folds[fi - 1]] if fi else None)
            head = LinearHead.fit(x[train], y[train], n_classes, c, init=init)
            fold_heads[fold] = warm[fold] = head
            if groups is None:
                logits = head.logits(val_x)
            else:
                logits[np.flatnonzero(~train)] = head.logits(x[~train])  # rows past len(x): OOS-only
        if groups is not None and len(val_x) > len(x):  # extra OOS-only rows: average of the fold heads
            extra = val_x[len(x):]
            logits[len(x):] = np.mean([h.logits(extra) for h in fold_heads.values()], axis=0)
        out.append({"C": c, "logits": logits, "init": fold_heads[folds[0]]})
    progress(1.0, "fitting folds: linear head done")
    return out


def _knn_candidates(x: np.ndarray, y: np.ndarray, n_classes: int, val_x: np.ndarray, groups: np.ndarray | None,
                    progress: Progress) -> list[dict[str, Any]]:
    k_max = max(K_GRID)
    progress(0.0, "fitting folds: nearest neighbours of every example in the other folds")
    if groups is None:
        sims, idx = top_neighbours(val_x, x, k_max)
    else:
        sims, idx = top_neighbours_grouped(x, groups, k_max)
        if len(val_x) > len(x):
            extra_sims, extra_idx = top_neighbours(val_x[len(x):], x, k_max)
            sims, idx = np.concatenate([sims, extra_sims]), np.concatenate([idx, extra_idx])
    probe = KnnHead(x[:1], y[:1], n_classes, 1, 1.0)
    out: list[dict[str, Any]] = []
    for ki, k in enumerate(K_GRID):
        progress(0.5 + 0.5 * ki / len(K_GRID), f"fitting folds: neighbour head, k={k} ({ki + 1} of {len(K_GRID)})")
        out.extend({"k": k, "tau": tau, "logits": probe.logits_from_neighbours(sims, y[idx], k, tau)}
                   for tau in TAU_GRID)
    progress(1.0, "fitting folds: neighbour head done")
    return out


def _final_head(method: Method, x: np.ndarray, y: np.ndarray, n_classes: int, chosen: dict[str, Any]) -> Head:
    linear = LinearHead.fit(x, y, n_classes, chosen["C"], init=chosen["init"]) if "C" in chosen else None
    knn = KnnHead(x, y, n_classes, chosen["k"], chosen["tau"]) if "k" in chosen else None
    if method == "linear" and linear is not None:
        return linear
    if method == "knn" and knn is not None:
        return knn
    assert linear is not None and knn is not None
    return EnsembleHead(linear, knn, chosen["weight"])
