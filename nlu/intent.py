"""Intent classification on sentence embeddings: a linear head with out-of-scope detection."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from domain.errors import ValidationError
from domain.models import IntentPrediction

log = logging.getLogger(__name__)


class IntentClassifier(Protocol):
    """Maps a message (text and its sentence embedding) to an IntentPrediction.

    Contract: ``ranking`` lists every known intent once with probabilities summing to ~1, best first;
    ``intent`` is None exactly when ``out_of_scope`` is True; ``model_version`` names the trained model.
    """

    version: str
    intents: tuple[str, ...]

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction: ...


@dataclass(frozen=True)
class OutOfScopeRule:
    """A message is out of scope when the best probability or the nearest-example similarity is low."""

    min_confidence: float = 0.35
    min_similarity: float = 0.40


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


def model_version(pairs: Sequence[tuple[str, str]], encoder_name: str, params: dict[str, float]) -> str:
    """A stable id for (training data, encoder, hyper-parameters)."""
    material = json.dumps([sorted(pairs), encoder_name, sorted(params.items())], ensure_ascii=False)
    return "lin-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


class LinearIntentClassifier:
    """Multinomial logistic regression on frozen, normalized sentence embeddings.

    Prediction is one small matrix product in numpy (no sklearn at inference). Out-of-scope detection
    uses only in-scope data: low top probability, or low cosine similarity to every training example.
    """

    def __init__(self, classes: Sequence[str], coef: np.ndarray, intercept: np.ndarray,
                 examples: np.ndarray, version: str, oos: OutOfScopeRule) -> None:
        self.intents = tuple(classes)
        self._coef = np.ascontiguousarray(coef, dtype=np.float32)
        self._intercept = np.asarray(intercept, dtype=np.float32)
        self._examples = np.ascontiguousarray(examples, dtype=np.float32)
        self.version = version
        self.oos = oos

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], vectors: np.ndarray, version: str,
              oos: OutOfScopeRule, c: float = 10.0) -> LinearIntentClassifier:
        """Fit on encoded examples."""
        from sklearn.linear_model import LogisticRegression

        check_training_data(list(zip(texts, labels, strict=True)))
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(vectors, list(labels))
        return cls([str(x) for x in model.classes_], model.coef_, model.intercept_, vectors, version, oos)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of vectors, columns in ``intents`` order."""
        logits = np.asarray(vectors, dtype=np.float32) @ self._coef.T + self._intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        v = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        probs = self.probabilities(v)[0]
        order = np.argsort(-probs)
        ranking = tuple((self.intents[i], float(probs[i])) for i in order)
        similarity = float((self._examples @ v[0]).max()) if len(self._examples) else 0.0
        confidence = ranking[0][1]
        oos = confidence < self.oos.min_confidence or similarity < self.oos.min_similarity
        return IntentPrediction(
            intent=None if oos else ranking[0][0], confidence=confidence, ranking=ranking,
            out_of_scope=oos, model_version=self.version,
        )

    def save(self, folder: Path) -> Path:
        """Write ``<version>.npz`` (plain arrays, no pickle) and return its path."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.version}.npz"
        tmp = folder / f"{self.version}.npz.tmp"
        with tmp.open("wb") as fh:
            np.savez(fh, classes=np.array(self.intents), coef=self._coef, intercept=self._intercept,
                     examples=self._examples)
        os.replace(tmp, path)
        return path

    @classmethod
    def latest(cls, folder: Path, oos: OutOfScopeRule) -> LinearIntentClassifier | None:
        """The most recently trained model in a folder, or None."""
        saved = sorted(folder.glob("lin-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True) if (
            folder.is_dir()) else []
        for path in saved:
            model = cls.load(folder, path.stem, oos)
            if model is not None:
                return model
        return None

    @classmethod
    def load(cls, folder: Path, version: str, oos: OutOfScopeRule) -> LinearIntentClassifier | None:
        """Load a saved model, or None when it does not exist or cannot be read."""
        path = folder / f"{version}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls([str(c) for c in data["classes"]], data["coef"], data["intercept"],
                           data["examples"], version, oos)
        except (OSError, ValueError, KeyError):
            log.warning("intent model %s is unreadable; retraining", path)
            return None
