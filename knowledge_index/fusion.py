"""How the article score is made from passage, title and lexical evidence (a pure function, tested with tables)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetrievalWeights:
    """Weights of the three kinds of evidence in an article's score (see :func:`fuse`).

    The defaults were chosen on half of the demo questions, with the public FAQ sets as a guard; see
    docs/retrieval-evaluation.md. ``depth`` is how many chunks (at least) the vector search returns as
    candidates before the articles are re-scored.
    """

    title: float = 0.3
    lexical: float = 0.1
    depth: int = 100

    def __post_init__(self) -> None:
        if not (0.0 <= self.title <= 1.0 and 0.0 <= self.lexical <= 1.0):
            raise ValueError("retrieval weights must lie in [0, 1]")
        if self.depth < 1:
            raise ValueError("retrieval depth must be positive")


def fuse(passage: float, title: float | None, lexical: float | None, weights: RetrievalWeights) -> float:
    """The score the policy sees: a weighted mean of three similarities, each on its own natural scale.

    ``(1 - wl) * ((1 - wt) * passage + wt * title) + wl * lexical``, where ``passage`` is the cosine of the
    query with the article's best chunk, ``title`` the cosine with the article's "title (tags)" vector and
    ``lexical`` the IDF-weighted share of the query's words found in the article (0..1). The result stays on
    the cosine scale (an article whose three similarities are all x scores x), so thresholds keep a meaning.
    A missing part (``None``: no title vector, or no query text) drops out and its weight goes to the rest.
    """
    dense = passage if title is None else (1.0 - weights.title) * passage + weights.title * title
    if lexical is None:
        return dense
    return (1.0 - weights.lexical) * dense + weights.lexical * lexical
