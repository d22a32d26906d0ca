"""Vector indexes over normalized vectors: the VectorIndex protocol, faiss and an exact numpy reference."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from domain.errors import ConfigurationError
from knowledge_index.rwlock import ReadWriteLock

if TYPE_CHECKING:  # approximate_index imports this module; the runtime imports are inside the functions
    from knowledge_index.approximate_index import AutoIndex, AutoIndexConfig


class VectorIndex(Protocol):
    """Inner-product search over unit vectors keyed by int64 ids.

    Contract: ``add`` with an id already present replaces that vector; ``remove`` ignores unknown ids;
    ``search`` returns at most ``k`` (id, score) pairs, best first, scores are inner products (cosine
    similarity for unit vectors), ties broken by smaller id; ``save``/``load`` round-trip exactly.
    Safe to call from several threads.
    """

    dim: int

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None: ...

    def remove(self, ids: Iterable[int]) -> None: ...

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    def ids(self) -> set[int]: ...

    def __len__(self) -> int: ...

    def save(self, folder: Path) -> None: ...


def _check(ids: list[int], vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {vectors.shape}")
    if len(ids) != vectors.shape[0]:
        raise ValueError(f"{len(ids)} ids for {vectors.shape[0]} vectors")
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate ids in one add() call")
    return vectors


def _rank(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    # Sort by score descending, then id ascending, so both implementations agree on ties.
    order = np.lexsort((ids, -scores))[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


class ExactIndex:
    """Brute-force numpy index: the reference the faiss index is contract-tested against."""

    kind = "exact"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._lock = ReadWriteLock()

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        id_list = [int(i) for i in ids]
        vectors = _check(id_list, vectors, self.dim)
        with self._lock.write():
            keep = ~np.isin(self._ids, id_list)
            self._ids = np.concatenate([self._ids[keep], np.asarray(id_list, dtype=np.int64)])
            self._vectors = np.concatenate([self._vectors[keep], vectors])

    def remove(self, ids: Iterable[int]) -> None:
        with self._lock.write():
            keep = ~np.isin(self._ids, [int(i) for i in ids])
            self._ids, self._vectors = self._ids[keep], self._vectors[keep]

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        with self._lock.read():
            if not len(self._ids) or k <= 0:
                return []
            scores = self._vectors @ q
            return _rank(self._ids, scores, k)

    def ids(self) -> set[int]:
        with self._lock.read():
            return {int(i) for i in self._ids}

    def __len__(self) -> int:
        return len(self._ids)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock.read():
            tmp = folder / "exact.npz.tmp"
            with tmp.open("wb") as fh:
                np.savez(fh, ids=self._ids, vectors=self._vectors)
            os.replace(tmp, folder / "exact.npz")

    @classmethod
    def load(cls, folder: Path, dim: int) -> ExactIndex:
        index = cls(dim)
        with np.load(folder / "exact.npz") as data:
            vectors = data["vectors"]
            if vectors.shape[1:] != (dim,):
                raise ConfigurationError(f"index in {folder} has dimension {vectors.shape[1]}, expected {dim}")
            index._ids, index._vectors = data["ids"].astype(np.int64), vectors.astype(np.float32)
        return index


class FaissIndex:
    """``IndexIDMap2(IndexFlatIP)``: exact inner product, add/remove/replace by id, persisted to disk.

    Flat search stays around a millisecond up to ~10k chunks and ~15 ms at 100k on 2 cores (see
    docs/benchmarks.md); past that, kind ``auto`` (knowledge_index.approximate_index) switches to HNSW.
    """

    kind = "faiss"

    def __init__(self, dim: int, index: Any = None) -> None:
        import faiss

        self._faiss = faiss
        self.dim = dim
        self._index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = ReadWriteLock()

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        id_list = [int(i) for i in ids]
        vectors = _check(id_list, vectors, self.dim)
        id_arr = np.asarray(id_list, dtype=np.int64)
        with self._lock.write():
            self._index.remove_ids(id_arr)
            self._index.add_with_ids(vectors, id_arr)

    def remove(self, ids: Iterable[int]) -> None:
        id_arr = np.asarray([int(i) for i in ids], dtype=np.int64)
        if len(id_arr):
            with self._lock.write():
                self._index.remove_ids(id_arr)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        # One query is micro- to milliseconds of work: an OpenMP team costs more than it saves, and on a busy
        # 2-core machine waiting for the second thread took 5-15 ms per search (docs/performance.md). The
        # setting belongs to the calling thread, so it is made here, where the search runs.
        self._faiss.omp_set_num_threads(1)
        with self._lock.read():
            n = self._index.ntotal
            if not n or k <= 0:
                return []
            # Ask for a few extra so ties at the cut-off are broken by id like the exact index.
            scores, ids = self._index.search(q, min(n, k + 8))
        valid = ids[0] >= 0
        return _rank(ids[0][valid], scores[0][valid], k)

    def ids(self) -> set[int]:
        with self._lock.read():
            return {int(i) for i in self._faiss.vector_to_array(self._index.id_map)}

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "faiss.index.tmp"
        with self._lock.read():
            self._faiss.write_index(self._index, str(tmp))
        os.replace(tmp, folder / "faiss.index")

    @classmethod
    def load(cls, folder: Path, dim: int) -> FaissIndex:
        import faiss

        index = faiss.read_index(str(folder / "faiss.index"))
        if index.d != dim:
            raise ConfigurationError(f"index in {folder} has dimension {index.d}, expected {dim}")
        return cls(dim, index)


def new_index(kind: str, dim: int, auto: AutoIndexConfig | None = None) -> FaissIndex | ExactIndex | AutoIndex:
    """An empty index of the configured kind (``faiss``, ``exact`` or ``auto``, which ``auto`` configures)."""
    if kind == "faiss":
        return FaissIndex(dim)
    if kind == "exact":
        return ExactIndex(dim)
    if kind == "auto":
        from knowledge_index.approximate_index import AutoIndex

        return AutoIndex(dim, auto)
    raise ConfigurationError(f"unknown index kind {kind!r}; use 'faiss', 'exact' or 'auto'")


def load_index(kind: str, folder: Path, dim: int, encoder_name: str,
               auto: AutoIndexConfig | None = None) -> FaissIndex | ExactIndex | AutoIndex | None:
    """Load a persisted index if it exists and was built by the same encoder, else None.

    Kind ``auto`` also adopts a saved ``faiss`` or ``exact`` index (same vectors, nothing to re-encode).
    """
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return None
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    saved = meta.get("kind")
    adopt = kind == "auto" and saved in ("faiss", "exact")
    if (saved != kind and not adopt) or meta.get("encoder") != encoder_name or meta.get("dim") != dim:
        return None
    try:
        if kind == "auto":
            from knowledge_index.approximate_index import AutoIndex

            if not adopt:
                return AutoIndex.load(folder, dim, auto)
            index = AutoIndex(dim, auto)
            old = FaissIndex.load(folder, dim) if saved == "faiss" else ExactIndex.load(folder, dim)
            index.add(*_contents(old))
            return index
        return FaissIndex.load(folder, dim) if kind == "faiss" else ExactIndex.load(folder, dim)
    except (OSError, RuntimeError, ValueError, KeyError, ConfigurationError):
        return None


def _contents(index: FaissIndex | ExactIndex) -> tuple[list[int], np.ndarray]:
    """All ids and vectors of a flat index."""
    if isinstance(index, ExactIndex):
        return index._ids.tolist(), index._vectors
    inner, n = index._faiss.downcast_index(index._index.index), index._index.ntotal
    vectors = inner.reconstruct_n(0, n) if n else np.zeros((0, index.dim), dtype=np.float32)
    return index._faiss.vector_to_array(index._index.id_map).tolist(), vectors


def save_index(index: FaissIndex | ExactIndex | AutoIndex, folder: Path, encoder_name: str) -> None:
    """Persist an index with a manifest naming the encoder that produced its vectors."""
    index.save(folder)
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps({"kind": index.kind, "encoder": encoder_name, "dim": index.dim}))
    os.replace(tmp, folder / "manifest.json")
