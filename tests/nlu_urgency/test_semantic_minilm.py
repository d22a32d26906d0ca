"""The semantic urgency signals on the real all-MiniLM-L6-v2: paraphrases without the words, and routine questions.

The sentences are none of the prototypes and none of the calibration rows; each positive clears its signal's
threshold by at least 0.04 and each routine question stays 0.08 or more below every threshold (measured when the
thresholds were chosen), so ONNX rounding cannot flip them.
"""

from __future__ import annotations

import pytest

from domain.enums import Urgency
from domain.models import IntentPrediction
from knowledge_index.encoder import Encoder
from nlu.urgency import RuleUrgencyScorer, UrgencyContext
from nlu.urgency_signals import SemanticMatcher

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NO_INTENT = IntentPrediction(None, 0.0, (), True, "test")


@pytest.fixture(scope="module")
def scorers(minilm: Encoder) -> tuple[RuleUrgencyScorer, RuleUrgencyScorer]:
    """(words only, words + meaning) on the same encoder."""
    return RuleUrgencyScorer({}), RuleUrgencyScorer({}, semantic=SemanticMatcher(minilm))


@pytest.mark.parametrize(
    ("text", "signal_reason", "level"),
    [
        ("somebody is logged in on my account from another country", "account was taken over", Urgency.HIGH),
        ("my card details were used by somebody else to buy things online", "unauthorized charge", Urgency.HIGH),
        ("the same amount left my card twice", "charged twice", Urgency.HIGH),
        ("my legal team will be in touch", "legal action", Urgency.HIGH),
        ("nothing on your website loads for any of us", "service outage", Urgency.HIGH),
        ("I don't want to be alive anymore", "safety", Urgency.CRITICAL),
        ("the toaster sparked and burned my hand", "safety", Urgency.CRITICAL),
    ],
)
def test_a_paraphrase_without_the_words_is_found_by_meaning(
        scorers: tuple[RuleUrgencyScorer, RuleUrgencyScorer], text: str, signal_reason: str, level: Urgency) -> None:
    words, meaning = scorers
    assert words.assess(text, NO_INTENT, UrgencyContext()).reasons == ()  # no word pattern matches
    result = meaning.assess(text, NO_INTENT, UrgencyContext())
    assert result.level == level
    (reason,) = result.reasons
    assert signal_reason in reason and "(reads like \"" in reason and "similarity 0." in reason


@pytest.mark.parametrize(
    "text",
    [
        "how do I change my password",
        "I need to update my email address",
        "I want to cancel my subscription",
        "where is my order",
        "what time do you open",
        "the app is slow today",
    ],
)
def test_routine_questions_carry_no_signal(scorers: tuple[RuleUrgencyScorer, RuleUrgencyScorer], text: str) -> None:
    result = scorers[1].assess(text, NO_INTENT, UrgencyContext())
    assert (result.level, result.reasons) == (Urgency.NORMAL, ())
