"""Assemble the handoff record: transcript, intents over turns, urgency, articles offered, profile, summary."""

from __future__ import annotations

import re
from collections.abc import Sequence

from domain.enums import DecisionKind, HandoffReason, Sender
from domain.models import (
    CustomerProfile,
    HandoffContext,
    HandoffDraft,
    IntentTurn,
    OfferedArticle,
    StoredMessage,
    TranscriptLine,
    UrgencyAssessment,
)

_GREETING = re.compile(r"^(hi|hello|hey|good (morning|afternoon|evening)|thanks?( you)?|ok(ay)?)\b[\s!.,]*$", re.I)
SUMMARY_CHARS = 400


def build_handoff(
    *,
    reason: HandoffReason,
    reason_detail: str,
    team: str,
    urgency: UrgencyAssessment,
    intent: str | None,
    confidence: float | None,
    channel: str,
    transcript: Sequence[StoredMessage],
    intents: Sequence[IntentTurn],
    customer: CustomerProfile | None,
) -> HandoffDraft:
    """Everything an agent needs, as one record; pure (no I/O)."""
    context = HandoffContext(
        channel=channel,
        reason=reason.value,
        reason_detail=reason_detail,
        summary=summarize(transcript),
        urgency=urgency.level.value,
        urgency_score=urgency.score,
        urgency_reasons=urgency.reasons,
        transcript=tuple(
            TranscriptLine(m.id, m.sender.value, m.text, m.created_at.isoformat(), m.author) for m in transcript
        ),
        intents=tuple(intents),
        articles_offered=offered_articles(transcript),
        customer=customer,
    )
    return HandoffDraft(
        reason=reason, reason_detail=reason_detail, team=team, urgency=urgency.level, intent=intent,
        confidence=confidence, summary=context.summary, context=context,
    )


def offered_articles(transcript: Sequence[StoredMessage]) -> tuple[OfferedArticle, ...]:
    """Articles the bot answered with or suggested, with the customer's reaction to each."""
    out: list[OfferedArticle] = []
    for m in transcript:
        if m.sender != Sender.BOT or m.kind not in (DecisionKind.ANSWER.value, DecisionKind.SUGGEST.value):
            continue
        citations = m.payload.get("citations")
        feedback = m.payload.get("feedback")
        reaction = str(feedback) if feedback else "no reaction"
        for c in citations if isinstance(citations, list) else []:
            if isinstance(c, dict):
                out.append(OfferedArticle(
                    article_id=str(c.get("article_id")), title=str(c.get("title")), kind=str(m.kind),
                    score=float(c.get("score") or 0.0), message_id=m.id, reaction=reaction,
                ))
    return tuple(out)


def summarize(transcript: Sequence[StoredMessage], limit: int = SUMMARY_CHARS) -> str:
    """An extractive summary of what the customer wants: their substantive messages, newest kept whole."""
    said = [m.text.strip() for m in transcript if m.sender == Sender.CUSTOMER and m.text.strip()]
    substantive = [t for t in said if not _GREETING.match(t)] or said
    if not substantive:
        return ""
    # The first substantive message states the problem; the latest says where it stands now.
    picked = [substantive[0]] if len(substantive) == 1 else [substantive[0], substantive[-1]]
    text = " … ".join(" ".join(p.split()) for p in picked)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
