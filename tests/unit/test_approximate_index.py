"""AutoIndex: exact below its threshold, HNSW above; removed and replaced vectors never come back."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from knowledge_index.approximate_index import AutoIndex, AutoIndexConfig
from knowledge_index.encoder import normalize
from knowledge_index.vector_index import ExactIndex, FaissIndex, load_index, new_index, save_index

pytestmark = pytest.mark.unit
DIM = 32
SMALL = AutoIndexConfig(threshold=500, side_min=100, dead_share=0.1)


def _clustered(n: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors around a few centres: neighbour structure like real embeddings have."""
    rng = np.random.default_rng(seed)
    centres = normalize(np.random.default_rng(99).standard_normal((clusters, DIM)))
    return normalize(centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, DIM)))


def _filled(n: int, config: AutoIndexConfig = SMALL, seed: int = 0) -> tuple[AutoIndex, ExactIndex, np.ndarray]:
    """An AutoIndex and an ExactIndex with the same ``n`` vectors (ids 0..n-1), added 5 at a time."""
    vecs = _clustered(n, seed)
    auto, exact = AutoIndex(DIM, config), ExactIndex(DIM)
    for start in range(0, n, 5):
        for idx in (auto, exact):
            idx.add(range(start, min(start + 5, n)), vecs[start : start + 5])
    assert auto.wait(60)
    return auto, exact, vecs


def _recall(auto: AutoIndex, exact: ExactIndex, queries: np.ndarray, k: int = 10) -> float:
    found = [len({i for i, _ in auto.search(q, k)} & {i for i, _ in exact.search(q, k)}) for q in queries]
    return sum(found) / (k * len(queries))


def _assert_current(index: AutoIndex, current: dict[int, np.ndarray], queries: np.ndarray, k: int = 30) -> None:
    """Every hit is a live id, scored with its current vector (a removed or replaced vector would not be)."""
    for q in queries:
        for i, score in index.search(q, k):
            assert i in current, f"removed id {i} returned"
            assert score == pytest.approx(float(current[i] @ q), abs=1e-4), f"stale vector of id {i} returned"


def test_below_the_threshold_it_is_exact() -> None:
    rng = np.random.default_rng(5)
    auto, exact = AutoIndex(DIM, SMALL), ExactIndex(DIM)
    for step in range(30):
        ids = rng.choice(450, size=20, replace=False).tolist()
        vecs = normalize(rng.standard_normal((20, DIM)))
        for idx in (auto, exact):
            idx.add(ids, vecs)
        if step % 3 == 0:
            gone = rng.choice(450, size=15, replace=False).tolist()
            for idx in (auto, exact):
                idx.remove(gone)
    assert not auto.approximate
    assert auto.ids() == exact.ids()
    for q in normalize(rng.standard_normal((50, DIM))):
        got, want = auto.search(q, 10), exact.search(q, 10)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def test_ties_are_broken_by_id_in_both_parts() -> None:
    v = normalize(np.ones((1, DIM)))
    index = AutoIndex(DIM, AutoIndexConfig(threshold=3, background=False))
    index.add([40, 10, 30, 20], np.repeat(v, 4, axis=0))  # a graph now
    index.add([25], v)  # the side index
    assert index.approximate
    assert [i for i, _ in index.search(v[0], 4)] == [10, 20, 25, 30]


def test_above_the_threshold_recall_at_10_against_exact() -> None:
    auto, exact, _ = _filled(3000)
    assert auto.approximate
    assert len(auto) == 3000
    assert auto.ids() == exact.ids()
    assert _recall(auto, exact, _clustered(200, seed=1)) >= 0.95


def test_removed_and_replaced_ids_never_come_back_across_rebuilds_and_reloads(tmp_path: Path) -> None:
    auto, _, vecs = _filled(2000)
    current = dict(enumerate(vecs))
    replacements = _clustered(100, seed=2)
    removed = list(range(0, 2000, 7))
    auto.remove([*removed, 10_000])  # unknown ids are ignored
    for i in removed:
        del current[i]
    for j, i in enumerate(range(1, 1000, 10)):  # replaced: graph entries become tombstones + side entries
        auto.add([i], replacements[j : j + 1])
        current[i] = replacements[j]
    queries = np.concatenate([vecs[:300], _clustered(50, seed=3)])  # old vectors as queries: worst case
    _assert_current(auto, current, queries)
    assert auto.ids() == set(current)
    assert auto.wait(60)  # ~19% of the graph is stale: a full rebuild ran in the background
    assert auto.rebuilds >= 2
    _assert_current(auto, current, queries)
    assert auto.ids() == set(current)
    save_index(auto, tmp_path, "enc")
    loaded = load_index("auto", tmp_path, DIM, "enc", SMALL)
    assert isinstance(loaded, AutoIndex)
    assert loaded.ids() == set(current)
    _assert_current(loaded, current, queries)
    assert [loaded.search(q, 10) for q in queries[:20]] == [auto.search(q, 10) for q in queries[:20]]


