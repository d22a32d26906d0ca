"""Vectors for articles saved straight through the repository in storage tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from knowledge_index.chunking import ChunkDraft
from knowledge_index.repository import ArticleVectors


def vectors_for(drafts: Sequence[ChunkDraft], dim: int = 4, seed: int = 0) -> ArticleVectors:
    """Distinct unit vectors for the drafts and the title (what an encoder named ``test-<dim>`` would give)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(len(drafts) + 1, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return ArticleVectors(f"test-{dim}", rows[:-1], rows[-1])
