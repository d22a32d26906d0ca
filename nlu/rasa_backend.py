"""Intent classification by a separate Rasa server's ``/model/parse``, with the built-in classifier as fallback."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from domain.errors import FrontdeskError
from domain.models import IntentPrediction
from nlu.intent import IntentClassifier

log = logging.getLogger(__name__)

# What Rasa's FallbackClassifier puts on top of the ranking when it is in the pipeline.
FALLBACK_INTENT = "nlu_fallback"


class RasaError(FrontdeskError):
    """The Rasa server is unreachable, too slow, or answered something that is not a parse result.

    The message names the failure (timeout, HTTP status, malformed field) and never the customer's text.
    """


class RasaClient:
    """A thin synchronous client of a Rasa 3 server's HTTP API (``rasa run --enable-api``).

    Thread-safe: one ``httpx.Client`` (a connection pool) is shared by the pipeline's worker threads.
    """

    def __init__(self, url: str, timeout_seconds: float, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_seconds, transport=transport,
                                  trust_env=False, follow_redirects=False)

    def parse(self, text: str) -> list[tuple[str, float]]:
        """The intent ranking of ``text``, best first, as ``(intent, confidence)`` pairs.

        Raises:
            RasaError: unreachable, timed out, a non-200 answer, or a body without a usable ranking.
        """
        return parse_ranking(self._get_json("POST", "/model/parse", {"text": text}))

    def model_name(self) -> str:
        """The loaded model's name from ``GET /status``: its file name (``nlu-<data hash>`` for models trained by
        ``tools/rasa``), or Rasa's model id when no file is reported.

        Raises:
            RasaError: as ``parse``, or when no model is loaded.
        """
        body = self._get_json("GET", "/status", None)
        if not isinstance(body, dict):
            raise RasaError("/status did not return an object")
        model_file = body.get("model_file")
        if isinstance(model_file, str) and model_file:
            return model_file.rsplit("/", 1)[-1].removesuffix(".tar.gz")
        model_id = body.get("model_id")
        if isinstance(model_id, str) and model_id:
            return model_id
        raise RasaError("Rasa reports no loaded model")

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get_json(self, method: str, path: str, payload: dict[str, str] | None) -> Any:
        try:
            response = self._http.request(method, path, json=payload)
        except httpx.TimeoutException as e:
            raise RasaError(f"{path} timed out ({type(e).__name__})") from e
        except httpx.HTTPError as e:
            raise RasaError(f"{path} failed ({type(e).__name__})") from e
        if response.status_code != 200:
            raise RasaError(f"{path} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as e:
            raise RasaError(f"{path} did not return JSON") from e


def parse_ranking(body: Any) -> list[tuple[str, float]]:
    """Validate a ``/model/parse`` body and return its ranking, best first, names unique.

    Uses ``intent_ranking``; a body with only ``intent`` (a one-intent model) gives a one-item ranking.

    Raises:
        RasaError: the body is not a parse result (missing or malformed names or confidences).
    """
    if not isinstance(body, dict):
        raise RasaError("/model/parse did not return an object")
    items = body.get("intent_ranking")
    if not items and isinstance(body.get("intent"), dict):
        items = [body["intent"]]
    if not isinstance(items, list) or not items:
        raise RasaError("/model/parse returned no intent_ranking")
    ranking: dict[str, float] = {}
    for item in items:
        if not isinstance(item, dict):
            raise RasaError("an intent_ranking item is not an object")
        name, confidence = item.get("name"), item.get("confidence")
        if not isinstance(name, str) or not name:
            raise RasaError("an intent_ranking item has no name")
        if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not math.isfinite(confidence):
            raise RasaError("an intent_ranking item has no numeric confidence")
        if not -1e-6 <= confidence <= 1 + 1e-6:
            raise RasaError("an intent_ranking confidence is outside [0, 1]")
        ranking.setdefault(name, min(max(float(confidence), 0.0), 1.0))
    return sorted(ranking.items(), key=lambda pair: -pair[1])


def to_prediction(ranking: list[tuple[str, float]], model_version: str, min_confidence: float) -> IntentPrediction:
    """Map a Rasa ranking to our prediction.

    Out of scope when Rasa's FallbackClassifier won, or when the best confidence is below ``min_confidence``
    (DIET has no out-of-scope class of its own). ``nlu_fallback`` is not an intent and leaves the ranking.
    """
    fallback_won = ranking[0][0] == FALLBACK_INTENT
    intents = tuple((name, conf) for name, conf in ranking if name != FALLBACK_INTENT)
    confidence = intents[0][1] if intents else 0.0
    out_of_scope = fallback_won or not intents or confidence < min_confidence
    return IntentPrediction(
        intent=None if out_of_scope else intents[0][0], confidence=confidence, ranking=intents,
        out_of_scope=out_of_scope, model_version=model_version,
    )


class CircuitBreaker:
    """Closed until a call fails; then open (calls refused) for ``retry_after`` seconds; then one trial call.

    One failure is enough to open it: the point is that a dead or hung server costs one timeout per
    ``retry_after`` seconds, not one per message. Thread-safe; while a trial call is in flight, others are refused.
    """

    def __init__(self, retry_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._trial_running = False

    @property
    def is_open(self) -> bool:
        """True while calls are being refused (or a trial call decides)."""
        with self._lock:
            return self._open_until is not None

    def allow(self) -> bool:
        """May a call go ahead now? Past the waiting time, exactly one caller gets a trial."""
        with self._lock:
            if self._open_until is None:
                return True
            if self._trial_running or self._clock() < self._open_until:
                return False
            self._trial_running = True
            return True

    def success(self) -> bool:
        """Record a successful call; True when this closed an open circuit (recovery)."""
        with self._lock:
            recovered = self._open_until is not None
            self._open_until = None
            self._trial_running = False
            return recovered

    def failure(self) -> bool:
        """Record a failed call; True when this opened a closed circuit."""
        with self._lock:
            opened = self._open_until is None
            self._open_until = self._clock() + self.retry_after
            self._trial_running = False
            return opened


class RasaIntentClassifier:
    """An ``IntentClassifier`` that asks Rasa and falls back to the built-in classifier when Rasa fails.

    Predictions from Rasa carry ``rasa:<model id>`` as their version; fallback predictions carry the
    built-in model's version, so every stored prediction says which model made it. ``intents`` are the
    built-in classifier's (both are trained from the same ``nlu.yml``).
    """

    def __init__(self, client: RasaClient, fallback: IntentClassifier, *, retry_after_seconds: float = 30.0,
                 min_confidence: float = 0.35, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.fallback = fallback
        self.min_confidence = min_confidence
        self.breaker = CircuitBreaker(retry_after_seconds, clock)
        self.intents = fallback.intents
        self.version = "rasa:unknown"
        self._model: str | None = None

    @classmethod
    def connect(cls, url: str, fallback: IntentClassifier, *, timeout_seconds: float = 0.5,
                retry_after_seconds: float = 30.0, min_confidence: float = 0.35) -> RasaIntentClassifier:
        """A classifier talking to the Rasa server at ``url`` (no request is made until the first message)."""
        return cls(RasaClient(url, timeout_seconds), fallback, retry_after_seconds=retry_after_seconds,
                   min_confidence=min_confidence)

    @property
    def using_rasa(self) -> bool:
        """False while the circuit is open and messages go to the built-in classifier."""
        return not self.breaker.is_open

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        if not self.breaker.allow():
            return self.fallback.predict(text, vector)
        try:
            if self._model is None:
                self._model = self.client.model_name()
                self.version = f"rasa:{self._model}"
            ranking = self.client.parse(text)
        except RasaError as e:
            if self.breaker.failure():
                log.warning("Rasa at %s is unavailable (%s); using the built-in classifier %s, retrying in %.0f s",
                            self.client.url, e, self.fallback.version, self.breaker.retry_after)
            else:
                log.info("Rasa at %s is still unavailable (%s)", self.client.url, e)
            self._model = None  # a restarted server may serve another model: ask again on recovery
            return self.fallback.predict(text, vector)
        if self.breaker.success():
            log.info("Rasa at %s answers again (model %s); using it for intents", self.client.url, self._model)
        return to_prediction(ranking, self.version, self.min_confidence)

    def use_fallback(self, model: IntentClassifier) -> None:
        """Fall back to another built-in model from now on (a trainer activated it); Rasa stays in front."""
        self.fallback = model
        self.intents = model.intents

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()
