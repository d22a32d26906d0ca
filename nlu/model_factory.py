"""The configured way to train and load intent models, for the trainer loop (method and targets from settings)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlu.fitting import FitConfig
from nlu.intent import IntentModel
from nlu.retrain import Encoder, Progress
from nlu.training import train_model

ENCODE_BATCH = 64


class IntentModelFactory:
    """Trains the configured head on the shared encoder's vectors; models live in ``model_dir``."""

    def __init__(self, encoder: Encoder, encoder_name: str, model_dir: Path, config: FitConfig) -> None:
        self.encoder = encoder
        self.encoder_name = encoder_name
        self.model_dir = model_dir
        self.config = config
        self.method: str = config.method

    def train(self, pairs: Sequence[tuple[str, str]], oos_texts: Sequence[str], progress: Progress
              ) -> IntentModel:
        texts = [t for t, _ in pairs] + list(oos_texts)
        parts = []
        for start in range(0, len(texts), ENCODE_BATCH):
            parts.append(self.encoder.encode(texts[start : start + ENCODE_BATCH]))
            progress(0.5 * min(1.0, (start + ENCODE_BATCH) / max(1, len(texts))), "encoding the examples")
        vectors = np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)
        model = train_model(list(pairs), list(oos_texts), vectors[: len(pairs)], vectors[len(pairs):],
                            self.encoder_name, self.config, lambda f, s: progress(0.5 + 0.45 * f, s))
        model.save(self.model_dir)
        progress(1.0, "trained")
        return model

    def load(self, version: str) -> IntentModel | None:
        return IntentModel.load(self.model_dir, version)
