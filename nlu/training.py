"""Build the intent classifier from Rasa YAML: load a saved model for the same data, or train one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from nlu.intent import LinearIntentClassifier, OutOfScopeRule, check_training_data, model_version
from nlu.rasa_yaml import read_nlu, read_nlu_tolerant

log = logging.getLogger(__name__)

LINEAR_C = 10.0


class TextEncoder(Protocol):
    """The slice of knowledge_index's Encoder that training needs."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def encode_all(encoder: TextEncoder, texts: Sequence[str], progress: bool = False, batch: int = 64) -> np.ndarray:
    """Encode many texts in batches, with an optional progress bar."""
    parts = []
    bar = tqdm(total=len(texts), desc="Encoding examples", unit="ex", disable=not progress)
    for start in range(0, len(texts), batch):
        parts.append(encoder.encode(texts[start : start + batch]))
        bar.update(min(batch, len(texts) - start))
    bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def load_or_train(
    training_data: Path, encoder: TextEncoder, model_dir: Path, oos: OutOfScopeRule,
    min_examples: int = 2, progress: bool = False,
) -> LinearIntentClassifier:
    """The classifier for the current training data, trained only when no saved model matches.

    In a folder of YAML files a malformed file is logged (path, line, reason) and skipped.

    Raises:
        SourceFileError: a single training file is malformed (with file and line).
        ValidationError: too few intents or examples.
    """
    if training_data.is_dir():
        data, problems = read_nlu_tolerant(training_data)
        for problem in problems:
            log.warning("training file skipped: %s", problem)
    else:
        data = read_nlu(training_data)
    pairs = data.training_examples()
    check_training_data(pairs, min_examples)
    version = model_version(pairs, encoder.name, {"C": LINEAR_C})
    loaded = LinearIntentClassifier.load(model_dir, version, oos)
    if loaded is not None:
        log.info("loaded intent model %s (%d intents)", version, len(loaded.intents))
        return loaded
    texts = [t for t, _ in pairs]
    vectors = encode_all(encoder, texts, progress=progress)
    model = LinearIntentClassifier.train(texts, [i for _, i in pairs], vectors, version, oos, c=LINEAR_C)
    model.save(model_dir)
    log.info("trained intent model %s on %d examples", version, len(pairs))
    return model
