"""Plot turn latency results (``bench/turn_latency.py`` JSON files) as percentiles against throughput.

    .venv/bin/python bench/plot_latency.py bench/results/turn_latency-*.json --out docs/img/turn-latency.png

Every phase of every file is one point per percentile (x: messages per second achieved, y: latency in ms, log
scale), labelled with the file's label and the phase (closed loop C=16, open loop 30/s, ...).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PERCENTILES = ("p50", "p95", "p99")


def phase_name(phase: dict[str, Any]) -> str:
    """``C=16`` for a closed-loop phase, ``30/s`` for an open-loop one."""
    if phase.get("mode") == "open":
        return f"{phase.get('rate'):g}/s"
    return f"C={phase.get('concurrency')}"


def points(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per phase: label, throughput and the latency percentiles."""
    rows = []
    for path in paths:
        data = json.loads(path.read_text())
        label = data.get("label") or path.stem
        for phase in data.get("phases", []):
            latency = phase.get("latency_ms") or {}
            rows.append({"label": f"{label}: {phase_name(phase)}", "series": label,
                         "throughput": float(phase["messages_per_second"]),
                         **{p: float(latency[p]) for p in PERCENTILES if p in latency}})
    return rows


def plot(rows: list[dict[str, Any]], out: Path, target_rate: float, target_p50: float, target_p99: float) -> None:
    """Percentiles against throughput, one marker per percentile, one colour per file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    markers = {"p50": "o", "p95": "s", "p99": "^"}
    series = sorted({r["series"] for r in rows})
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(series)}
    for row in rows:
        for p in PERCENTILES:
            if p in row:
                ax.scatter(row["throughput"], row[p], marker=markers[p], color=colours[row["series"]], s=36)
        ax.annotate(row["label"].split(": ", 1)[1], (row["throughput"], row.get("p50", 1)), fontsize=7,
                    xytext=(4, -10), textcoords="offset points")
    ax.axhline(target_p50, color="green", linestyle=":", linewidth=1)
    ax.axhline(target_p99, color="red", linestyle=":", linewidth=1)
    ax.axvline(target_rate, color="grey", linestyle="--", linewidth=1)
    ax.text(target_rate, target_p50, f" target p50 {target_p50:g} ms", fontsize=7, color="green", va="bottom",
            ha="right")
    ax.text(target_rate, target_p99, f" target p99 {target_p99:g} ms", fontsize=7, color="red", va="bottom",
            ha="right")
    ax.set_yscale("log")
    ax.set_xlim(0, max(target_rate * 1.05, max(r["throughput"] for r in rows) * 1.1))
    ax.set_xlabel("messages per second (achieved)")
    ax.set_ylabel("turn latency, ms (log)")
    ax.set_title("Turn latency through the HTTP API (o p50, s p95, ^ p99)")
    handles = [plt.Line2D([], [], color=colours[s], marker="o", linestyle="", label=s) for s in series]
    ax.legend(handles=handles, fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="turn_latency JSON files")
    parser.add_argument("--out", type=Path, default=Path("docs/img/turn-latency.png"))
    parser.add_argument("--target-rate", type=float, default=200.0)
    parser.add_argument("--target-p50", type=float, default=20.0)
    parser.add_argument("--target-p99", type=float, default=60.0)
    args = parser.parse_args()
    rows = points(args.results)
    if not rows:
        parser.error("no phases in these files")
    for row in rows:
        print(f"{row['label']:<40} {row['throughput']:7.1f} msg/s  "
              + "  ".join(f"{p} {row[p]:8.1f}" for p in PERCENTILES if p in row))
    plot(rows, args.out, args.target_rate, args.target_p50, args.target_p99)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
