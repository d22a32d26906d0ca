"""The configured way to fit, save, load and delete intent models, for the trainer loop (method and targets from
settings)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlu.fitting import FitConfig, Progress
from nlu.intent import IntentModel
from nlu.training import train_model

log = logging.getLogger(__name__)


class IntentModelFactory:
    """Fits the configured head on vectors of the shared encoder; model files live in ``model_dir``."""

    def __init__(self, encoder_name: str, model_dir: Path, config: FitConfig) -> None:
        self.encoder_name = encoder_name
        self.model_dir = model_dir
        self.config = config
        self.method: str = config.method

    def fit(self, pairs: Sequence[tuple[str, str]], vectors: np.ndarray, oos_texts: Sequence[str],
            oos_vectors: np.ndarray, progress: Progress) -> IntentModel:
        """A model of these examples (nothing is written: see :meth:`save`)."""
        return train_model(list(pairs), list(oos_texts), vectors, oos_vectors, self.encoder_name, self.config,
                           progress)

    def save(self, model: IntentModel) -> None:
        """Write the model file (``<version>.npz``)."""
        model.save(self.model_dir)

    def load(self, version: str) -> IntentModel | None:
        """A saved model, or None when its file is gone or unreadable."""
        return IntentModel.load(self.model_dir, version)

    def remove(self, version: str) -> bool:
        """Delete a version's model file; False when there was none."""
        path = IntentModel.file_path(self.model_dir, version)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        log.info("deleted the model file of version %s", version)
        return True
