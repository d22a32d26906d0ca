"""A vector index that is exact while small and HNSW (with a flat side index and tombstones) when large."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from domain.errors import ConfigurationError
from knowledge_index.rwlock import ReadWriteLock
from knowledge_index.vector_index import _check, _rank

log = logging.getLogger(__name__)
faiss: Any = importlib.import_module("faiss")  # untyped; this module is imported only for kind "auto"
_Snapshot = tuple[np.ndarray, np.ndarray, "_State | None"]


@dataclass(frozen=True)
class AutoIndexConfig:
    """When and how :class:`AutoIndex` goes approximate (settings.knowledge; numbers: bench/index_scale.py)."""

    threshold: int = 20_000  # up to this many vectors: exact flat search; above: HNSW
    m: int = 32  # HNSW links per node (memory and build time grow with it)
    ef_search: int = 128  # HNSW candidate list per query (at least k): recall against latency
    ef_construction: int = 40
    side_share: float = 0.02  # merge recent additions into the graph when they pass this share ...
    side_min: int = 1024  # ... or this many (a flat scan of 1024 vectors costs ~0.05 ms)
    dead_share: float = 0.10  # rebuild the graph when this share of it is removed or replaced
    build_threads: int = 1  # OpenMP threads of the background build (1 leaves a core to searches)
    background: bool = True  # False: rebuilds run in the add()/remove() call that triggers them


@dataclass
class _State:
    """One generation: an immutable HNSW graph with tombstones plus a flat index of later additions."""

    dim: int
    main: Any = None  # faiss.IndexHNSWFlat, never modified after it is built, or None (all in ``side``)
    main_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # label -> id
    dead: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.uint8))  # tombstone bit per label
    live: dict[int, int] = field(default_factory=dict)  # id -> label, for ids whose vector is in ``main``
    side: Any = None  # faiss.IndexIDMap2(IndexFlatIP)
    in_side: set[int] = field(default_factory=set)  # its ids (remove_ids is O(n): only called when needed)
    token: str = ""  # names the graph's file, so an unchanged graph is not rewritten by save()
    params: Any = None  # SearchParametersHNSW filtering tombstones (holds pointers into ``dead``)
    keep: tuple[Any, ...] = ()  # what those pointers point to

    def __post_init__(self) -> None:
        if self.side is None:
            self.side = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def arm(self, ef_search: int) -> None:
        """Search parameters whose selector reads the tombstone bitmap in place."""
        dead_sel = faiss.IDSelectorBitmap(self.dead)
        self.keep = (dead_sel, faiss.IDSelectorNot(dead_sel), self.dead)
        self.params = faiss.SearchParametersHNSW(sel=self.keep[1], efSearch=ef_search)

    def search_params(self, k: int) -> Any:
        """The shared parameters, or for a k above efSearch its own with efSearch = k (faiss does not raise it)."""
        return self.params if k <= self.params.efSearch else faiss.SearchParametersHNSW(sel=self.keep[1], efSearch=k)

    def apply(self, ids: np.ndarray, vectors: np.ndarray | None) -> None:
        """Tombstone the ids in the graph, drop them from the side index, then add ``vectors`` there if given."""
        in_side = []
        for i in ids.tolist():
            label = self.live.pop(i, None)
            if label is not None:
                self.dead[label >> 3] |= np.uint8(1 << (label & 7))
            elif i in self.in_side:
                in_side.append(i)
        if in_side:
            self.side.remove_ids(np.asarray(in_side, dtype=np.int64))
            self.in_side.difference_update(in_side)
        if vectors is not None:
            self.side.add_with_ids(vectors, ids)
            self.in_side.update(ids.tolist())

    def side_items(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the side index's ids and vectors."""
        n = int(self.side.ntotal)
        vectors = self.side.index.reconstruct_n(0, n) if n else np.zeros((0, self.dim), dtype=np.float32)
        return faiss.vector_to_array(self.side.id_map).astype(np.int64), vectors

    def graph_vectors(self, labels: np.ndarray) -> np.ndarray:
        """Copies of the graph's stored vectors at ``labels``."""
        xb = faiss.rev_swig_ptr(faiss.downcast_index(self.main.storage).get_xb(), self.main.ntotal * self.dim)
        return xb.reshape(-1, self.dim)[labels]

    def __len__(self) -> int:
        return len(self.live) + int(self.side.ntotal)


