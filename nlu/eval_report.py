"""The evaluation report: a text summary for the terminal, a JSON file and a confusion-matrix PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu.metrics import OOS_NAME, confusion_matrix


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_summary(report: dict[str, Any]) -> str:
    """A few readable lines per method: scores, worst confusions, timings."""
    lines = [f"dataset {report['dataset']}: train {report['sizes']['train']}, validation "
             f"{report['validation']}, test {report['sizes']['test']} ({report['sizes']['test_oos']} out of scope); "
             f"{report['intents']} intents; encoder {report['encoder']}"]
    lines += [f"note: {note}" for note in report.get("notes", [])]
    for result in report["methods"]:
        m = result["metrics"]
        lines.append(
            f"[{result['method']}] top-1 accuracy {_pct(result['closed_set_accuracy'])}; with out-of-scope "
            f"detection: accuracy {_pct(m['accuracy'])}, in-scope accuracy {_pct(m['in_scope_accuracy'])}, "
            f"macro-F1 {_pct(m['macro_f1'])}, out-of-scope recall {_pct(m['oos_recall'])} precision "
            f"{_pct(m['oos_precision'])}, false out-of-scope {_pct(m['false_oos_rate'])}; ECE {result['ece']:.3f}")
        lat = result["latency_ms"]
        lines.append(
            f"[{result['method']}] fit {result['fit_seconds']:.1f} s; per message: encode {lat['encode_p50']:.2f} ms "
            f"+ classify {lat['classify_p50']:.2f} ms = {lat['total_p50']:.2f} ms p50 ({lat['total_p95']:.2f} ms p95, "
            f"{lat['samples']} messages); T={result['temperature']:.3f}, OOS threshold "
            f"{result['oos_threshold']['threshold']:.3f} ({result['oos_threshold']['rule']})")
        amb = result.get("ambiguity") or {}
        if amb.get("share") is not None:
            lines.append(f"[{result['method']}] ambiguous (margin < {result['ambiguous_margin']:.2f}): "
                         f"{_pct(amb['share'])} of in-scope predictions, right {_pct(amb['accuracy_ambiguous'])}; "
                         f"the others right {_pct(amb['accuracy_clear'])}")
        worst = ", ".join(f"{c['gold']} -> {c['predicted']} ({c['count']})" for c in m["confusions"][:5])
        lines.append(f"[{result['method']}] worst confusions: {worst or 'none'}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], gold: Sequence[str | None], predicted: Sequence[str | None],
                 folder: Path, top_classes: int = 20) -> list[Path]:
    """Write ``summary.json`` and ``confusion.png`` (the first method's test predictions) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = folder / "summary.json"
    summary.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    png = folder / "confusion.png"
    title = f"{report['dataset']}: {report['methods'][0]['method']} head on {report['encoder']}"
    plot_confusions(gold, predicted, png, title, top_classes)
    return [summary, png]


def most_confused(names: list[str], counts: np.ndarray, top: int) -> list[int]:
    """Indices of the ``top`` classes with the most errors (as gold or as prediction), in name order."""
    errors = counts.copy()
    np.fill_diagonal(errors, 0)
    involvement = errors.sum(axis=0) + errors.sum(axis=1)
    ranked = sorted(range(len(names)), key=lambda i: (-involvement[i], names[i]))
    chosen = [i for i in ranked[:top] if involvement[i] > 0] or ranked[:top]
    return sorted(chosen, key=lambda i: (names[i] == OOS_NAME, names[i]))


def plot_confusions(gold: Sequence[str | None], predicted: Sequence[str | None], path: Path, title: str,
                    top: int = 20) -> None:
    """A confusion-matrix heat map of the most-confused classes (all of them when there are few)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, counts = confusion_matrix(gold, predicted)
    keep = most_confused(names, counts, top)
    sub = counts[np.ix_(keep, keep)]
    labels = [names[i] for i in keep]
    errors = sub.astype(float)
    np.fill_diagonal(errors, np.nan)  # colour the mistakes; the diagonal is written, not coloured
    size = max(6.0, 0.42 * len(keep) + 3)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    vmax = max(1.0, float(np.nanmax(errors)) if np.isfinite(errors).any() else 1.0)
    image = ax.imshow(np.ma.masked_invalid(errors), cmap="Reds", vmin=0, vmax=vmax)
    for r in range(len(keep)):
        for c in range(len(keep)):
            if sub[r, c]:
                dark = r != c and sub[r, c] > vmax / 2
                ax.text(c, r, str(sub[r, c]), ha="center", va="center", fontsize=7,
                        color="white" if dark else "0.35" if r == c else "black",
                        fontweight="normal" if r == c else "bold")
    ax.set_xticks(range(len(keep)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(keep)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    shown = "all" if len(keep) == len(names) else f"the {len(keep)} most-confused of {len(names)}"
    ax.set_title(f"{title}\n{shown} classes; colour = errors, grey = correct", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.7, label="messages")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
