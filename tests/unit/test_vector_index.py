"""Contract suite for vector indexes: faiss must agree with the exact numpy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_index.approximate_index import AutoIndex, AutoIndexConfig
from knowledge_index.encoder import normalize
from knowledge_index.vector_index import ExactIndex, FaissIndex, load_index, new_index, save_index

pytestmark = pytest.mark.unit
DIM = 32
AnyIndex = FaissIndex | ExactIndex | AutoIndex


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return normalize(np.random.default_rng(seed).standard_normal((n, DIM)))


@pytest.fixture(params=["faiss", "exact", "auto", "auto-graph"])
def index(request: pytest.FixtureRequest) -> AnyIndex:
    if request.param == "auto-graph":  # kind auto past its threshold: an HNSW graph from 4 vectors on
        return new_index("auto", DIM, AutoIndexConfig(threshold=3, side_min=2, background=False))
    return new_index(request.param, DIM)


def test_search_returns_best_first_with_cosine_scores(index: AnyIndex) -> None:
    vecs = _vectors(50)
    index.add(range(100, 150), vecs)
    hits = index.search(vecs[7], 5)
    assert hits[0][0] == 107
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert len(hits) == 5


def test_add_existing_id_replaces_vector(index: AnyIndex) -> None:
    vecs = _vectors(10)
    index.add(range(10), vecs)
    index.add([3], vecs[8:9])
    assert len(index) == 10
    top = index.search(vecs[8], 2)
    assert {i for i, _ in top} == {3, 8}
    assert index.search(vecs[3], 1)[0][0] != 3


def test_remove_drops_ids_and_ignores_unknown(index: AnyIndex) -> None:
    vecs = _vectors(10)
    index.add(range(10), vecs)
    index.remove([2, 4, 999])
    assert index.ids() == {0, 1, 3, 5, 6, 7, 8, 9}
    assert all(i not in (2, 4) for i, _ in index.search(vecs[2], 10))


def test_empty_index_and_k_larger_than_size(index: AnyIndex) -> None:
    assert index.search(_vectors(1)[0], 3) == []
    index.add([5], _vectors(1))
    assert [i for i, _ in index.search(_vectors(1)[0], 10)] == [5]


def test_rejects_wrong_shapes_and_duplicate_ids(index: AnyIndex) -> None:
    with pytest.raises(ValueError, match="shape"):
        index.add([1], np.zeros((1, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        index.add([1, 2], _vectors(1))
    with pytest.raises(ValueError, match="duplicate"):
        index.add([1, 1], _vectors(2))


def test_save_and_load_round_trip(index: AnyIndex, tmp_path: Path) -> None:
    vecs = _vectors(20)
    index.add(range(20), vecs)
    save_index(index, tmp_path, "enc-a")
    loaded = load_index(index.kind, tmp_path, DIM, "enc-a")
    assert loaded is not None
    assert loaded.ids() == index.ids()
    assert loaded.search(vecs[4], 3) == index.search(vecs[4], 3)


def test_load_refuses_other_encoder_or_dimension(index: AnyIndex, tmp_path: Path) -> None:
    index.add([1], _vectors(1))
    save_index(index, tmp_path, "enc-a")
    assert load_index(index.kind, tmp_path, DIM, "enc-b") is None
    assert load_index(index.kind, tmp_path, DIM * 2, "enc-a") is None
    assert load_index(index.kind, tmp_path / "missing", DIM, "enc-a") is None


def test_faiss_agrees_with_exact_after_a_mixed_history() -> None:
    rng = np.random.default_rng(42)
    faiss_index, exact = FaissIndex(DIM), ExactIndex(DIM)
    for step in range(30):
        ids = rng.choice(500, size=20, replace=False).tolist()
        vecs = normalize(rng.standard_normal((20, DIM)))
        for idx in (faiss_index, exact):
            idx.add(ids, vecs)
        if step % 3 == 0:
            gone = rng.choice(500, size=15, replace=False).tolist()
            for idx in (faiss_index, exact):
                idx.remove(gone)
    assert faiss_index.ids() == exact.ids()
    for q in normalize(rng.standard_normal((50, DIM))):
        got, want = faiss_index.search(q, 10), exact.search(q, 10)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def test_ties_are_broken_by_id_in_both() -> None:
    v = _vectors(1)
    same = np.repeat(v, 4, axis=0)
    for idx in (FaissIndex(DIM), ExactIndex(DIM)):
        idx.add([40, 10, 30, 20], same)
        assert [i for i, _ in idx.search(v[0], 3)] == [10, 20, 30]


def test_concurrent_searches_while_updating_stay_consistent() -> None:
    from concurrent.futures import ThreadPoolExecutor

    index = FaissIndex(DIM)
    vecs = _vectors(200, seed=3)
    index.add(range(200), vecs)

    def search(i: int) -> bool:
        hits = index.search(vecs[i % 100], 3)
        return bool(hits) and hits[0][0] == i % 100

    def update(i: int) -> None:
        index.add([100 + i % 100], vecs[100 + i % 100 : 101 + i % 100])
        index.remove([1000 + i])

    with ThreadPoolExecutor(max_workers=6) as pool:
        found = pool.map(search, range(400))
        list(pool.map(update, range(100)))
        assert all(found)
    assert len(index) == 200