class AutoIndex:
    """Exact (flat) up to ``config.threshold`` vectors, HNSW above; the :class:`VectorIndex` contract.

    Searches merge an immutable HNSW graph, whose removed or replaced entries are tombstoned in a bitmap that
    a faiss selector skips, with a flat side index holding everything added since the graph was built (all
    vectors below the threshold), so an edit is searchable when ``add`` returns. When the side index passes
    ``side_share`` of the graph, a background thread appends it to a copy of the graph; when tombstones pass
    ``dead_share`` (or the size crosses the threshold) it builds a new graph (or goes back to flat). Updates
    made meanwhile are logged and replayed onto the new generation, which is then swapped in under the lock.
    """

    kind = "auto"

    def __init__(self, dim: int, config: AutoIndexConfig | None = None) -> None:
        self.dim = dim
        self.config = config or AutoIndexConfig()
        self._state = _State(dim)
        self._lock = ReadWriteLock()
        self._pending: list[tuple[np.ndarray, np.ndarray | None]] | None = None  # updates during a rebuild
        self._rebuilding = False
        self._idle = threading.Event()
        self._idle.set()
        self._retry_at = 0.0
        self.rebuilds = 0
        self.last_rebuild: tuple[str, int, float] | None = None  # (kind, vectors in the result, seconds)

    # --- the VectorIndex protocol -------------------------------------------------------------------

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        id_list = [int(i) for i in ids]
        self._update(np.asarray(id_list, dtype=np.int64), _check(id_list, vectors, self.dim))

    def remove(self, ids: Iterable[int]) -> None:
        id_arr = np.asarray([int(i) for i in ids], dtype=np.int64)
        if len(id_arr):
            self._update(id_arr, None)

    def _update(self, ids: np.ndarray, vectors: np.ndarray | None) -> None:
        """Apply an add (``vectors`` given) or a remove, log it for a running rebuild, maybe start one."""
        with self._lock.write():
            self._state.apply(ids, vectors)
            if self._pending is not None:
                self._pending.append((ids, None if vectors is None else vectors.copy()))
            start = self._claim_rebuild()
        if start:
            self._launch()

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        faiss.omp_set_num_threads(1)  # one query: single-threaded, as FaissIndex.search explains
        found: list[tuple[np.ndarray, np.ndarray]] = []
        with self._lock.read():
            s = self._state
            if k <= 0:
                return []
            if s.live:  # a few extra so ties at the cut-off are broken by id like the exact index
                n = min(k + 8, s.main.ntotal)
                scores, labels = s.main.search(q, n, params=s.search_params(n))
                found.append((s.main_ids[labels[0][labels[0] >= 0]], scores[0][labels[0] >= 0]))
            if s.side.ntotal:
                scores, ids = s.side.search(q, min(k + 8, s.side.ntotal))
                found.append((ids[0][ids[0] >= 0], scores[0][ids[0] >= 0]))
        if not found:
            return []
        return _rank(np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]), k)

    def ids(self) -> set[int]:
        with self._lock.read():
            return set(self._state.live) | self._state.in_side

    def __len__(self) -> int:
        with self._lock.read():
            return len(self._state)

    @property
    def approximate(self) -> bool:
        """Whether searches currently go through an HNSW graph."""
        return self._state.main is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no rebuild is running (tests, benchmarks); False on timeout."""
        return self._idle.wait(timeout)

    # --- rebuilds -------------------------------------------------------------------------------------

    def _claim_rebuild(self) -> bool:
        """Under the write lock: True (and marked as running) when a rebuild should start now."""
        if self._rebuilding or time.monotonic() < self._retry_at or not self._rebuild_kind():
            return False
        self._rebuilding = True
        self._idle.clear()
        return True

    def _rebuild_kind(self) -> str | None:
        s, c = self._state, self.config
        if s.main is None:
            return "build" if len(s) > c.threshold else None
        n_main = int(s.main.ntotal)
        if n_main - len(s.live) > c.dead_share * n_main:
            return "build"
        return "merge" if s.side.ntotal > max(c.side_min, c.side_share * n_main) else None

    def _launch(self) -> None:
        if not self.config.background:
            self._rebuild_loop()
            return

        def run() -> None:
            faiss.omp_set_num_threads(self.config.build_threads)
            self._rebuild_loop()

        threading.Thread(target=run, name="auto-index-rebuild", daemon=True).start()

    def _rebuild_loop(self) -> None:
        while True:
            snapshot: _Snapshot | None = None  # (ids, vectors, base): index these, appended to base's graph if any
            try:
                with self._lock.read():  # writers wait: the snapshot and the start of the log are one moment
                    kind = self._rebuild_kind()
                    if kind is not None:
                        snapshot, self._pending = self._snapshot(kind), []
                if snapshot is not None:
                    t0 = time.perf_counter()
                    new = self._build(snapshot)
                    with self._lock.write():
                        for ids, vectors in self._pending or []:
                            new.apply(ids, vectors)
                        self._state, self._pending = new, None
                        self.rebuilds += 1
                        kind = "merge" if snapshot[2] is not None else "build" if new.main is not None else "flat"
                        self.last_rebuild = (kind, len(new), time.perf_counter() - t0)
                    log.info("vector index %s: %d vectors in %.2f s", *self.last_rebuild)
            except Exception:  # searches go on with the old generation; try again a minute later
                log.exception("vector index rebuild failed")
                snapshot, self._retry_at = None, time.monotonic() + 60.0
            with self._lock.write():
                if snapshot is None or self._rebuild_kind() is None:
                    self._pending, self._rebuilding = None, False
                    self._idle.set()
                    return

    def _snapshot(self, kind: str) -> _Snapshot:
        """Copies, taken under the lock, of what a build needs; the graph itself is never modified."""
        s = self._state
        side_ids, side_vectors = s.side_items()
        if kind == "merge":
            return side_ids, side_vectors, _State(self.dim, s.main, s.main_ids, s.dead.copy(), dict(s.live))
        ids = np.fromiter(s.live.keys(), dtype=np.int64, count=len(s.live))
        labels = np.fromiter(s.live.values(), dtype=np.int64, count=len(s.live))
        vectors = s.graph_vectors(labels) if len(labels) else np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([ids, side_ids]), np.concatenate([vectors, side_vectors]), None

    def _build(self, snap: _Snapshot) -> _State:
        """The next generation (runs without the lock): graph + appended vectors, a new graph, or all flat."""
        (ids, vectors, base), c, new = snap, self.config, _State(self.dim)
        if base is not None:  # merge: append the side vectors to a copy of the graph
            graph = faiss.clone_index(base.main)
            start = int(graph.ntotal)
            graph.add(vectors)
            new.main_ids = np.concatenate([base.main_ids, ids])
            new.dead = _bitmap(len(new.main_ids))
            new.dead[: len(base.dead)] = base.dead
            new.live = base.live | dict(zip(ids.tolist(), range(start, start + len(ids)), strict=True))
        elif len(ids) > c.threshold:
            graph = faiss.IndexHNSWFlat(self.dim, c.m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = c.ef_construction
            graph.add(vectors)
            new.main_ids, new.dead = ids, _bitmap(len(ids))
            new.live = dict(zip(ids.tolist(), range(len(ids)), strict=True))
        else:
            new.apply(ids, vectors)
            return new
        new.main, new.token = graph, uuid.uuid4().hex
        new.arm(c.ef_search)
        return new

    # --- persistence ----------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """``auto.npz`` (ids, tombstones, side vectors) plus the graph, written only when it is new."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock.read():
            s = self._state
            side_ids, side_vectors = s.side_items()
            dead = s.dead.copy()
        graph = f"auto-graph-{s.token}.faiss" if s.main is not None else ""
        if graph and not (folder / graph).exists():
            faiss.write_index(s.main, str(folder / f"{graph}.tmp"))  # immutable: no lock needed
            os.replace(folder / f"{graph}.tmp", folder / graph)
        tmp = folder / "auto.npz.tmp"
        with tmp.open("wb") as fh:
            np.savez(fh, graph=np.array(graph), main_ids=s.main_ids, dead=dead, side_ids=side_ids,
                     side_vectors=side_vectors)
        os.replace(tmp, folder / "auto.npz")
        for old in folder.glob("auto-graph-*.faiss"):
            if old.name != graph:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path, dim: int, config: AutoIndexConfig | None = None) -> AutoIndex:
        """Read what :meth:`save` wrote; a rebuild starts if the saved state is due one."""
        index = cls(dim, config)
        s = index._state
        with np.load(folder / "auto.npz") as data:
            graph = str(data["graph"])
            main_ids, dead = data["main_ids"].astype(np.int64), data["dead"].astype(np.uint8)
            side_ids, side_vectors = data["side_ids"].astype(np.int64), data["side_vectors"].astype(np.float32)
        if side_vectors.shape[1:] != (dim,):
            raise ConfigurationError(f"index in {folder} has dimension {side_vectors.shape[1]}, expected {dim}")
        if graph:
            s.main = faiss.read_index(str(folder / graph))
            if s.main.d != dim or s.main.ntotal != len(main_ids) or len(dead) * 8 < len(main_ids):
                raise ConfigurationError(f"index in {folder} is inconsistent (dimension {s.main.d})")
            alive = np.flatnonzero(np.unpackbits(dead, bitorder="little")[: len(main_ids)] == 0)
            s.main_ids, s.dead, s.token = main_ids, dead, graph.removeprefix("auto-graph-").removesuffix(".faiss")
            s.live = dict(zip(main_ids[alive].tolist(), alive.tolist(), strict=True))
            s.arm(index.config.ef_search)
        if len(side_ids):
            s.apply(side_ids, side_vectors)
        with index._lock.write():
            start = index._claim_rebuild()
        if start:
            index._launch()
        return index


def _bitmap(n: int) -> np.ndarray:
    """A zeroed bitmap for ``n`` labels (one spare byte so it is never empty)."""
    return np.zeros(n // 8 + 1, dtype=np.uint8)
