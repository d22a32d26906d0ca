"""Urgency scoring with reasons: intent priors, lexical and semantic signals, tone, and the customer's context."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from domain.enums import Urgency
from domain.models import IntentPrediction, UrgencyAssessment
from nlu.urgency_signals import (
    DEFAULT_SIGNALS,
    SemanticMatcher,
    Signal,
    SignalHit,
    anger,
    feature_names,
    find_signals,
    negative,
    signal_features,
    urgent,
)

__all__ = ["DEFAULT_SIGNALS", "Boost", "RuleEvidence", "RuleUrgencyScorer", "Signal", "UrgencyContext",
           "UrgencyScorer"]

log = logging.getLogger(__name__)

# Each reason adds this much to the score inside its level's band of 0.25 (five reasons at most count).
_STEP = 0.045
_MAX_COUNTED = 5


@dataclass(frozen=True)
class UrgencyContext:
    """What is known about the customer beyond the message itself."""

    customer_tier: str = "standard"
    recent_contacts: int = 0  # the customer's other conversations in the recent window
    waiting_seconds: float = 0.0  # how long the customer has been waiting for a person (re-scoring while queued)


class UrgencyScorer(Protocol):
    """Rates a message low / normal / high / critical with a score in [0, 1], and says why.

    Contract: ``reasons`` is empty only when the level is the default ``normal`` or below; each reason is a
    short sentence a human agent can read. The score lies in the level's band (low [0, 0.25), normal
    [0.25, 0.5), high [0.5, 0.75), critical [0.75, 1]) and grows with the number of reasons. ``vector`` is the
    message's sentence embedding when the caller already has it (the pipeline does); without it a scorer that
    needs one encodes the text itself.
    """

    def assess(self, text: str, intent: IntentPrediction, context: UrgencyContext,
               vector: np.ndarray | None = None) -> UrgencyAssessment: ...


@dataclass(frozen=True)
class Boost:
    """A soft signal (tone, customer context): it can raise the level by one step, never set it."""

    reason: str
    weight: int = 1
    group: str = ""  # boosts of one non-empty group add their weight once (anger and frustration are one mood)


@dataclass(frozen=True)
class RuleEvidence:
    """Everything the rules found in one message, before it is turned into a level."""

    prior: Urgency | None
    prior_reason: str | None
    hits: tuple[SignalHit, ...]
    boosts: tuple[Boost, ...]
    features: np.ndarray  # the signals as numbers, for a learned model

    @property
    def weight(self) -> int:
        """Total boost weight; a group counts with its heaviest member."""
        groups: dict[str, int] = {}
        total = 0
        for boost in self.boosts:
            if boost.group:
                groups[boost.group] = max(groups.get(boost.group, 0), boost.weight)
            else:
                total += boost.weight
        return total + sum(groups.values())

    def resolve(self, base: int, base_reasons: Iterable[str] = ()) -> UrgencyAssessment:
        """The level and score from a base rank (intent prior or a learned level) plus the signals.

        Hard signals set a floor (safety: critical; the others: high). Soft signals raise the level one step
        at most: a weight of 1 up to normal, 2 or more up to high; they never make a message critical.
        """
        rank = base
        reasons = list(base_reasons)
        for hit in self.hits:
            rank = max(rank, hit.signal.level.rank)
            reasons.append(hit.reason)
        weight = self.weight
        if weight:
            cap = Urgency.HIGH.rank if weight >= 2 else Urgency.NORMAL.rank
            rank = max(rank, min(rank + 1, cap))
            reasons.extend(b.reason for b in self.boosts)
        rank = max(0, min(3, rank))
        reasons = list(dict.fromkeys(reasons))
        score = round(min(1.0, rank / 4 + min(len(reasons), _MAX_COUNTED) * _STEP), 3)
        return UrgencyAssessment(level=Urgency.from_rank(rank), score=score, reasons=tuple(reasons))


class RuleUrgencyScorer:
    """Works with no ticket history: every point of score comes with a reason.

    Args:
        intent_priors: default level per intent (``teams.yml``); an unknown intent starts at normal.
        signals: the hard signals (see :mod:`nlu.urgency_signals`).
        repeat_contacts: other conversations in the recent window from which a recontact counts.
        semantic: prototype matcher built on the message encoder; None: words only.
        long_wait_seconds / very_long_wait_seconds: waiting for a person this long adds weight 1 / 2.
        priority_tiers: customer tiers that add weight 1.
        min_prior_confidence: an intent's prior counts only when the classifier is at least this confident
            (and the prediction is neither ambiguous nor out of scope): a guess must not make a message urgent.
    """

    def __init__(self, intent_priors: Mapping[str, Urgency], signals: Sequence[Signal] = DEFAULT_SIGNALS,
                 repeat_contacts: int = 2, semantic: SemanticMatcher | None = None,
                 long_wait_seconds: float = 900.0, very_long_wait_seconds: float = 3600.0,
                 priority_tiers: Iterable[str] = ("premium", "vip", "enterprise"),
                 min_prior_confidence: float = 0.0) -> None:
        self.priors = dict(intent_priors)
        self.min_prior_confidence = min_prior_confidence
        self.signals = tuple(signals)
        self.repeat_contacts = repeat_contacts
        self.semantic = semantic
        self.long_wait_seconds = long_wait_seconds
        self.very_long_wait_seconds = very_long_wait_seconds
        self.priority_tiers = frozenset(t.lower() for t in priority_tiers)
        self._warned = False

    def assess(self, text: str, intent: IntentPrediction, context: UrgencyContext,
               vector: np.ndarray | None = None) -> UrgencyAssessment:
        ev = self.evidence(text, intent, context, vector)
        base = ev.prior.rank if ev.prior is not None else Urgency.NORMAL.rank
        return ev.resolve(base, [ev.prior_reason] if ev.prior_reason else [])

    def feature_names(self) -> tuple[str, ...]:
        """Names of the signal features this scorer produces (a learned model is tied to them)."""
        return feature_names(self.signals)

    def similarities(self, text: str, vector: np.ndarray | None) -> dict[str, tuple[float, str]] | None:
        """Best prototype similarity per signal, or None without a semantic matcher (or a usable vector)."""
        if self.semantic is None:
            return None
        v = self.semantic.encode(text) if vector is None else vector
        try:
            return self.semantic.best(v)
        except ValueError as e:
            if not self._warned:
                log.warning("semantic urgency signals skipped: %s", e)
                self._warned = True
            return None

    def evidence(self, text: str, intent: IntentPrediction, context: UrgencyContext,
                 vector: np.ndarray | None = None) -> RuleEvidence:
        """What the rules see in the message and its context, unresolved."""
        trusted = (intent.intent is not None and not intent.out_of_scope and not intent.ambiguous
                   and intent.confidence >= self.min_prior_confidence)
        prior = self.priors.get(intent.intent) if trusted and intent.intent else None
        prior_reason = (f"intent '{intent.intent}' is {prior.value} priority by default"
                        if prior is not None and prior != Urgency.NORMAL else None)
        sims = self.similarities(text, vector)
        hits = tuple(find_signals(text, sims, self.signals))
        return RuleEvidence(prior, prior_reason, hits, tuple(self._boosts(text, context)),
                            signal_features(text, sims, self.signals))

    def _boosts(self, text: str, context: UrgencyContext) -> list[Boost]:
        boosts: list[Boost] = []
        found = anger(text)
        if found:
            boosts.append(Boost(f"the customer sounds angry ({found})", group="tone"))
        found = negative(text)
        if found:
            boosts.append(Boost(f"the customer sounds frustrated or disappointed ({found})", group="tone"))
        found = urgent(text)
        if found:
            boosts.append(Boost(f"the customer says it is urgent ({found})"))
        if context.recent_contacts >= self.repeat_contacts:
            boosts.append(Boost(f"the customer contacted us {context.recent_contacts} other times recently"))
        if context.customer_tier.lower() in self.priority_tiers:
            boosts.append(Boost(f"customer tier is {context.customer_tier}"))
        if context.waiting_seconds >= self.long_wait_seconds:
            weight = 2 if context.waiting_seconds >= self.very_long_wait_seconds else 1
            boosts.append(Boost(f"the customer has been waiting {_duration(context.waiting_seconds)}", weight))
        return boosts


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{minutes // 60} h {minutes % 60:02d} min"
