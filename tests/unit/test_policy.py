"""The decision table: a pure function of typed inputs."""

from __future__ import annotations

import pytest

from bot.policy import DecisionInput, asks_for_human, decide, knowledge_decision
from domain.enums import ConversationStatus, DecisionKind, HandoffReason, Urgency
from domain.models import IntentPrediction, SearchHit, UrgencyAssessment
from settings import PolicySettings

pytestmark = pytest.mark.unit
POLICY = PolicySettings(answer_threshold=0.6, answer_margin=0.05, suggest_threshold=0.4,
                        intent_confidence_threshold=0.6, max_suggestions=2)


def intent(name: str | None = "refund_request", confidence: float = 0.9, ambiguous: bool = False,
           ) -> IntentPrediction:
    return IntentPrediction(name, confidence, ((name or "refund_request", confidence), ("other", 0.05)),
                            name is None, "v1", ambiguous=ambiguous)


def hits(*scores: float) -> tuple[SearchHit, ...]:
    return tuple(SearchHit(f"a{i}", f"Article {i}", i, "h", "text", s) for i, s in enumerate(scores))


NORMAL = UrgencyAssessment(Urgency.NORMAL, 0.25)
HIGH = UrgencyAssessment(Urgency.HIGH, 0.6, ("reports being charged twice ('charged twice')",))
CRITICAL = UrgencyAssessment(Urgency.CRITICAL, 0.9, ("safety",))
BOT = ConversationStatus.BOT

CASES = [
    # (description, input, kind, reason, answered article ids)
    ("with a human: stay quiet", DecisionInput(ConversationStatus.HUMAN, intent(), HIGH, hits(0.9)),
     DecisionKind.WAIT_FOR_AGENT, None, ()),
    ("explicit request beats a perfect answer", DecisionInput(BOT, intent(), NORMAL, hits(0.95), human_requested=True),
     DecisionKind.HANDOFF, HandoffReason.CUSTOMER_REQUEST, ()),
    ("human intent with confidence", DecisionInput(BOT, intent("talk_to_human", 0.8), NORMAL, hits(0.2)),
     DecisionKind.HANDOFF, HandoffReason.CUSTOMER_REQUEST, ()),
    ("human intent without confidence is not a request",
     DecisionInput(BOT, intent("talk_to_human", 0.3), NORMAL, hits(0.7, 0.3)),
     DecisionKind.ANSWER, None, ("a0",)),
    ("high urgency hands off even with an answer", DecisionInput(BOT, intent(), HIGH, hits(0.9)),
     DecisionKind.HANDOFF, HandoffReason.URGENCY, ()),
    ("critical urgency", DecisionInput(BOT, intent(None, 0.1), CRITICAL, ()),
     DecisionKind.HANDOFF, HandoffReason.URGENCY, ()),
    ("greeting with a response", DecisionInput(BOT, intent("greet"), NORMAL, hits(0.7), has_response=True),
     DecisionKind.RESPOND, None, ()),
    ("greeting without a response falls through", DecisionInput(BOT, intent("greet"), NORMAL, hits(0.1)),
     DecisionKind.HANDOFF, HandoffReason.NO_ANSWER, ()),
    ("strong and clear answer", DecisionInput(BOT, intent(), NORMAL, hits(0.75, 0.5)),
     DecisionKind.ANSWER, None, ("a0",)),
    ("strong answer for an out-of-scope intent still answers", DecisionInput(BOT, intent(None, 0.2), NORMAL,
                                                                            hits(0.7)),
     DecisionKind.ANSWER, None, ("a0",)),
    ("two strong, too close: suggest both", DecisionInput(BOT, intent(), NORMAL, hits(0.70, 0.68, 0.3)),
     DecisionKind.SUGGEST, None, ("a0", "a1")),
    ("mediocre: suggest at most max_suggestions", DecisionInput(BOT, intent(), NORMAL, hits(0.55, 0.5, 0.45)),
     DecisionKind.SUGGEST, None, ("a0", "a1")),
    ("weak evidence, known intent: hand off", DecisionInput(BOT, intent(), NORMAL, hits(0.3)),
     DecisionKind.HANDOFF, HandoffReason.NO_ANSWER, ()),
    ("no articles at all", DecisionInput(BOT, intent(), NORMAL, ()),
     DecisionKind.HANDOFF, HandoffReason.NO_ANSWER, ()),
    ("out of scope once: clarify", DecisionInput(BOT, intent(None, 0.2), NORMAL, hits(0.1)),
     DecisionKind.CLARIFY, HandoffReason.OUT_OF_SCOPE, ()),
    ("out of scope twice: hand off", DecisionInput(BOT, intent(None, 0.2), NORMAL, hits(0.1), previous_misses=1),
     DecisionKind.HANDOFF, HandoffReason.OUT_OF_SCOPE, ()),
    ("low confidence once: clarify", DecisionInput(BOT, intent("refund_request", 0.4), NORMAL, hits(0.2)),
     DecisionKind.CLARIFY, HandoffReason.LOW_CONFIDENCE, ()),
    ("ambiguous top two once: clarify", DecisionInput(BOT, intent("refund_request", 0.9, True), NORMAL, hits(0.2)),
     DecisionKind.CLARIFY, HandoffReason.LOW_CONFIDENCE, ()),
    ("an ambiguous human intent is not a request",
     DecisionInput(BOT, intent("talk_to_human", 0.8, True), NORMAL, hits(0.7, 0.3)),
     DecisionKind.ANSWER, None, ("a0",)),
    ("low confidence twice: hand off",
     DecisionInput(BOT, intent("refund_request", 0.4), NORMAL, hits(0.2), previous_misses=1),
     DecisionKind.HANDOFF, HandoffReason.LOW_CONFIDENCE, ()),
]


