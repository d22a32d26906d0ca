"""Urgency learned from labelled tickets: logistic regression on sentence vectors and the rule signals.

The model is optional. It is trained by ``frontdesk train-urgency`` on a team's own ticket history
(:mod:`nlu.urgency_training`), saved as one ``.npz`` of plain arrays (no pickle) with its metadata as JSON,
and served by :class:`LearnedUrgencyScorer` next to the rules, which keep their reasons.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domain.enums import Urgency
from domain.errors import ConfigurationError
from domain.models import IntentPrediction, UrgencyAssessment
from domain.ports import Encoder
from nlu.urgency import RuleUrgencyScorer, UrgencyContext, UrgencyScorer
from nlu.urgency_signals import SemanticMatcher
from settings import UrgencySettings

log = logging.getLogger(__name__)

# The three levels a ticket label maps to; the learned part never says critical (only safety does).
LEVELS: tuple[Urgency, ...] = (Urgency.LOW, Urgency.NORMAL, Urgency.HIGH)
FORMAT = 1


@dataclass(frozen=True)
class Thresholds:
    """Decision rule on the class probabilities, tuned on validation data.

    High when p(high) >= ``high``; otherwise low when p(low) >= ``low``; otherwise normal.
    """

    high: float
    low: float

    def ranks(self, probs: np.ndarray) -> np.ndarray:
        """Level ranks (0 low, 1 normal, 2 high) for a batch of probability rows."""
        probs = np.atleast_2d(probs)
        out = np.ones(len(probs), dtype=np.int64)
        out[probs[:, 0] >= self.low] = 0
        out[probs[:, 2] >= self.high] = 2
        return out


class UrgencyModel:
    """Multinomial logistic regression over [sentence vector | signal features], standardized.

    Prediction is a small matrix product in numpy. ``encoder`` names the sentence encoder the vectors must come
    from, ``features`` the signal columns (checked when loading), ``semantic`` whether the semantic signal
    columns were filled at training time.
    """

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 thresholds: Thresholds, encoder: str, features: Sequence[str], semantic: bool,
                 meta: dict[str, Any] | None = None) -> None:
        self.coef = np.ascontiguousarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.thresholds = thresholds
        self.encoder = encoder
        self.features = tuple(features)
        self.semantic = semantic
        self.meta = dict(meta or {})
        digest = hashlib.sha256(self.coef.tobytes() + self.intercept.tobytes()
                                + json.dumps([thresholds.high, thresholds.low]).encode()).hexdigest()
        self.version = "urg-" + digest[:12]

    @property
    def dim(self) -> int:
        """Length of the sentence vectors the model expects."""
        return int(self.coef.shape[1]) - len(self.features)

    def probabilities(self, vectors: np.ndarray, signals: np.ndarray) -> np.ndarray:
        """p(low), p(normal), p(high) for a batch: one row per message."""
        x = np.hstack([np.atleast_2d(vectors), np.atleast_2d(signals)]).astype(np.float32)
        logits = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> Path:
        """Write the model atomically to ``path`` (an ``.npz``; arrays plus a JSON metadata string)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "format": FORMAT, "encoder": self.encoder, "features": list(self.features),
                "semantic": self.semantic, "thresholds": {"high": self.thresholds.high, "low": self.thresholds.low},
                "levels": [lv.value for lv in LEVELS], "version": self.version}
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, coef=self.coef, intercept=self.intercept, mean=self.mean, scale=self.scale,
                     meta=np.array(json.dumps(meta, sort_keys=True)))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> UrgencyModel:
        """Read a saved model.

        Raises:
            ConfigurationError: the file is missing, unreadable or of another format.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: np.asarray(data[k]) for k in ("coef", "intercept", "mean", "scale")}
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
            thresholds = Thresholds(float(meta["thresholds"]["high"]), float(meta["thresholds"]["low"]))
            return cls(arrays["coef"], arrays["intercept"], arrays["mean"], arrays["scale"], thresholds,
                       str(meta["encoder"]), meta["features"], bool(meta["semantic"]), meta)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigurationError(f"cannot load the urgency model {path}: {e}") from e


def reason_for(probs: np.ndarray, rank: int) -> str:
    """The learned part's sentence for agents."""
    level = LEVELS[rank]
    return f"similar tickets were {level.value} priority (p={float(probs[rank]):.2f})"


class LearnedUrgencyScorer:
    """Rules plus a learned model: the model sets the base level, the rules keep their floors and reasons.

    The base level is the model's (with its reason); an intent prior above it raises it; hard signals and
    soft boosts then apply exactly as in :class:`~nlu.urgency.RuleUrgencyScorer`, so safety stays critical.
    """

    def __init__(self, rules: RuleUrgencyScorer, model: UrgencyModel, encoder: Encoder) -> None:
        if model.encoder != encoder.name:
            raise ConfigurationError(f"the urgency model was trained on vectors of {model.encoder!r}, but the "
                                     f"encoder is {encoder.name!r}; retrain it with frontdesk train-urgency")
        if model.semantic != (rules.semantic is not None):
            raise ConfigurationError("the urgency model was trained with semantic signals "
                                     f"{'on' if model.semantic else 'off'}; set urgency.semantic_signals to match "
                                     "or retrain it")
        names = rules.feature_names()
        if tuple(names) != model.features:
            raise ConfigurationError("the urgency model was trained on other signals; retrain it")
        self.rules = rules
        self.model = model
        self.encoder = encoder

    def assess(self, text: str, intent: IntentPrediction, context: UrgencyContext,
               vector: np.ndarray | None = None) -> UrgencyAssessment:
        v = np.asarray(self.encoder.encode([text])[0] if vector is None else vector, dtype=np.float32)
        ev = self.rules.evidence(text, intent, context, v)
        probs = self.model.probabilities(v, ev.features)[0]
        rank = int(self.model.thresholds.ranks(probs)[0])
        reasons = [reason_for(probs, rank)]
        if ev.prior is not None and ev.prior.rank > rank:
            rank = ev.prior.rank
            if ev.prior_reason:
                reasons.append(ev.prior_reason)
        return ev.resolve(rank, reasons)


def build_urgency_scorer(priors: Mapping[str, Urgency], encoder: Encoder,
                         settings: UrgencySettings) -> UrgencyScorer:
    """The configured scorer: rules (with semantic signals on a real encoder), plus the model if one is set.

    The prototype sentences are encoded here, once, at startup.

    Raises:
        ConfigurationError: the configured model cannot be loaded or does not fit the encoder.
    """
    rules = build_rules(priors, encoder, settings)
    if not settings.model_path:
        return rules
    model = UrgencyModel.load(Path(settings.model_path).expanduser())
    log.info("urgency model %s loaded from %s", model.version, settings.model_path)
    return LearnedUrgencyScorer(rules, model, encoder)


def build_rules(priors: Mapping[str, Urgency], encoder: Encoder, settings: UrgencySettings) -> RuleUrgencyScorer:
    """The rule scorer as configured; training uses the same one, so the model sees the same signals."""
    # The hash test encoder has no notion of meaning: similarity to the prototypes would be noise.
    semantic = None
    if settings.semantic_signals and not encoder.name.startswith("hash"):
        semantic = SemanticMatcher(encoder)
    return RuleUrgencyScorer(priors, repeat_contacts=settings.repeat_contacts, semantic=semantic,
                             long_wait_seconds=settings.long_wait_minutes * 60,
                             very_long_wait_seconds=settings.very_long_wait_minutes * 60,
                             priority_tiers=settings.priority_tiers,
                             min_prior_confidence=settings.min_prior_confidence)