def test_updates_made_during_a_background_rebuild_reach_the_new_index(monkeypatch: pytest.MonkeyPatch) -> None:
    release, started = threading.Event(), threading.Event()
    vecs = _clustered(700)
    index = AutoIndex(DIM, SMALL)
    build = index._build

    def slow_build(snap: object) -> object:
        started.set()
        assert release.wait(30)
        return build(snap)  # type: ignore[arg-type]

    monkeypatch.setattr(index, "_build", slow_build)
    index.add(range(600), vecs[:600])  # crosses the threshold: the graph build starts and waits
    assert started.wait(30)
    index.remove(range(0, 100))
    index.add(range(600, 700), vecs[600:])
    index.add([150], vecs[:1])  # replaced while the build holds the old vector
    assert not index.approximate
    release.set()
    assert index.wait(30)
    assert index.approximate
    current = {i: vecs[i] for i in range(100, 700)} | {150: vecs[0]}
    assert index.ids() == set(current)
    _assert_current(index, current, vecs[:200])
    assert index.search(vecs[650], 1)[0][0] == 650


def test_concurrent_searches_during_updates_and_rebuilds() -> None:
    index, _, vecs = _filled(1000)
    fresh = _clustered(2000, seed=4)
    gone: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                removed_before = set(gone)
                hits = index.search(vecs[rng.integers(0, 1000)], 20)
                assert not removed_before & {i for i, _ in hits}
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    try:
        next_id = 5000
        for article in range(200):  # article edits: remove 5 chunk ids, add 5 new ones (ids are never reused)
            old = [article * 5 + j for j in range(5)]
            index.remove(old)
            gone.update(old)
            index.add(range(next_id, next_id + 5), fresh[article * 5 : article * 5 + 5])
            next_id += 5
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert index.wait(60)
    assert index.rebuilds >= 3
    assert len(index) == 1000
    assert index.ids() == set(range(5000, 6000))


def test_save_keeps_an_unchanged_graph_and_drops_replaced_ones(tmp_path: Path) -> None:
    index, _, vecs = _filled(800)
    index.save(tmp_path)
    graphs = sorted(p.name for p in tmp_path.glob("auto-graph-*"))
    assert len(graphs) == 1
    index.add([5000], vecs[:1])  # a side-index change only
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("auto-graph-*")) == graphs
    index.remove(range(200))  # a quarter of the graph: rebuilt
    assert index.wait(60)
    index.save(tmp_path)
    after = sorted(p.name for p in tmp_path.glob("auto-graph-*"))
    assert len(after) == 1 and after != graphs
    assert AutoIndex.load(tmp_path, DIM, SMALL).ids() == set(range(200, 800)) | {5000}


def test_falls_back_to_flat_when_it_shrinks_below_the_threshold() -> None:
    index, exact, vecs = _filled(800)
    assert index.approximate
    for idx in (index, exact):
        idx.remove(range(400))
    assert index.wait(60)
    assert not index.approximate
    for q in vecs[:20]:
        got, want = index.search(q, 10), exact.search(q, 10)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def test_a_failed_rebuild_leaves_a_working_index(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(snap: object) -> object:
        raise RuntimeError("out of memory")

    index = AutoIndex(DIM, SMALL)
    monkeypatch.setattr(index, "_build", broken)
    vecs = _clustered(600)
    index.add(range(600), vecs)
    assert index.wait(30)
    assert not index.approximate and index.rebuilds == 0
    index.remove([3])
    assert len(index) == 599
    assert index.search(vecs[7], 1)[0][0] == 7
    assert 3 not in {i for i, _ in index.search(vecs[3], 10)}


def test_auto_adopts_a_saved_faiss_index_without_re_encoding(tmp_path: Path) -> None:
    flat = FaissIndex(DIM)
    vecs = _clustered(700)
    flat.add(range(700), vecs)
    save_index(flat, tmp_path, "enc")
    adopted = load_index("auto", tmp_path, DIM, "enc", SMALL)
    assert isinstance(adopted, AutoIndex)
    assert adopted.wait(30)
    assert adopted.approximate
    assert adopted.ids() == set(range(700))
    assert load_index("auto", tmp_path, DIM, "other-encoder") is None


def test_new_index_builds_the_auto_kind() -> None:
    index = new_index("auto", DIM, AutoIndexConfig(threshold=1234))
    assert isinstance(index, AutoIndex) and index.config.threshold == 1234
    with pytest.raises(Exception, match="unknown index kind"):
        new_index("hnsw", DIM)
