"""The turn decision: a pure function of typed inputs, with its thresholds in settings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from domain.enums import ConversationStatus, DecisionKind, HandoffReason, Urgency
from domain.models import Decision, IntentPrediction, SearchHit, UrgencyAssessment
from settings import PolicySettings

_HUMAN_RE = re.compile(
    r"\b(?:(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*one|somebody|your\s+)?"
    r"(?:human|person|agent|someone|somebody|representative|rep|operator|staff|support)"
    r"|real\s+(?:human|person|agent)|human\s+(?:agent|being|please)|live\s+(?:agent|chat|person)"
    r"|customer\s+service\s+(?:rep|representative|agent)|get\s+me\s+(?:a|an)\s+(?:human|agent|person))\b",
    re.IGNORECASE,
)


def asks_for_human(text: str) -> bool:
    """True when the customer explicitly asks for a person (a safety net under the classifier)."""
    return bool(_HUMAN_RE.search(text))


@dataclass(frozen=True)
class DecisionInput:
    """Everything the decision depends on."""

    conversation_status: ConversationStatus
    intent: IntentPrediction
    urgency: UrgencyAssessment
    hits: tuple[SearchHit, ...]
    human_requested: bool = False
    has_response: bool = False  # a canned response exists for the intent
    previous_misses: int = 0  # consecutive earlier turns the bot did not understand
    unhelpful_streak: int = 0  # latest answers the customer marked unhelpful, in a row


def knowledge_decision(hits: Sequence[SearchHit], policy: PolicySettings) -> Decision | None:
    """The knowledge-base step of :func:`decide`: answer, suggest, or ``None`` when no article is good enough.

    A hit at or above ``answer_threshold`` is answered when it leads the runner-up by ``answer_margin`` (or is
    the only strong one); otherwise up to ``max_suggestions`` hits at or above ``suggest_threshold`` are
    suggested. ``hits`` are ranked best first, as the knowledge base returns them.
    """
    strong = [h for h in hits if h.score >= policy.answer_threshold]
    if strong:
        runner_up = hits[1].score if len(hits) > 1 else -1.0
        if strong[0].score - runner_up >= policy.answer_margin or len(strong) == 1:
            return Decision(DecisionKind.ANSWER, detail=f"score {strong[0].score:.2f}", hits=(strong[0],))
    likely = tuple(h for h in hits if h.score >= policy.suggest_threshold)[: policy.max_suggestions]
    if likely:
        return Decision(DecisionKind.SUGGEST, detail=f"best score {likely[0].score:.2f}", hits=likely)
    return None


def decide(inp: DecisionInput, policy: PolicySettings) -> Decision:
    """Decide what to do with one customer turn.

    Order matters and is the policy: a conversation with a human stays with the human; an explicit
    request for a human or a high urgency hands off; small talk gets its canned response; a strong
    knowledge-base match is answered with a citation, a mediocre one gets a short list; a message the
    bot does not understand is clarified once, then handed off; after answers marked unhelpful in a row,
    a person takes over; an in-scope question with no article is handed off (or clarified, if so set).
    """
    intent = inp.intent
    # An ambiguous prediction (top-2 margin below the model's validated one) is not trusted either.
    confident = (intent.intent is not None and not intent.ambiguous
                 and intent.confidence >= policy.intent_confidence_threshold)
    if inp.conversation_status != ConversationStatus.BOT:
        return Decision(DecisionKind.WAIT_FOR_AGENT, detail="a human agent owns this conversation")
    if inp.human_requested or (confident and intent.intent in policy.human_request_intents):
        return Decision(DecisionKind.HANDOFF, HandoffReason.CUSTOMER_REQUEST, "the customer asked for a person")
    if policy.handoff_urgency != "never" and inp.urgency.level.rank >= Urgency(policy.handoff_urgency).rank:
        detail = "; ".join(inp.urgency.reasons) or f"urgency is {inp.urgency.level.value}"
        return Decision(DecisionKind.HANDOFF, HandoffReason.URGENCY, detail)
    if policy.unhelpful_before_handoff and inp.unhelpful_streak >= policy.unhelpful_before_handoff:
        return Decision(DecisionKind.HANDOFF, HandoffReason.UNHELPFUL,
                        f"{inp.unhelpful_streak} answers in a row were marked unhelpful")
    if confident and intent.intent in policy.conversational_intents and inp.has_response:
        return Decision(DecisionKind.RESPOND, response_key=intent.intent)
    from_articles = knowledge_decision(inp.hits, policy)
    if from_articles is not None:
        return from_articles
    not_understood = intent.out_of_scope or not confident
    if not_understood:
        reason = HandoffReason.OUT_OF_SCOPE if intent.out_of_scope else HandoffReason.LOW_CONFIDENCE
        if inp.previous_misses >= policy.clarify_before_handoff:
            return Decision(DecisionKind.HANDOFF, reason,
                            f"not understood {inp.previous_misses + 1} times in a row")
        if intent.ambiguous and len(intent.ranking) > 1:
            first, second = intent.ranking[0][0], intent.ranking[1][0]
            return Decision(DecisionKind.CLARIFY, reason, f"'{first}' or '{second}'? asked the customer to rephrase")
        return Decision(DecisionKind.CLARIFY, reason, "asked the customer to rephrase")
    best = f"best article score {inp.hits[0].score:.2f}" if inp.hits else "no articles indexed"
    detail = f"intent '{intent.intent}' but no knowledge-base answer ({best})"
    if not policy.handoff_on_no_answer:
        return Decision(DecisionKind.CLARIFY, HandoffReason.NO_ANSWER, detail)
    return Decision(DecisionKind.HANDOFF, HandoffReason.NO_ANSWER, detail)
