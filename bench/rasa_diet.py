"""Rasa 3.6's default DIET pipeline on BANKING77, side by side with our classifier: same split, same machine.

Converts the train split to Rasa YAML in a temporary folder (never in the repository), trains it with the
separate Rasa virtualenv (``tools/rasa/setup.sh``), serves the model on a free loopback port and sends every
test message to ``/model/parse`` from one client. Prints and writes (``bench/results/rasa_diet-<time>.json``):
training time and CPU, accuracy, macro-F1, parse latency p50/p95, server start-up time and memory.

    .venv/bin/python bench/rasa_diet.py                  # the default: 100 epochs, the full test split
    .venv/bin/python bench/rasa_diet.py --epochs 20 --limit 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import latency_summary, loadavg, machine_info, read_jsonl, shared_data_dir, write_result  # noqa: E402
from nlu.rasa_backend import RasaClient  # noqa: E402
from nlu.rasa_yaml import from_pairs  # noqa: E402
from tools.rasa.project import (  # noqa: E402
    RASA_VERSION,
    RasaInstall,
    free_port,
    start_server,
    stop_server,
    train,
    wait_ready,
)

DATA = shared_data_dir() / "banking77" / "banking77.jsonl"


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _top_loaders(n: int = 6) -> list[str]:
    """The busiest other processes right now (machine notes: what else was running)."""
    out = subprocess.run(["ps", "-eo", "pcpu,rss,args", "--sort=-pcpu"], capture_output=True, text=True, check=False)
    return [" ".join([*line.split()[:2], " ".join(line.split()[2:])[:90]])
            for line in out.stdout.splitlines()[1:n + 1]]


def macro_f1(gold: list[str], pred: list[str]) -> float:
    """Macro-averaged F1 over the gold labels (sklearn's definition with zero_division=0)."""
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=sorted(set(gold)), average="macro", zero_division=0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100, help="DIET epochs (Rasa's default: 100)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N test messages (0: all 3,080)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    install = RasaInstall.from_env()
    install.require()
    rows = read_jsonl(DATA)
    train_pairs = [(r["text"], r["label"]) for r in rows if r["split"] == "train"]
    test_rows = [r for r in rows if r["split"] == "test"]
    if args.limit:
        test_rows = test_rows[: args.limit]
    info = machine_info()
    started = dt.datetime.now().isoformat(timespec="seconds")
    print(f"BANKING77: {len(train_pairs)} train / {len(test_rows)} test; DIET {args.epochs} epochs; "
          f"load {loadavg()}", file=sys.stderr)

    nlu = from_pairs(train_pairs)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before_training = loadavg()
    with tempfile.TemporaryDirectory(prefix="banking77-rasa-") as folder:
        trained = train(install, nlu, None, args.epochs, echo=True, workdir=Path(folder))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after_training = loadavg()
    train_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"model {trained.path}: {'cached' if trained.seconds is None else f'{trained.seconds:.0f} s'}",
          file=sys.stderr)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = install.home / "logs" / f"bench-serve-{trained.key}.log"
    proc = start_server(install, trained.path, port, log)
    try:
        ready = wait_ready(url, proc, timeout=600)
        client = RasaClient(url, timeout_seconds=60)
        try:
            client.parse("warm up")
            gold: list[str] = []
            pred: list[str] = []
            ms: list[float] = []
            loads = [loadavg()]
            for i, row in enumerate(test_rows):
                t0 = time.perf_counter()
                ranking = client.parse(row["text"])
                ms.append((time.perf_counter() - t0) * 1000)
                gold.append(row["label"])
                pred.append(ranking[0][0])
                if (i + 1) % 500 == 0:
                    loads.append(loadavg())
                    print(f"  {i + 1}/{len(test_rows)} parsed", file=sys.stderr)
        finally:
            client.close()
        server_rss = _rss_mib(proc.pid)
        others = _top_loaders()
    finally:
        stop_server(proc)

    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    confusions = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p).most_common(8)
    result: dict[str, Any] = {
        "benchmark": "rasa_diet_banking77",
        "started": started,
        "rasa": RASA_VERSION,
        "pipeline": "Rasa 3.6 default NLU pipeline (WhitespaceTokenizer, RegexFeaturizer, "
                    "LexicalSyntacticFeaturizer, CountVectors word + char_wb 1-4, DIETClassifier "
                    f"epochs={args.epochs} constrain_similarities=true, EntitySynonymMapper)",
        "split": {"train": len(train_pairs), "test": len(test_rows), "source": str(DATA)},
        "training": {"seconds": None if trained.seconds is None else round(trained.seconds, 1),
                     "cached": trained.seconds is None, "child_cpu_seconds": round(train_cpu, 1),
                     "child_peak_rss_mib": round(after.ru_maxrss / 1024, 1),
                     "loadavg_before": load_before_training, "loadavg_after": load_after_training},
        "server": {"ready_seconds": round(ready, 1), "rss_mib": server_rss},
        "accuracy": round(correct / len(gold), 4),
        "macro_f1": round(macro_f1(gold, pred), 4),
        "parse_latency_ms": latency_summary(ms),
        "parse_throughput_per_s": round(len(ms) / (sum(ms) / 1000), 1),
        "loadavg_during_parse": loads,
        "worst_confusions": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confusions],
        "other_processes_at_end": others,
        "machine": info,
    }
    path = write_result("rasa_diet", result, args.output)
    lat = result["parse_latency_ms"]
    print(f"accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
          f"train {result['training']['seconds']} s (cpu {train_cpu:.0f} s)  "
          f"parse p50 {lat['p50']} ms p95 {lat['p95']} ms  ready {ready:.0f} s\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
