"""A statically quantized (int8) copy of the ONNX encoder: activation ranges calibrated once, so that a text's
vector does not depend on the other texts of its batch (dynamic quantization's does).

Opt-in (``encoder.quantize = int8-static``): about 0.9 ms of CPU per message instead of ~3 ms, vectors within
cosine ~0.998 of fp32, but not every retrieval and intent figure holds (docs/performance.md §5). MiniLM's
LayerNorm and GELU outputs have a few channels ~15x larger than the rest; a SmoothQuant-style step (a ``Mul``
before each quantized MatMul flattens them, the weight rows are scaled to compensate) keeps one scale per tensor
usable. Calibration texts come from the demo articles and training examples, never from an evaluation set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domain.errors import EncoderError
from knowledge_index.onnx_encoder import QuantizerNoise, load_tokenizer

log = logging.getLogger(__name__)
INT8_STATIC_SUFFIX = "+int8s"  # the same for the statically quantized graph (followed by its recipe's digest)


@dataclass(frozen=True)
class StaticRecipe:
    """How :func:`quantize_onnx_static` quantizes the graph. The defaults are the variant measured best
    (bench/encoder_cpu.py, bench/results/int8-static-*). Weights are always int8 per output channel.

    Attributes:
        method: how an activation's range is set from the calibration texts: ``minmax``, ``percentile``
            (``percentile`` of its values) or ``entropy`` (KL divergence).
        smooth_alpha: SmoothQuant-style equalization before quantizing (None: none). MiniLM's LayerNorm and GELU
            outputs have a few channels ~15x larger than the rest (channel 99 reaches 28 where the median channel
            stays near 2), so one scale per tensor leaves the other channels a handful of levels. Each input
            channel j of a quantized MatMul is divided by s_j = a_j^alpha / w_j^(1 - alpha) (a_j: its largest
            calibration value, w_j: the largest weight in its row), by a ``Mul`` node inserted before the MatMul,
            and the weight row is multiplied by s_j: the same function in fp32, flatter activations in int8.
        weight_matmuls_only: quantize only the MatMuls with a weight (Q, K, V, attention output, feed-forward);
            False also quantizes the two activation x activation MatMuls of every attention.
        quantize_outputs: also quantize the MatMuls' outputs (int8 in, int8 out) instead of returning fp32.
        symmetric: symmetric activation ranges (zero point 0) instead of asymmetric ones.
    """

    method: str = "minmax"
    percentile: float = 99.999
    smooth_alpha: float | None = 0.7
    weight_matmuls_only: bool = True
    quantize_outputs: bool = False
    symmetric: bool = False

    def digest(self, texts: Sequence[str]) -> str:
        """Identifies the graph this recipe makes from these calibration texts (the same fp32 export given)."""
        h = hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode())
        for text in texts:
            h.update(b"\0" + text.encode("utf-8"))
        return h.hexdigest()


def demo_calibration_texts(articles_dir: Path | None = None, nlu_file: Path | None = None) -> list[str]:
    """The texts a static int8 graph's activation ranges are measured on: every demo article as the knowledge
    base encodes it (each chunk with its title, and its "title (tags)" text) and the demo's NLU training examples,
    in a stable order, duplicates dropped. Never the evaluation sets (demo/eval, ../shared/data).

    Raises:
        EncoderError: the demo files are missing or cannot be read.
    """
    from domain.errors import SourceFileError
    from knowledge_index.articles import find_article_files, read_article
    from knowledge_index.chunking import chunk_article
    from knowledge_index.knowledge_base import _title_text
    from nlu.rasa_yaml import read_nlu
    from settings import DEMO_DIR

    texts: list[str] = []
    try:
        for path in find_article_files(articles_dir or DEMO_DIR / "articles"):
            article = read_article(path)
            texts += [d.embedding_text(article.title) for d in chunk_article(article)]
            texts.append(_title_text(article.title, tuple(article.tags)))
        texts += [text for text, _ in read_nlu(nlu_file or DEMO_DIR / "nlu" / "nlu.yml").training_examples()]
    except (SourceFileError, OSError) as e:
        raise EncoderError(f"cannot read the static int8 calibration texts (the demo folder): {e}") from e
    return list(dict.fromkeys(texts))


def int8_static_cache_path(fp32_path: Path, digest: str) -> Path:
    """Where the static int8 graph derived from an fp32 export is cached (next to it, keyed by its recipe)."""
    return fp32_path.with_name(f"{fp32_path.stem}.int8s-{digest[:12]}.onnx")


def quantize_onnx_static(fp32_path: Path, out_path: Path, calibration_texts: Sequence[str], model_dir: Path,
                         recipe: StaticRecipe | None = None) -> Path:
    """Static int8 quantization of an exported graph (offline, about half a minute).

    Every activation feeding a quantized MatMul gets a fixed scale and zero point, measured by running the fp32
    graph over ``calibration_texts`` one text at a time (so padding never enters the ranges); weights are int8
    per output channel (QDQ format; onnxruntime runs each as MatMulIntegerToFloat). Unlike dynamic quantization
    nothing is measured at run time, so the vector of a text does not depend on the other texts of its batch.
    LayerNorm, softmax, GELU, the attention mask and the embeddings stay fp32.

    Raises:
        EncoderError: no calibration texts, an unknown method, or the graph cannot be quantized.
    """
    recipe = recipe or StaticRecipe()
    if not calibration_texts:
        raise EncoderError("static int8 quantization needs calibration texts")
    methods = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
    if recipe.method not in methods:
        raise EncoderError(f"unknown calibration method {recipe.method!r}; use one of {', '.join(methods)}")
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from tokenizers import Tokenizer
    except ImportError as e:  # pragma: no cover - part of onnxruntime
        raise EncoderError(f"int8 quantization needs onnxruntime.quantization: {e}") from e
    tokenizer = load_tokenizer(model_dir, Tokenizer)
    feeds: list[dict[str, np.ndarray]] = []
    for encoding in tokenizer.encode_batch(list(calibration_texts)):  # no padding: each text its own length
        ids = np.array([encoding.ids], dtype=np.int64)
        feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})

    class _Texts(CalibrationDataReader):
        """One text per calibration step (ORT's strided calibration), so no activation is kept for long."""

        def __init__(self) -> None:
            self._items = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

        def __len__(self) -> int:
            return len(feeds)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._items = iter(feeds[start_index:end_index])

    extra: dict[str, Any] = {
        "CalibStridedMinMax": 1,  # histograms and ranges are merged text by text
        "ActivationSymmetric": recipe.symmetric,
        "CalibPercentile": recipe.percentile,
    }
    if not recipe.quantize_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = ["MatMul"]
    tmp = out_path.with_suffix(".onnx.tmp")
    smoothed = out_path.with_suffix(".smoothed.onnx.tmp")
    quiet = QuantizerNoise()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        source = fp32_path
        if recipe.smooth_alpha is not None:
            source = _smooth_graph(fp32_path, smoothed, feeds, recipe.smooth_alpha)
        # The QDQ quantizer ignores its MatMulConstBOnly option: name the MatMuls to quantize instead.
        nodes = _weight_matmuls(source) if recipe.weight_matmuls_only else None
        # The histogram collector prints a line per step on stdout.
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            quantize_static(
                str(source), str(tmp), _Texts(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_quantize=nodes, calibrate_method=getattr(CalibrationMethod, methods[recipe.method]),
                extra_options=extra,
            )
        os.replace(tmp, out_path)
    except Exception as e:  # onnx / onnxruntime raise many kinds
        tmp.unlink(missing_ok=True)
        raise EncoderError(f"cannot quantize {fp32_path} statically: {e}") from e
    finally:
        smoothed.unlink(missing_ok=True)
        root.removeFilter(quiet)
    log.info("quantized the encoder to static int8 (%s, %d calibration texts): %s", recipe.method,
             len(feeds), out_path)
    return out_path


def _weight_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes whose second input is a weight (an initializer), not an activation."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def _smooth_graph(fp32_path: Path, out_path: Path, feeds: Sequence[dict[str, np.ndarray]], alpha: float) -> Path:
    """The graph with every weight MatMul's input channels equalized (see ``StaticRecipe.smooth_alpha``); the
    MatMuls sharing an input (Q, K, V) share one ``Mul``. Same outputs as the original up to fp32 rounding."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32_path))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            users.setdefault(node.input[0], []).append(node)
    # Largest absolute value of each input channel over the calibration texts (one text per run, no padding).
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None) for x in users)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    del probe
    peak: dict[str, np.ndarray] = {}
    for feed in feeds:
        for x, value in zip(users, session.run(list(users), feed), strict=True):
            channel = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            peak[x] = np.maximum(peak[x], channel) if x in peak else channel
    for x, nodes in users.items():
        rows = [numpy_helper.to_array(weights[n.input[1]]) for n in nodes]
        w_peak = np.max([np.abs(w).max(axis=1) for w in rows], axis=0)
        scale = np.maximum(peak[x], 1e-5) ** alpha / np.maximum(w_peak, 1e-5) ** (1 - alpha)
        scale = np.clip(scale, 1e-3, 1e3).astype(np.float32)
        for node, w in zip(nodes, rows, strict=True):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array((w * scale[:, None]).astype(np.float32),
                                                                    node.input[1]))
        inverse, smoothed = f"{x}/smooth_scale", f"{x}/smoothed"
        graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse))
        mul = helper.make_node("Mul", [x, inverse], [smoothed], name=f"{nodes[0].name}/Smooth")
        graph.node.insert(list(graph.node).index(nodes[0]), mul)  # the first user: x is defined before it
        for node in nodes:
            node.input[0] = smoothed
    onnx.save(model, str(out_path))
    return out_path
