"""Intent classification on sentence embeddings: the classifier protocol, data checks and the saved model."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from domain.errors import ValidationError
from domain.models import IntentPrediction
from nlu.fitting import FitResult, in_scope_probabilities
from nlu.heads import HEAD_LOADERS, EnsembleHead, Head, KnnHead
from nlu.oos_score import TypicalityReference, nearest_similarity
from nlu.thresholds import OosThreshold

log = logging.getLogger(__name__)


class IntentClassifier(Protocol):
    """Maps a message (text and its sentence embedding) to an IntentPrediction.

    Contract: ``ranking`` lists every known intent once, best first, with probabilities summing to at most 1
    (a model that learned from out-of-scope examples keeps the rest for "none of these"); ``confidence`` is
    the first one; ``intent`` is None exactly when ``out_of_scope`` is True; ``ambiguous`` (never together
    with ``out_of_scope``) marks a top-2 margin too small to trust; ``model_version`` names the trained model.
    """

    @property
    def version(self) -> str: ...

    @property
    def intents(self) -> tuple[str, ...]: ...

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction: ...


def check_training_data(pairs: Sequence[tuple[str, str]], min_examples: int = 2) -> dict[str, int]:
    """Refuse data a classifier cannot learn from.

    Raises:
        ValidationError: naming the intents with too few examples, or when fewer than two intents exist.
    """
    counts: dict[str, int] = {}
    for _, intent in pairs:
        counts[intent] = counts.get(intent, 0) + 1
    if len(counts) < 2:
        raise ValidationError(f"training data needs at least two intents, found {len(counts)}")
    thin = sorted(f"{name} ({n})" for name, n in counts.items() if n < min_examples)
    if thin:
        raise ValidationError(f"intents with fewer than {min_examples} examples: {', '.join(thin)}")
    return counts


def model_version(pairs: Sequence[tuple[str, str]], encoder_name: str, params: dict[str, Any],
                  oos_texts: Sequence[str] = (), prefix: str = "lin") -> str:
    """A stable id for (training data, out-of-scope examples, encoder, method and settings)."""
    material = json.dumps([sorted(pairs), sorted(oos_texts), encoder_name, sorted(params.items())],
                          ensure_ascii=False, default=str)
    return f"{prefix}-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


METHOD_PREFIX = {"linear": "lin", "knn": "knn", "ensemble": "ens"}


class IntentModel:
    """A head on frozen sentence embeddings with calibrated probabilities and validated thresholds.

    Probabilities are ``softmax(logits / T)`` with ``T`` fitted on held-out predictions; a message is out of
    scope when its typicality score (``nlu.oos_score``) is below the stored threshold, and ambiguous when its
    top-2 margin is below the stored margin. All of them come from ``nlu.fitting`` and travel in the model file.
    """

    def __init__(self, intents: Sequence[str], head: Head, temperature: float, oos: OosThreshold,
                 reference: TypicalityReference, examples: np.ndarray, ambiguous_margin: float, oos_class: bool,
                 version: str, report: dict[str, Any] | None = None) -> None:
        self.intents = tuple(intents)
        self.head = head
        self.temperature = float(temperature)
        self.oos = oos
        self.reference = reference
        self.examples = np.ascontiguousarray(examples, dtype=np.float32)
        self.ambiguous_margin = float(ambiguous_margin)
        self.oos_class = oos_class
        self.version = version
        self.report = report or {}

    @classmethod
    def from_fit(cls, intents: Sequence[str], fit: FitResult, version: str) -> IntentModel:
        """Wrap a fitted head."""
        return cls(intents, fit.head, fit.temperature, fit.oos, fit.reference, fit.examples, fit.ambiguous_margin,
                   fit.oos_class, version, fit.report)

    @property
    def method(self) -> str:
        """linear, knn or ensemble."""
        return self.head.kind

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Calibrated intent probabilities for a batch, columns in ``intents`` order (rows sum to <= 1)."""
        return in_scope_probabilities(self.head.logits(np.asarray(vectors, dtype=np.float32)), self.temperature,
                                      len(self.intents))

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        with single_blas_thread():
            return self.predict_many(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]

    def oos_scores(self, vectors: np.ndarray, probabilities: np.ndarray | None = None) -> np.ndarray:
        """Typicality of each vector as an in-scope message (below ``oos.threshold``: out of scope)."""
        probs = self.probabilities(vectors) if probabilities is None else probabilities
        return self.reference.score(probs.max(axis=1), nearest_similarity(vectors, self.examples))

    def predict_many(self, vectors: np.ndarray) -> list[IntentPrediction]:
        """Predictions for a batch of vectors (evaluation; the pipeline predicts one message at a time)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        all_probs = self.probabilities(vectors)
        scores = self.oos_scores(vectors, all_probs)
        out = []
        for probs, score in zip(all_probs, scores, strict=True):
            order = np.argsort(-probs, kind="stable")
            ranking = tuple((self.intents[i], float(probs[i])) for i in order)
            confidence = ranking[0][1]
            oos = bool(score < self.oos.threshold)
            margin = confidence - ranking[1][1] if len(ranking) > 1 else 1.0
            out.append(IntentPrediction(
                intent=None if oos else ranking[0][0], confidence=confidence, ranking=ranking, out_of_scope=oos,
                model_version=self.version, ambiguous=not oos and margin < self.ambiguous_margin))
        return out

    def to_bytes(self) -> bytes:
        """The model as an ``.npz`` file's bytes (plain arrays and a JSON string, no pickle)."""
        meta = {"format": MODEL_FORMAT, "kind": self.head.kind, "params": self.head.params(),
                "intents": list(self.intents), "temperature": self.temperature, "oos": self.oos.as_dict(),
                "ambiguous_margin": self.ambiguous_margin, "oos_class": self.oos_class, "report": self.report}
        arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **self.reference.arrays(), **self.head.arrays()}
        if _knn_examples(self.head, len(self.intents)) is None:  # a neighbour head already stores them
            arrays["examples"] = self.examples
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, version: str) -> IntentModel | None:
        """A model from :meth:`to_bytes` output, or None when it cannot be read (e.g. an older format)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                if meta.get("format") != MODEL_FORMAT:
                    raise ValueError(f"model format {meta.get('format')!r}")
                arrays = {k: npz[k] for k in npz.files if k != "meta"}
            n_classes = len(meta["intents"]) + int(meta["oos_class"])
            head = HEAD_LOADERS[meta["kind"]](arrays, meta["params"], n_classes)
            examples = arrays.get("examples")
            if examples is None:
                examples = _knn_examples(head, len(meta["intents"]))
            if examples is None:
                raise KeyError("examples")
            return cls(meta["intents"], head, meta["temperature"], OosThreshold(**meta["oos"]),
                       TypicalityReference.from_arrays(arrays), examples, meta["ambiguous_margin"],
                       bool(meta["oos_class"]), version, meta.get("report"))
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
            log.warning("intent model %s is unreadable (%s)", version, type(e).__name__)
            return None

    def save(self, folder: Path) -> Path:
        """Write ``<version>.npz`` into a folder and return its path (exports and tests; the service keeps its
        models in the database, see :class:`ModelFiles`)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = self.file_path(folder, self.version)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        os.replace(tmp, path)
        return path

    @staticmethod
    def file_path(folder: Path, version: str) -> Path:
        """Where a version's model file lives in ``folder``."""
        return folder / f"{version}.npz"

    @classmethod
    def load(cls, folder: Path, version: str) -> IntentModel | None:
        """Load a model written by :meth:`save`, or None when it does not exist or cannot be read."""
        path = cls.file_path(folder, version)
        try:
            return cls.from_bytes(path.read_bytes(), version)
        except OSError:
            return None


