"""Protocols of the parts several packages swap and share (the others live next to their one consumer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalized float32 vectors (``knowledge_index.encoder``: MiniLM on ONNX Runtime or
    sentence-transformers, a hash encoder for tests; ``knowledge_index.batching`` groups concurrent calls).

    Contract: ``encode(texts)`` returns an array of shape ``(len(texts), dim)``, dtype float32, each row
    of unit length (so inner product is cosine similarity); the same text always gives the same vector;
    it is safe to call from several threads. ``name`` identifies the model: vectors from different names
    are not comparable, and an index built with one name is rebuilt when the name changes.
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...
