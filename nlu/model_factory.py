"""The configured way to train and load intent models, for the trainer loop (the linear method)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlu.intent import LinearIntentClassifier, OutOfScopeRule, model_version
from nlu.retrain import Encoder, Progress
from nlu.training import LINEAR_C

ENCODE_BATCH = 64


class LinearModelFactory:
    """Trains the linear head on the shared encoder's vectors; models live in ``model_dir``."""

    method = "linear"

    def __init__(self, encoder: Encoder, encoder_name: str, model_dir: Path, oos: OutOfScopeRule) -> None:
        self.encoder = encoder
        self.encoder_name = encoder_name
        self.model_dir = model_dir
        self.oos = oos

    def train(self, pairs: Sequence[tuple[str, str]], oos_texts: Sequence[str], progress: Progress
              ) -> LinearIntentClassifier:
        texts = [t for t, _ in pairs]
        parts = []
        for start in range(0, len(texts), ENCODE_BATCH):
            parts.append(self.encoder.encode(texts[start : start + ENCODE_BATCH]))
            progress(0.8 * min(1.0, (start + ENCODE_BATCH) / max(1, len(texts))), "encoding the examples")
        vectors = np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)
        progress(0.85, "training")
        version = model_version(list(pairs), self.encoder_name, {"C": LINEAR_C, "oos": float(len(oos_texts))})
        model = LinearIntentClassifier.train(texts, [i for _, i in pairs], vectors, version, self.oos, c=LINEAR_C)
        model.save(self.model_dir)
        progress(1.0, "trained")
        return model

    def load(self, version: str) -> LinearIntentClassifier | None:
        return LinearIntentClassifier.load(self.model_dir, version, self.oos)
