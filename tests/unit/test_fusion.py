"""The article score: a weighted mean of passage, title and lexical similarity (table of known answers)."""

from __future__ import annotations

import pytest

from knowledge_index.fusion import RetrievalWeights, fuse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("passage", "title", "lexical", "weights", "expected"),
    [
        (0.6, 0.4, 0.5, RetrievalWeights(title=0.3, lexical=0.1), 0.9 * (0.7 * 0.6 + 0.3 * 0.4) + 0.1 * 0.5),
        (0.5, 0.5, 0.5, RetrievalWeights(title=0.3, lexical=0.1), 0.5),  # all parts equal: the same scale
        (0.6, 0.4, 0.5, RetrievalWeights(title=0.0, lexical=0.0), 0.6),  # dense only: the old score
        (0.6, None, 0.5, RetrievalWeights(title=0.3, lexical=0.1), 0.9 * 0.6 + 0.1 * 0.5),  # no title vector
        (0.6, 0.4, None, RetrievalWeights(title=0.3, lexical=0.1), 0.7 * 0.6 + 0.3 * 0.4),  # no query text
        (0.2, 0.3, 1.0, RetrievalWeights(title=0.0, lexical=1.0), 1.0),
    ],
)
def test_fuse(passage: float, title: float | None, lexical: float | None, weights: RetrievalWeights,
              expected: float) -> None:
    assert fuse(passage, title, lexical, weights) == pytest.approx(expected)


def test_lexical_evidence_can_reorder_close_articles_only() -> None:
    w = RetrievalWeights(title=0.3, lexical=0.1)
    # Close on dense evidence: the article holding the query's words wins.
    assert fuse(0.50, 0.40, 1.0, w) > fuse(0.52, 0.40, 0.2, w)
    # Far apart: words alone do not overturn a clearly better passage.
    assert fuse(0.40, 0.30, 1.0, w) < fuse(0.60, 0.40, 0.0, w)


@pytest.mark.parametrize("kwargs", [{"title": -0.1}, {"lexical": 1.5}, {"depth": 0}])
def test_weights_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetrievalWeights(**kwargs)  # type: ignore[arg-type]
