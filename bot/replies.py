"""Turn a decision into the words the customer sees, with citations; never internals or stack traces."""

from __future__ import annotations

from collections.abc import Mapping

from domain.enums import DecisionKind, HandoffReason
from domain.models import BotReply, Citation, Decision, SearchHit

CLARIFY_TEXT = (
    "Sorry, I'm not sure I understood. I can help with billing, your account, playback, devices, privacy and "
    "safety. Could you tell me a bit more about what you need?"
)
FOLLOW_UP_TEXT = (
    "Sorry that didn't help. Could you tell me a little more about what you're trying to do? "
    "You can also ask for a person at any time."
)
SUGGEST_TEXT = "I'm not completely sure which of these fits, but one of these articles should help:"
ERROR_TEXT = (
    "Sorry, something went wrong on our side. I've passed your message to our support team; "
    "a person will reply here."
)
_HANDOFF_TEXT = {
    HandoffReason.CUSTOMER_REQUEST: "Of course. I'm passing you to our {team} team; a person will reply here.",
    HandoffReason.URGENCY: "This needs a person's attention right away. I've passed it to our {team} team, "
    "who will reply here as soon as possible.",
    HandoffReason.NO_ANSWER: "I couldn't find an article that answers this, so I've passed your question to our "
    "{team} team. A person will reply here.",
    HandoffReason.PIPELINE_ERROR: ERROR_TEXT,
}
_HANDOFF_DEFAULT = "I've passed your conversation to our {team} team; a person will reply here."
_HANDOFF_TEXT[HandoffReason.UNHELPFUL] = (
    "Sorry my answers didn't help. I've passed your conversation to our {team} team; a person will reply here.")


def csat_thanks(score: int) -> str:
    """The reply to a CSAT score."""
    if score >= 4:
        return f"Thank you for rating us {score}/5! If anything else comes up, just ask."
    return (f"Thank you for rating us {score}/5. We're sorry it wasn't better; your rating goes to the team. "
            "If anything else comes up, just ask.")


class ReplyComposer:
    """Writes replies; article links come from a URL template with ``{article_id}``."""

    def __init__(self, responses: Mapping[str, tuple[str, ...]], article_url_template: str,
                 team_names: Mapping[str, str]) -> None:
        self.responses = dict(responses)
        self.article_url_template = article_url_template
        self.team_names = dict(team_names)

    def has_response(self, intent: str | None) -> bool:
        """True when domain.yml has ``utter_<intent>``."""
        return bool(intent) and f"utter_{intent}" in self.responses

    def compose(self, decision: Decision, team: str | None, turn_number: int = 0) -> tuple[BotReply, ...]:
        """The replies for a decision (none while a human owns the conversation)."""
        kind = decision.kind
        if kind == DecisionKind.WAIT_FOR_AGENT:
            return ()
        if kind == DecisionKind.ANSWER:
            hit = decision.hits[0]
            return (BotReply(kind, hit.text, (self.citation(hit),)),)
        if kind == DecisionKind.SUGGEST:
            return (BotReply(kind, SUGGEST_TEXT, tuple(self.citation(h) for h in decision.hits)),)
        if kind == DecisionKind.RESPOND:
            variants = self.responses.get(f"utter_{decision.response_key}") or ("Hello!",)
            return (BotReply(kind, variants[turn_number % len(variants)]),)
        if kind == DecisionKind.CLARIFY:
            return (BotReply(kind, CLARIFY_TEXT),)
        template = _HANDOFF_TEXT.get(decision.reason, _HANDOFF_DEFAULT) if decision.reason else _HANDOFF_DEFAULT
        team_name = self.team_names.get(team or "", "support")
        return (BotReply(DecisionKind.HANDOFF, template.format(team=team_name)),)

    def citation(self, hit: SearchHit) -> Citation:
        """How an article is cited: title, link and the passage used."""
        return Citation(
            article_id=hit.article_id, title=hit.article_title,
            url=self.article_url_template.format(article_id=hit.article_id),
            passage=hit.text, heading=hit.heading, score=round(hit.score, 4),
        )
