"""Encode a list of texts once: vectors kept in a cache folder keyed by encoder name and the texts."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from domain.ports import Encoder
from nlu.training import encode_all

log = logging.getLogger(__name__)


def cache_key(encoder_name: str, texts: Sequence[str]) -> str:
    """A file-name-safe key for (encoder, exact texts in order)."""
    digest = hashlib.sha256(encoder_name.encode("utf-8"))
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8"))
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in encoder_name)[-40:]
    return f"{safe}-{len(texts)}-{digest.hexdigest()[:16]}"


def encode_cached(encoder: Encoder, texts: Sequence[str], cache_dir: Path | None,
                  progress: bool = False, desc: str = "Encoding") -> np.ndarray:
    """Vectors of ``texts``, read from ``cache_dir`` when encoded before (plain ``.npy``, no pickle).

    Args:
        cache_dir: folder of cached vectors; None disables caching.
    """
    path = cache_dir / f"{cache_key(encoder.name, texts)}.npy" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape[0] == len(texts):
                log.debug("vectors read from %s", path)
                return vectors
        except (OSError, ValueError):
            log.warning("cached vectors %s are unreadable; encoding again", path)
    vectors = encode_all(encoder, list(texts), progress=progress, desc=desc)
    if path is not None and len(texts):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            np.save(fh, vectors, allow_pickle=False)
        os.replace(tmp, path)
    return vectors
