"""ONNX Runtime backend for sentence-transformers BERT models: same vectors, about half the latency.

The ONNX graph is exported once, offline, from the local model folder (``export_onnx``) and cached; at
run time only ``tokenizers`` and ``onnxruntime`` are used (mean pooling and L2 normalization in numpy).
``quantize_onnx`` derives an int8 graph from that export (dynamic quantization, per-channel weights):
about a third of the CPU per message, vectors within cosine ~0.99 of fp32 (docs/performance.md).
``quantize_onnx_static`` derives one with activation scales fixed offline on calibration texts (static
quantization): a text's vector no longer depends on the other texts of its batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from domain.errors import EncoderError
from knowledge_index.encoder import normalize

log = logging.getLogger(__name__)

OPSET = 17
INT8_SUFFIX = "+int8"  # appended to the encoder name: int8 vectors are close to, not equal to, fp32 ones
BATCH = 64  # texts per onnxruntime call when encoding a long list


class OnnxEncoder:
    """Encodes with an exported ONNX graph; the vectors match the sentence-transformers model."""

    def __init__(self, name: str, model_dir: Path, onnx_path: Path, threads: int = 2,
                 allow_spinning: bool = False) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - both are dependencies
            raise EncoderError(f"the ONNX backend needs onnxruntime and tokenizers: {e}") from e
        self.name = name
        tokenizer = load_tokenizer(model_dir, Tokenizer)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads keep a core busy after every call; on a small, shared machine that CPU is
        # taken from request handling (docs/performance.md), so by default they sleep instead.
        spin = "1" if allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        try:
            self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise EncoderError(f"cannot load ONNX model {onnx_path}: {e}") from e
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of the texts, in order. Long lists run in batches of ``BATCH`` texts of similar length
        (each batch is padded to its own longest text, as sentence-transformers does), so memory stays bounded
        and short texts do not pay for long ones' padding."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= BATCH:
            return self._encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            out[chunk] = self._encode_batch([texts[i] for i in chunk])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the tokenizer's padding state is shared; ORT itself is thread-safe
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalize(pooled).astype(np.float32, copy=False)


def onnx_cache_path(model_dir: Path, cache_dir: Path) -> Path:
    """Where the exported graph of a model folder is cached (keyed by the weights' size and mtime)."""
    weights = next((model_dir / n for n in ("model.safetensors", "pytorch_model.bin") if (model_dir / n).exists()),
                   model_dir)
    stat = weights.stat()
    key = hashlib.sha256(f"{model_dir.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{OPSET}".encode()).hexdigest()
    return cache_dir / f"encoder-{key[:16]}.onnx"


def int8_cache_path(fp32_path: Path) -> Path:
    """Where the int8 graph derived from an fp32 export is cached (next to it)."""
    return fp32_path.with_name(fp32_path.stem + ".int8.onnx")


class _RootBelowWarning(logging.Filter):
    """Drops records logged directly on the root logger below WARNING (child loggers are not affected)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


class QuantizerNoise(_RootBelowWarning):
    """Also drops the static quantizer's advice to pre-process the graph (its symbolic shape inference fails on
    this export, and the quantizer needs no shapes it does not already have)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return super().filter(record) and not (record.name == "root" and "pre-process" in record.getMessage())


def quantize_onnx(fp32_path: Path, out_path: Path) -> Path:
    """Dynamic int8 quantization of an exported graph (offline, a few seconds).

    Weights are int8 per output channel: per-tensor scales move the vectors much further from fp32
    (mean cosine 0.96 instead of 0.99 on the demo texts). Activations are quantized at run time.

    Raises:
        EncoderError: the graph cannot be quantized.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:  # pragma: no cover - part of onnxruntime
        raise EncoderError(f"int8 quantization needs onnxruntime.quantization: {e}") from e
    tmp = out_path.with_suffix(".onnx.tmp")
    # The quantizer logs a line per tensor at INFO on the root logger; keep its warnings only.
    quiet = _RootBelowWarning()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, out_path)
    except Exception as e:  # onnx / onnxruntime raise many kinds
        tmp.unlink(missing_ok=True)
        raise EncoderError(f"cannot quantize {fp32_path}: {e}") from e
    finally:
        root.removeFilter(quiet)
    log.info("quantized the encoder to int8: %s", out_path)
    return out_path


def export_onnx(model_dir: Path, out_path: Path) -> Path:
    """Export the transformer of a local sentence-transformers folder to ONNX (offline, a few seconds).

    Raises:
        EncoderError: the model cannot be loaded or exported.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModel
    except ImportError as e:
        raise EncoderError(f"exporting to ONNX needs torch and transformers: {e}") from e

    class _Wrapper(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            # Keyword arguments: passed positionally, BertModel maps them to the wrong parameters.
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    try:
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        sample = torch.ones((1, 8), dtype=torch.int64)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_suffix(".onnx.tmp")
        axes = {0: "batch", 1: "tokens"}
        # The tracer warns about data-dependent branches that are constant for BERT; they are noise here.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Wrapper(model), (sample, sample, torch.zeros_like(sample)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                              "last_hidden_state": axes},
                opset_version=OPSET, dynamo=False,
            )
        os.replace(tmp, out_path)
    except EncoderError:
        raise
    except Exception as e:  # torch.onnx raises many kinds
        raise EncoderError(f"cannot export {model_dir} to ONNX: {e}") from e
    log.info("exported the encoder to %s", out_path)
    return out_path


def export_onnx_in_child(model_dir: Path, out_path: Path, timeout: float = 900.0) -> Path:
    """:func:`export_onnx` in a child process, so that the server process never imports torch (it would keep
    ~500 MB of it resident for good; a process that only loads the export stays near 200 MB).

    Raises:
        EncoderError: the export failed (with the child's last lines of output).
    """
    done = subprocess.run([sys.executable, "-m", "knowledge_index.onnx_encoder", str(model_dir), str(out_path)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not out_path.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise EncoderError(f"exporting {model_dir} to ONNX failed: {tail}")
    log.info("exported the encoder to %s", out_path)
    return out_path


def load_tokenizer(model_dir: Path, tokenizer_class: Any) -> Any:
    """The model's tokenizer, truncating at its maximum sequence length (no padding)."""
    tokenizer = tokenizer_class.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=_max_seq_length(model_dir))
    return tokenizer


def _max_seq_length(model_dir: Path) -> int:
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, KeyError, ValueError):
        return 256


if __name__ == "__main__":  # python -m knowledge_index.onnx_encoder <model folder> <output .onnx>
    logging.basicConfig(level=logging.WARNING)
    export_onnx(Path(sys.argv[1]), Path(sys.argv[2]))
