"""Planning a handoff for the pipeline: the record with SLA due times and skills, and what the customer is told."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.ports import ConversationStore, WaitEstimator
from bot.replies import ReplyComposer
from domain.enums import DecisionKind, HandoffReason, Urgency
from domain.models import (
    BotReply,
    CustomerProfile,
    HandoffDraft,
    IntentTurn,
    StoredMessage,
    UrgencyAssessment,
)
from handoff.context import build_handoff
from handoff.routing import TeamsConfig
from handoff.sla import SlaTarget, due_times
from handoff.waiting import describe_wait

log = logging.getLogger(__name__)


@dataclass
class HandoffPlanner:
    """Builds the handoff record and the customer's handoff reply (with queue place or team hours)."""

    store: ConversationStore
    teams: TeamsConfig
    sla: Mapping[Urgency, SlaTarget]
    composer: ReplyComposer
    waiting: WaitEstimator | None = None

    def plan(self, *, conversation_id: str, channel: str, reason: HandoffReason, detail: str, team: str,
             urgency: UrgencyAssessment, intent: str | None, confidence: float | None,
             transcript: Sequence[StoredMessage], intents: Sequence[IntentTurn], reply: BotReply,
             now: datetime | None = None) -> tuple[HandoffDraft, BotReply]:
        """The draft to store and the reply to send (the reply gains the wait or the team's hours)."""
        now = now or datetime.now(UTC)
        first_due, resolution_due = due_times(self.sla[urgency.level], now)
        profile = self._profile(conversation_id)
        draft = build_handoff(
            reason=reason, reason_detail=detail, team=team, urgency=urgency, intent=intent, confidence=confidence,
            channel=channel, transcript=transcript, intents=intents, customer=profile,
        )
        draft = replace(draft, required_skills=self.teams.route(intent).skills,
                        first_response_due=first_due, resolution_due=resolution_due)
        return draft, self._with_wait(reply, team, urgency.level, now)

    def _with_wait(self, reply: BotReply, team: str, urgency: Urgency, now: datetime) -> BotReply:
        if self.waiting is None or reply.kind != DecisionKind.HANDOFF:
            return reply
        try:
            info = self.waiting.wait_info(team, urgency, now)
        except Exception as e:  # the estimate is a courtesy; the handoff must not fail because of it
            log.warning("could not estimate the wait for team %s: %s", team, type(e).__name__)
            return reply
        return replace(reply, text=f"{reply.text} {describe_wait(info)}")

    def _profile(self, conversation_id: str) -> CustomerProfile | None:
        try:
            return self.store.customer_profile(conversation_id)
        except Exception as e:  # a partial record beats no handoff
            log.error("could not read the customer profile for a handoff: %s", type(e).__name__)
            return None

