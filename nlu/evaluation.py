"""Evaluate intent methods on a labelled set: train on its train split, score its test split, time it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from domain.models import IntentPrediction
from domain.ports import Encoder
from nlu.calibration import expected_calibration_error
from nlu.fitting import FitConfig, HeldOut, Method, fit_intent_head
from nlu.intent import IntentModel
from nlu.labelled_data import LabelledExample, check_labelled, read_labelled, stratified_split
from nlu.metrics import score_predictions
from nlu.vector_cache import encode_cached

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationPlan:
    """What to evaluate: a labelled file, optional separate test files and the methods to compare."""

    data: Path
    test_files: tuple[Path, ...] = ()  # labelled JSONL/YAML: the test set instead of the data's test split
    oos_test_files: tuple[Path, ...] = ()  # JSONL whose rows are all out of scope (only ``text`` needed)
    methods: tuple[Method, ...] = ("ensemble",)
    use_valid_split: bool = True  # calibrate on a ``valid`` split when there is one, else on folds of train
    test_fraction: float = 0.2  # held out of the data when it has no test split and no test files
    latency_samples: int = 200
    seed: int = 13


@dataclass(frozen=True)
class Splits:
    """The examples each role gets, and how they were decided."""

    train: list[LabelledExample]
    valid: list[LabelledExample]
    test: list[LabelledExample]
    notes: list[str]


def plan_splits(plan: EvaluationPlan, min_examples: int) -> Splits:
    """Read the files and decide train / validation / test; never calibrate or choose anything on test.

    Raises:
        SourceFileError: a malformed file or line (path and line number).
        ValidationError: fewer than two intents, or intents with too few examples, in the training split.
    """
    data = read_labelled(plan.data)
    notes: list[str] = []
    test = [replace(e, split="test") for path in plan.test_files for e in read_labelled(path)]
    test += [replace(e, split="test") for path in plan.oos_test_files for e in read_labelled(path, all_oos=True)]
    train = [e for e in data if e.split in ("train", "all")]
    valid = [e for e in data if e.split == "valid"] if plan.use_valid_split else []
    if not plan.use_valid_split:
        train += [e for e in data if e.split == "valid"]
    if not test:
        test = [e for e in data if e.split == "test"]
    elif any(e.split == "test" for e in data):
        notes.append("the data's own test split was ignored in favour of the given test files")
    if not test:
        train, test = stratified_split(train, plan.test_fraction, plan.seed)
        notes.append(f"no test split: a stratified {plan.test_fraction:.0%} of the data was held out as test")
    check_labelled(train, min_examples, f"the training split of {plan.data.name}")
    known = {e.label for e in train if e.label is not None}
    unknown = sorted({e.label for e in (*test, *valid) if e.label is not None} - known)
    if unknown:
        notes.append(f"{len(unknown)} test/validation intents never occur in training, e.g. {unknown[0]}")
    return Splits(train, valid, test, notes)


def _vectors(examples: Sequence[LabelledExample], lookup: dict[str, np.ndarray], dim: int) -> np.ndarray:
    return np.array([lookup[e.text] for e in examples], dtype=np.float32).reshape(len(examples), dim)


def evaluate(plan: EvaluationPlan, encoder: Encoder, config: FitConfig, cache_dir: Path | None,
             min_examples: int = 2, progress: bool = False) -> tuple[dict[str, Any], list[str | None],
                                                                     list[str | None]]:
    """Train every method of the plan on the train split and score it on the test split.

    Returns:
        The report (JSON-ready), and the gold labels and the first method's predictions on the test split.
    """
    load_before = os.getloadavg()
    splits = plan_splits(plan, min_examples)
    texts = sorted({e.text for e in (*splits.train, *splits.valid, *splits.test)})
    started = time.perf_counter()
    all_vectors = encode_cached(encoder, texts, cache_dir, progress=progress, desc=f"Encoding {plan.data.name}")
    encode_seconds = time.perf_counter() - started
    lookup = dict(zip(texts, all_vectors, strict=True))
    dim = all_vectors.shape[1]
    intents = sorted({e.label for e in splits.train if e.label is not None})
    index = {name: i for i, name in enumerate(intents)}
    in_train = [e for e in splits.train if e.label is not None]
    train_x = _vectors(in_train, lookup, dim)
    train_y = np.array([index[e.label] for e in in_train if e.label is not None], dtype=np.int64)
    oos_x = _vectors([e for e in splits.train if e.label is None], lookup, dim)
    held = None
    if splits.valid:
        valid = [e for e in splits.valid if e.label is None or e.label in index]
        held = HeldOut(_vectors(valid, lookup, dim),
                       np.array([-1 if e.label is None else index[e.label] for e in valid], dtype=np.int64))
    test_x = _vectors(splits.test, lookup, dim)
    gold = [e.label for e in splits.test]
    results: list[dict[str, Any]] = []
    first_predictions: list[str | None] = []
    encode_ms = _encode_latency(encoder, [e.text for e in splits.test], plan.latency_samples)
    for method in plan.methods:
        cfg = replace(config, method=method, seed=plan.seed)
        fit_started = time.perf_counter()
        fit = fit_intent_head(train_x, train_y, len(intents), oos_x, cfg, _bar(progress, f"Training {method}"), held)
        fit_seconds = time.perf_counter() - fit_started
        model = IntentModel.from_fit(intents, fit, f"eval-{method}")
        predictions = model.predict_many(test_x)
        predicted = [p.intent for p in predictions]
        if not results:
            first_predictions = predicted
        result = _method_result(model, fit.report, fit_seconds, gold, predicted, test_x, index, encode_ms,
                                [e.text for e in splits.test], plan.latency_samples)
        in_scope = [(g, p.top_intent) for g, p in zip(gold, predictions, strict=True) if g is not None]
        # Top-1 accuracy on in-scope messages ignoring the out-of-scope decision (the closed-set figure
        # papers report for BANKING77), next to the open-set figures with the decision.
        result["closed_set_accuracy"] = round(sum(g == p for g, p in in_scope) / len(in_scope), 4) if in_scope \
            else None
        result["ambiguity"] = _ambiguity(gold, predictions)
        results.append(result)
    report = {
        "dataset": plan.data.name, "encoder": encoder.name, "intents": len(intents),
        "sizes": {"train": len(splits.train), "train_oos": len(oos_x), "valid": len(splits.valid),
                  "test": len(splits.test), "test_oos": sum(g is None for g in gold)},
        "validation": "the valid split" if held is not None else f"{config.folds}-fold cross-fitting of train",
        "notes": splits.notes, "encode_seconds": round(encode_seconds, 2),
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "methods": results,
    }
    return report, gold, first_predictions


def _method_result(model: IntentModel, fit_report: dict[str, Any], fit_seconds: float, gold: list[str | None],
                   predicted: list[str | None], test_x: np.ndarray, index: dict[str, int], encode_ms: list[float],
                   texts: list[str], samples: int) -> dict[str, Any]:
    metrics = score_predictions(gold, predicted)
    known = [i for i, g in enumerate(gold) if g is not None and g in index]
    probs = model.probabilities(test_x[known]) if known else np.zeros((0, len(index)))
    if len(probs):
        probs = probs / probs.sum(axis=1, keepdims=True)
    labels = np.array([index[g] for g in (gold[i] for i in known) if g is not None], dtype=np.int64)
    classify_ms = []
    for i in range(min(samples, len(texts))):
        started = time.perf_counter()
        model.predict(texts[i], test_x[i])
        classify_ms.append(1000 * (time.perf_counter() - started))
    total = [e + c for e, c in zip(encode_ms, classify_ms, strict=False)]
    return {
        "method": model.method, "params": model.head.params(), "fit_seconds": round(fit_seconds, 2),
        "temperature": round(model.temperature, 4), "oos_threshold": model.oos.as_dict(),
        "ambiguous_margin": round(model.ambiguous_margin, 4), "oos_class": model.oos_class,
        "validation_report": fit_report, "metrics": metrics.as_dict(),
        "ece": round(expected_calibration_error(probs, labels), 4),
        "latency_ms": {"samples": len(total), **_percentiles("encode", encode_ms),
                       **_percentiles("classify", classify_ms), **_percentiles("total", total)},
    }


def _ambiguity(gold: list[str | None], predictions: list[IntentPrediction]) -> dict[str, float | None]:
    """How many in-scope predictions were flagged ambiguous, and how often flagged and clear ones were right."""
    pairs = [(g, p) for g, p in zip(gold, predictions, strict=True) if g is not None and not p.out_of_scope]
    flagged = [g == p.intent for g, p in pairs if p.ambiguous]
    clear = [g == p.intent for g, p in pairs if not p.ambiguous]
    return {"share": round(len(flagged) / len(pairs), 4) if pairs else None,
            "accuracy_ambiguous": round(sum(flagged) / len(flagged), 4) if flagged else None,
            "accuracy_clear": round(sum(clear) / len(clear), 4) if clear else None}


def _percentiles(name: str, values: list[float]) -> dict[str, float]:
    if not values:
        return {f"{name}_p50": 0.0, f"{name}_p95": 0.0}
    return {f"{name}_p50": round(float(np.percentile(values, 50)), 3),
            f"{name}_p95": round(float(np.percentile(values, 95)), 3)}


def _encode_latency(encoder: Encoder, texts: list[str], samples: int) -> list[float]:
    """Milliseconds to encode one message at a time, as the pipeline does (after one warm-up call)."""
    if texts:
        encoder.encode(texts[:1])
    out = []
    for text in texts[:samples]:
        started = time.perf_counter()
        encoder.encode([text])
        out.append(1000 * (time.perf_counter() - started))
    return out


def _bar(progress: bool, desc: str) -> Callable[[float, str], None]:
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", disable=not progress, leave=True)

    def advance(fraction: float, stage: str) -> None:
        bar.set_postfix_str(stage, refresh=False)
        bar.update(round(100 * fraction) - bar.n)
        if fraction >= 1.0:
            bar.close()

    return advance
