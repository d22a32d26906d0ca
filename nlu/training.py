"""Train the intent model from (text, intent) pairs, or load the saved one for the same Rasa YAML data."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from domain.ports import Encoder
from nlu.fitting import FitConfig, Progress, fit_intent_head
from nlu.intent import METHOD_PREFIX, IntentModel, ModelFiles, check_training_data, load_model, model_version
from nlu.rasa_yaml import read_nlu, read_nlu_tolerant

log = logging.getLogger(__name__)


def encode_all(encoder: Encoder, texts: Sequence[str], progress: bool = False, batch: int = 64,
               desc: str = "Encoding examples") -> np.ndarray:
    """Encode many texts in batches, with an optional progress bar."""
    parts = []
    bar = tqdm(total=len(texts), desc=desc, unit="ex", disable=not progress)
    for start in range(0, len(texts), batch):
        parts.append(encoder.encode(texts[start : start + batch]))
        bar.update(min(batch, len(texts) - start))
    bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def version_for(pairs: Sequence[tuple[str, str]], oos_texts: Sequence[str], encoder_name: str,
                config: FitConfig) -> str:
    """The model version of this data, encoder and fitting configuration."""
    return model_version(pairs, encoder_name, asdict(config), oos_texts, METHOD_PREFIX[config.method])


def train_model(pairs: Sequence[tuple[str, str]], oos_texts: Sequence[str], vectors: np.ndarray,
                oos_vectors: np.ndarray, encoder_name: str, config: FitConfig, progress: Progress | None = None,
                ) -> IntentModel:
    """Fit the configured head on encoded examples (see ``nlu.fitting``); intents are sorted by name.

    Raises:
        ValidationError: fewer than two intents.
    """
    check_training_data(pairs, 1)
    intents = sorted({intent for _, intent in pairs})
    index = {name: i for i, name in enumerate(intents)}
    labels = np.array([index[intent] for _, intent in pairs], dtype=np.int64)
    oos = oos_vectors if len(oos_texts) else np.zeros((0, vectors.shape[1]), dtype=np.float32)
    fit = fit_intent_head(vectors, labels, len(intents), oos, config, progress)
    return IntentModel.from_fit(intents, fit, version_for(pairs, oos_texts, encoder_name, config))


def load_or_train(
    training_data: Path, encoder: Encoder, files: ModelFiles, config: FitConfig,
    min_examples: int = 2, progress: bool = False,
) -> IntentModel:
    """The classifier for the current training data, trained only when no stored model matches.

    Several processes starting together should call this under one lock (``Database.exclusive``): the first
    trains and stores the model, the others load it.

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
    version = version_for(pairs, (), encoder.name, config)
    loaded = load_model(files, version)
    if loaded is not None:
        log.info("loaded intent model %s (%d intents)", version, len(loaded.intents))
        return loaded
    vectors = encode_all(encoder, [t for t, _ in pairs], progress=progress)
    bar = tqdm(total=100, desc="Training the intent model", unit="%", disable=not progress)

    def advance(fraction: float, stage: str) -> None:
        bar.set_postfix_str(stage, refresh=False)
        bar.update(round(100 * fraction) - bar.n)

    model = train_model(pairs, (), vectors, np.zeros((0, vectors.shape[1]), np.float32), encoder.name, config,
                        advance)
    bar.close()
    files.put(model.version, model.to_bytes())
    log.info("trained intent model %s on %d examples", version, len(pairs))
    return model
