"""The intent model this process serves: one holder that every consumer reads, kept equal to the active version."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from domain.models import IntentPrediction
from nlu.intent import IntentModel
from nlu.rasa_backend import RasaIntentClassifier

log = logging.getLogger(__name__)


class ActiveVersion(Protocol):
    """Which version is active in the shared store (``storage.trainer.TrainerStore``)."""

    def active_version_name(self) -> str | None: ...


class ServingModel:
    """The active intent model of the service, as seen by this process.

    The pipeline classifies with it (it is an ``IntentClassifier``), the agent desk and the APIs read its
    intents from it. :meth:`serve` swaps in a model this process just activated; :meth:`refresh` (called by the
    change feed when a model was activated or rolled back in any process) loads the active version from the
    shared store. Turns in flight finish on the model they started with. With the Rasa backend configured,
    Rasa answers first and the served model is its fallback.
    """

    def __init__(self, model: IntentModel, active: ActiveVersion, load: Callable[[str], IntentModel | None],
                 rasa: RasaIntentClassifier | None = None) -> None:
        self._model = model
        self._active = active
        self._load = load
        self._rasa = rasa
        self._lock = threading.Lock()
        if rasa is not None:
            rasa.use_fallback(model)

    @property
    def model(self) -> IntentModel:
        """The built-in model being served (Rasa's fallback when Rasa is configured)."""
        return self._model

    @property
    def version(self) -> str:
        """The served model's version."""
        return self._model.version

    @property
    def intents(self) -> tuple[str, ...]:
        """The intents the served model knows."""
        return self._model.intents

    @property
    def rasa(self) -> RasaIntentClassifier | None:
        """The Rasa backend in front of the model, if configured."""
        return self._rasa

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        """Classify with Rasa (when configured) or the served model."""
        if self._rasa is not None:
            return self._rasa.predict(text, vector)
        return self._model.predict(text, vector)

    def serve(self, model: IntentModel) -> None:
        """Serve ``model`` from now on (attribute assignment: new turns see it, turns in flight finish)."""
        with self._lock:
            if self._rasa is not None:
                self._rasa.use_fallback(model)
            previous, self._model = self._model.version, model
        if previous != model.version:
            log.info("serving intent model %s (was %s)", model.version, previous)

    def refresh(self, _versions: object = None) -> bool:
        """Serve the store's active version if it is not the one served; True when the model changed.

        A version whose file cannot be loaded is logged and the current model keeps serving.
        """
        name = self._active.active_version_name()
        if name is None or name == self._model.version:
            return False
        model = self._load(name)
        if model is None:
            log.error("the active intent model %s cannot be loaded here; still serving %s", name, self.version)
            return False
        self.serve(model)
        return True
