"""An intent's urgency prior counts only for a confident, unambiguous, in-scope prediction."""

from __future__ import annotations

import pytest

from domain.enums import Urgency
from domain.models import IntentPrediction
from nlu.urgency import RuleUrgencyScorer, UrgencyContext

pytestmark = pytest.mark.unit

PRIORS = {"account_compromised": Urgency.HIGH, "greet": Urgency.LOW}


def _prediction(confidence: float, ambiguous: bool = False, out_of_scope: bool = False) -> IntentPrediction:
    intent = None if out_of_scope else "account_compromised"
    return IntentPrediction(intent, confidence, (("account_compromised", confidence), ("greet", 1 - confidence)),
                            out_of_scope, "test", ambiguous=ambiguous)


@pytest.mark.parametrize(("prediction", "level", "reasons"), [
    (_prediction(0.9), Urgency.HIGH, ["intent 'account_compromised' is high priority by default"]),
    (_prediction(0.6), Urgency.HIGH, ["intent 'account_compromised' is high priority by default"]),
    (_prediction(0.59), Urgency.NORMAL, []),  # a guess
    (_prediction(0.9, ambiguous=True), Urgency.NORMAL, []),  # two intents are too close to tell
    (_prediction(0.2, out_of_scope=True), Urgency.NORMAL, []),
])
def test_the_prior_needs_a_trusted_prediction(prediction: IntentPrediction, level: Urgency,
                                               reasons: list[str]) -> None:
    scorer = RuleUrgencyScorer(PRIORS, min_prior_confidence=0.6)
    assessment = scorer.assess("my playlist disappeared", prediction, UrgencyContext())
    assert (assessment.level, list(assessment.reasons)) == (level, reasons)


def test_signals_still_count_without_a_trusted_intent() -> None:
    scorer = RuleUrgencyScorer(PRIORS, min_prior_confidence=0.6)
    assessment = scorer.assess("my account was hacked", _prediction(0.3), UrgencyContext())
    assert assessment.level == Urgency.HIGH
    assert [r for r in assessment.reasons if "taken over" in r], assessment.reasons
