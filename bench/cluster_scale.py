"""A large knowledge base served by several processes: search latency, and how fast an edit reaches every process.

A throwaway PostgreSQL database gets ``--chunks`` filler chunks with synthetic vectors (written straight into the
tables, as if an import had encoded them), then ``--workers`` separate ``frontdesk serve`` processes start on it
(hash encoder: this measures the index and the change feed, not the encoder). Measured:

* start-up of a process on the large knowledge base (load the stored vectors; the HNSW graph is built in the
  background) and its resident memory;
* ``KnowledgeBase.search`` in this process on the same database (faiss chunks + title vectors + word coverage +
  fusion, what a turn runs), single-threaded, once the graph is built: p50 / p95;
* an article edited through process A and then found by a search in process B: the time from A's answer to the
  first search in B that returns it (B is polled every 10 ms), ``--edits`` times; the same for a delete.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import REPO_ROOT, latency_summary, machine_info, process_tree, rss_mb, write_result

sys.path.insert(0, str(REPO_ROOT))

from knowledge_index.encoder import HashEncoder
from storage.db import Database
from storage.tables import ArticleRow, ChunkRow, utcnow

ADMIN_PASSWORD = "bench-admin-password"
DIM = 384
ENCODER = "hash-384"


def filler(db: Database, chunks: int, per_article: int, seed: int) -> None:
    """``chunks`` chunks in articles of ``per_article``, with random clustered unit vectors (bulk inserts)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((500, DIM)).astype(np.float32)
    articles = chunks // per_article
    now = utcnow()
    batch = 500
    for start in range(0, articles, batch):
        ids = range(start, min(start + batch, articles))
        article_rows, chunk_rows = [], []
        for a in ids:
            vectors = centres[rng.integers(0, len(centres), per_article + 1)] + \
                0.6 * rng.standard_normal((per_article + 1, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            article_rows.append({"id": f"filler-{a}", "title": f"Filler article {a}", "body": "filler",
                                 "tags": [], "locale": "en", "team": None, "source_path": None,
                                 "content_hash": f"h{a}", "created_at": now, "updated_at": now,
                                 "title_vector": vectors[-1].astype("<f4").tobytes(), "vector_encoder": ENCODER})
            chunk_rows.extend({"article_id": f"filler-{a}", "ordinal": o, "heading": f"Part {o}",
                               "text": f"filler text {a} {o}", "vector": vectors[o].astype("<f4").tobytes()}
                              for o in range(per_article))
        with db.begin() as conn:
            conn.execute(ArticleRow.__table__.insert(), article_rows)  # type: ignore[attr-defined]
            conn.execute(ChunkRow.__table__.insert(), chunk_rows)  # type: ignore[attr-defined]


class Server:
    """One ``frontdesk serve`` process on a free port."""

    def __init__(self, name: str, database_url: str, folder: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_") and k != "DATABASE_URL"}
        env.update({"DATABASE_URL": database_url, "FRONTDESK_DATA_DIR": str(folder / name),
                    "FRONTDESK_ENCODER__MODEL": "hash", "FRONTDESK_KNOWLEDGE__SEED_DIR": "",
                    "FRONTDESK_AUTH__BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD, "HF_HUB_OFFLINE": "1"})
        self.log = (folder / f"{name}.log").open("wb")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(self.port)], cwd=REPO_ROOT,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.ready_s: float | None = None

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    self.ready_s = time.perf_counter() - self.t0
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("server not ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def top_hit(server: Server, headers: dict[str, str], text: str) -> str | None:
    hits = httpx.post(f"{server.url}/api/articles/try", json={"text": text}, headers=headers, timeout=30).json()["hits"]
    return hits[0]["article_id"] if hits else None


def propagation(a: Server, b: Server, headers: dict[str, str], edits: int) -> dict[str, Any]:
    """Edit through ``a``, poll ``b`` until a search there finds the new text; then delete and poll again."""
    found_ms, gone_ms = [], []
    for i in range(edits):
        word = uuid.uuid4().hex[:10]
        article_id = f"edited-{i}"
        body = {"title": f"Edited {word}", "body": f"The {word} setting is under Account. Open {word} and save."}
        assert httpx.put(f"{a.url}/api/articles/{article_id}", json=body, headers=headers, timeout=60).is_success
        t0 = time.perf_counter()
        while top_hit(b, headers, f"{word} setting") != article_id:
            time.sleep(0.01)
        found_ms.append((time.perf_counter() - t0) * 1000)
        assert httpx.delete(f"{a.url}/api/articles/{article_id}", headers=headers, timeout=60).status_code == 204
        t0 = time.perf_counter()
        while top_hit(b, headers, f"{word} setting") == article_id:
            time.sleep(0.01)
        gone_ms.append((time.perf_counter() - t0) * 1000)
    return {"edit_found_on_other_process_ms": latency_summary(found_ms),
            "delete_gone_on_other_process_ms": latency_summary(gone_ms)}


def search_latency(database_url: str, queries: int) -> dict[str, Any]:
    """``KnowledgeBase.search`` here, on the same stored vectors, as a turn calls it."""
    from knowledge_index.approximate_index import AutoIndex
    from knowledge_index.knowledge_base import KnowledgeBase
    from storage.articles import SqlArticleRepository

    db = Database(database_url)
    encoder = HashEncoder(DIM)
    kb = KnowledgeBase(SqlArticleRepository(db), encoder, "auto")
    t0 = time.perf_counter()
    report = kb.load()
    load_s = time.perf_counter() - t0
    index = kb.index
    if isinstance(index, AutoIndex):
        index.wait(600)
    graph_s = time.perf_counter() - t0
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((queries, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ms = []
    for q in vectors:
        s0 = time.perf_counter()
        kb.search(q, 8, text="how do I change the filler setting")
        ms.append((time.perf_counter() - s0) * 1000)
    db.dispose()
    return {"chunks": report.chunks, "articles": report.articles, "load_seconds": round(load_s, 2),
            "graph_ready_seconds": round(graph_s, 2),
            "approximate": bool(getattr(index, "approximate", False)), "search_ms": latency_summary(ms),
            "search_ms_median": round(statistics.median(ms), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--per-article", type=int, default=5)
    p.add_argument("--edits", type=int, default=20)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/frontdesk_bench_scale")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT / "bench"))
    from turn_latency import throwaway_postgres

    result: dict[str, Any] = {"benchmark": "cluster_scale", "machine": machine_info(), "config": vars(args)}
    with throwaway_postgres(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        db = Database(url)
        db.migrate()
        t0 = time.perf_counter()
        filler(db, args.chunks, args.per_article, seed=1)
        db.dispose()
        result["filler_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"{args.chunks} filler chunks written in {result['filler_seconds']} s", file=sys.stderr)
        result["in_process"] = search_latency(url, args.queries)
        print(f"KnowledgeBase.search: {result['in_process']}", file=sys.stderr)
        servers = [Server(n, url, Path(tmp)) for n in ("a", "b")]
        try:
            for s in servers:
                s.wait_ready()
            result["startup_seconds"] = [round(s.ready_s or 0, 1) for s in servers]
            headers = {"Authorization": "Bearer " + httpx.post(
                f"{servers[0].url}/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD},
                timeout=30).json()["token"]}

            def approximate(server: Server) -> bool:
                view = httpx.get(f"{server.url}/api/admin/process", headers=headers, timeout=30).json()
                return bool(view.get("index_approximate"))

            deadline = time.perf_counter() + 600
            while not all(approximate(s) for s in servers) and time.perf_counter() < deadline:
                time.sleep(1)
            result["graph_ready_after_start_seconds"] = [round(time.perf_counter() - s.t0, 1) for s in servers]
            result["rss_mb"] = [rss_mb(pid) for s in servers for pid in process_tree(s.proc.pid)]
            result["propagation"] = propagation(servers[0], servers[1], headers, args.edits)
        finally:
            for s in servers:
                s.stop()
    for key in ("startup_seconds", "graph_ready_after_start_seconds", "rss_mb"):
        print(f"{key}: {result[key]}")
    print(f"search (in process, {result['in_process']['chunks']} chunks): {result['in_process']['search_ms']}")
    for key, value in result["propagation"].items():
        print(f"{key}: {value}")
    if not args.no_write:
        path = write_result("cluster_scale", result)
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