class ModelFiles(Protocol):
    """Where trained intent models are kept, shared by every server process (``storage.model_files``).

    Contract: ``put`` then ``get`` of a version returns the same bytes in any process; ``put`` of a version
    already stored replaces it; ``delete`` of an unknown version returns False.
    """

    def get(self, version: str) -> bytes | None: ...

    def put(self, version: str, data: bytes) -> None: ...

    def delete(self, version: str) -> bool: ...

    def versions(self) -> list[str]:
        """Stored versions, newest first."""
        ...


def load_model(files: ModelFiles, version: str) -> IntentModel | None:
    """A stored model, or None when it is not stored or cannot be read."""
    data = files.get(version)
    return None if data is None else IntentModel.from_bytes(data, version)


def latest_model(files: ModelFiles) -> IntentModel | None:
    """The newest readable stored model, or None."""
    for version in files.versions():
        model = load_model(files, version)
        if model is not None:
            return model
    return None


MODEL_FORMAT = 3
_BLAS_LOCK = threading.Lock()


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run a one-message product on one BLAS thread.

    A two-thread OpenBLAS product of one vector with 10k examples took 16 ms p50 on a loaded 2-vCPU machine and
    0.6 ms on one thread (docs/nlu-evaluation.md). Calls are serialized so that overlapping ones cannot leave the
    process limited to one thread (each restores what it found).
    """
    with _BLAS_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
        yield


def _knn_examples(head: Head, n_intents: int) -> np.ndarray | None:
    """The in-scope training vectors a neighbour head holds, or None for a linear head."""
    knn = head if isinstance(head, KnnHead) else head.knn if isinstance(head, EnsembleHead) else None
    return None if knn is None else knn.examples[knn.labels < n_intents]
