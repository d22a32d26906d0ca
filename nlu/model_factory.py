"""The configured way to fit, save, load and delete intent models, for the trainer loop (method and targets from
settings; model files in the shared store)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from nlu.fitting import FitConfig, Progress
from nlu.intent import IntentModel, ModelFiles, load_model
from nlu.training import train_model

log = logging.getLogger(__name__)


class IntentModelFactory:
    """Fits the configured head on vectors of the shared encoder; model files live in ``files`` (the database)."""

    def __init__(self, encoder_name: str, files: ModelFiles, config: FitConfig) -> None:
        self.encoder_name = encoder_name
        self.files = files
        self.config = config
        self.method: str = config.method

    def fit(self, pairs: Sequence[tuple[str, str]], vectors: np.ndarray, oos_texts: Sequence[str],
            oos_vectors: np.ndarray, progress: Progress) -> IntentModel:
        """A model of these examples (nothing is written: see :meth:`save`)."""
        return train_model(list(pairs), list(oos_texts), vectors, oos_vectors, self.encoder_name, self.config,
                           progress)

    def save(self, model: IntentModel) -> None:
        """Store the model file."""
        self.files.put(model.version, model.to_bytes())

    def load(self, version: str) -> IntentModel | None:
        """A stored model, or None when its file is gone or unreadable."""
        return load_model(self.files, version)

    def remove(self, version: str) -> bool:
        """Delete a version's model file; False when there was none."""
        removed = self.files.delete(version)
        if removed:
            log.info("deleted the model file of version %s", version)
        return removed