@pytest.mark.parametrize(("description", "inp", "kind", "reason", "articles"), CASES, ids=[c[0] for c in CASES])
def test_decision_table(description: str, inp: DecisionInput, kind: DecisionKind, reason: HandoffReason | None,
                        articles: tuple[str, ...]) -> None:
    decision = decide(inp, POLICY)
    assert decision.kind == kind
    assert decision.reason == reason
    assert tuple(h.article_id for h in decision.hits) == articles


KNOWLEDGE_CASES = [
    # (description, scores, kind or None, chosen article ids)
    ("one strong hit", (0.75,), DecisionKind.ANSWER, ("a0",)),
    ("strong and clear of the runner-up", (0.75, 0.5), DecisionKind.ANSWER, ("a0",)),
    ("exactly at the answer threshold", (0.6, 0.3), DecisionKind.ANSWER, ("a0",)),
    ("two strong, the first clear by the margin", (0.75, 0.65), DecisionKind.ANSWER, ("a0",)),
    ("the only strong hit, runner-up close below", (0.62, 0.59), DecisionKind.ANSWER, ("a0",)),
    ("two strong, too close", (0.70, 0.68, 0.3), DecisionKind.SUGGEST, ("a0", "a1")),
    ("mediocre: at most max_suggestions", (0.55, 0.5, 0.45), DecisionKind.SUGGEST, ("a0", "a1")),
    ("one at the suggest threshold", (0.4, 0.2), DecisionKind.SUGGEST, ("a0",)),
    ("all below the suggest threshold", (0.39, 0.1), None, ()),
    ("no hits", (), None, ()),
]


@pytest.mark.parametrize(("description", "scores", "kind", "articles"), KNOWLEDGE_CASES,
                         ids=[c[0] for c in KNOWLEDGE_CASES])
def test_knowledge_decision_table(description: str, scores: tuple[float, ...], kind: DecisionKind | None,
                                  articles: tuple[str, ...]) -> None:
    decision = knowledge_decision(hits(*scores), POLICY)
    assert (decision.kind if decision else None) == kind
    assert (tuple(h.article_id for h in decision.hits) if decision else ()) == articles
    # decide() takes the same branch when nothing before the knowledge base applies.
    full = decide(DecisionInput(BOT, intent(), NORMAL, hits(*scores)), POLICY)
    if decision is None:
        assert full.kind == DecisionKind.HANDOFF and full.reason == HandoffReason.NO_ANSWER
    else:
        assert (full.kind, full.hits, full.detail) == (decision.kind, decision.hits, decision.detail)


def test_urgency_handoff_can_be_limited_to_critical_or_disabled() -> None:
    inp = DecisionInput(BOT, intent(), HIGH, hits(0.9))
    assert decide(inp, POLICY.model_copy(update={"handoff_urgency": "critical"})).kind == DecisionKind.ANSWER
    never = POLICY.model_copy(update={"handoff_urgency": "never"})
    assert decide(DecisionInput(BOT, intent(), CRITICAL, hits(0.9)), never).kind == DecisionKind.ANSWER


def test_an_ambiguous_clarification_names_both_intents() -> None:
    decision = decide(DecisionInput(BOT, intent("refund_request", 0.9, True), NORMAL, hits(0.2)), POLICY)
    assert "'refund_request' or 'other'" in decision.detail


def test_urgency_handoff_detail_carries_the_reasons() -> None:
    decision = decide(DecisionInput(BOT, intent(), HIGH, ()), POLICY)
    assert "charged twice" in decision.detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("can I talk to a human", True),
        ("I want to speak with someone", True),
        ("get me a human", True),
        ("real person please", True),
        ("let me chat with an agent", True),
        ("connect me to a live agent", True),
        ("how do I add a person to my family plan", False),
        ("my smart speaker agent app crashed", False),
        ("talk to you later", False),
    ],
)
def test_explicit_human_requests(text: str, expected: bool) -> None:
    assert asks_for_human(text) is expected
