"""The turn pipeline: store, triage, decide, reply or hand off, persist; failures become handoffs."""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.handover import HandoffPlanner
from bot.policy import DecisionInput, asks_for_human, decide
from bot.ports import ConversationStore, CsatRecorder, Retriever, Router
from bot.replies import ERROR_TEXT, FOLLOW_UP_TEXT, ReplyComposer, csat_thanks
from domain.enums import ConversationStatus, DecisionKind, HandoffReason, MessageStatus, Sender, Urgency
from domain.errors import ConflictError
from domain.models import (
    BotReply,
    Conversation,
    Decision,
    InboundMessage,
    IntentTurn,
    StoredMessage,
    Triage,
    TurnContext,
    TurnRecord,
    TurnResult,
    UrgencyAssessment,
)
from domain.ports import Encoder
from nlu.intent import IntentClassifier
from nlu.urgency import UrgencyContext, UrgencyScorer
from settings import PolicySettings

log = logging.getLogger(__name__)

_SCORE = re.compile(r"^\s*([1-5])\s*(?:/\s*5|stars?|out of 5)?\s*[.!]?\s*$", re.IGNORECASE)


@dataclass
class TurnPipeline:
    """``handle(inbound) -> TurnResult``; every step is a line in :meth:`_run`."""

    store: ConversationStore
    encoder: Encoder
    classifier: IntentClassifier
    urgency: UrgencyScorer
    retriever: Retriever
    router: Router
    composer: ReplyComposer
    policy: PolicySettings
    planner: HandoffPlanner
    csat: CsatRecorder | None = None
    search_k: int = 8
    recontact_window_hours: float = 72.0

    def handle(self, inbound: InboundMessage) -> TurnResult:
        """Process one customer message exactly once.

        The message is committed before anything else; a retried delivery returns the first result. If
        storing the turn's outcome fails, the exception propagates and the message stays ``received``
        for :func:`bot.recovery.recover_unprocessed`.
        """
        stored, duplicate, context = self.store.begin_turn(inbound, self._recontact_since())
        if duplicate and stored.status == MessageStatus.PROCESSED:
            replies = self.store.replies_to(stored.id)
            return TurnResult(stored.id, stored.conversation_id, _decision_of(replies), tuple(replies),
                              self.store.handoff_for_message(stored.id), duplicate=True, message=stored)
        result = self.process(stored.id, inbound, duplicate=duplicate, context=context)
        # process() returned, so the message is processed (by this turn, or by a worker that got there first).
        return replace(result, message=replace(stored, status=MessageStatus.PROCESSED.value))

    def process(self, message_id: int, inbound: InboundMessage, duplicate: bool = False,
                context: TurnContext | None = None) -> TurnResult:
        """Run the turn for a stored message (its context read here unless given); any failure in the bot becomes
        a handoff."""
        try:
            record = self._run(message_id, inbound, context)
        except Exception as e:  # the customer must never be dropped, whatever broke
            log.error("turn failed for message %s: %s\n%s", message_id, type(e).__name__,
                      "".join(traceback.format_tb(e.__traceback__)))
            record = self._failure(message_id, inbound, e)
        replies, handoff_id, applied = self.store.record_turn(record)
        status = ConversationStatus.HUMAN.value if applied and record.decision.kind == DecisionKind.HANDOFF else (
            record.conversation_status if applied else None)
        return TurnResult(message_id, inbound.conversation_id, _decision_of(replies, record.decision.kind),
                          tuple(replies), handoff_id, duplicate=duplicate, conversation_status=status)

    def feedback(self, conversation_id: str, message_id: int, helpful: bool) -> tuple[StoredMessage,
                                                                                          list[StoredMessage]]:
        """Record the customer's reaction to an answer; unhelpful answers get a follow-up, then a person.

        Returns:
            The rated message and the bot's follow-up messages (none for a helpful answer).
        """
        rated = self.store.set_feedback(conversation_id, message_id, helpful)
        limit = self.policy.unhelpful_before_handoff
        conversation = self.store.get_conversation(conversation_id)
        if helpful or not limit or conversation.status != ConversationStatus.BOT:
            return rated, []
        transcript = self.store.transcript(conversation_id)
        if _unhelpful_streak(transcript) < limit:
            replies, _ = self.store.record_bot_action(
                conversation_id, (BotReply(DecisionKind.FOLLOW_UP, FOLLOW_UP_TEXT),), None, message_id)
            return rated, replies
        history = self.store.intent_history(conversation_id)
        last = history[-1] if history else None
        team = self.router.team_for(last.intent if last else None)
        urgency = UrgencyAssessment(Urgency.NORMAL, 0.25, (f"{limit} answers in a row were marked unhelpful",))
        (reply,) = self.composer.compose(Decision(DecisionKind.HANDOFF, HandoffReason.UNHELPFUL), team)
        draft, reply = self.planner.plan(
            conversation_id=conversation_id, channel=conversation.channel.value, reason=HandoffReason.UNHELPFUL,
            detail=f"{limit} answers in a row were marked unhelpful", team=team, urgency=urgency,
            intent=last.intent if last else None, confidence=last.confidence if last else None,
            transcript=transcript, intents=history, reply=reply)
        replies, _ = self.store.record_bot_action(conversation_id, (reply,), draft, message_id)
        return rated, replies

    def _recontact_since(self) -> datetime:
        """Other conversations started since then count as the customer contacting us again."""
        return datetime.now(UTC) - timedelta(hours=self.recontact_window_hours)

    def _run(self, message_id: int, inbound: InboundMessage, context: TurnContext | None) -> TurnRecord:
        if context is None:
            context = self.store.turn_context(inbound.conversation_id, self._recontact_since())
        conversation, transcript = context.conversation, context.transcript
        rating = self._csat_answer(conversation, transcript, inbound.text)
        if rating is not None:
            return TurnRecord(message_id, conversation.id, None, Decision(DecisionKind.RESPOND, detail="csat"),
                              (BotReply(DecisionKind.RESPOND, csat_thanks(rating)),), None, conversation.status)
        vector = self.encoder.encode([inbound.text])[0]
        intent = self.classifier.predict(inbound.text, vector)
        urgency = self.urgency.assess(inbound.text, intent, UrgencyContext(
            customer_tier=conversation.customer_tier, recent_contacts=context.recent_contacts,
        ), vector=vector)
        team = self.router.team_for(intent.intent)
        triage = Triage(intent, urgency, team)
        hits = tuple(self.retriever.search(vector, self.search_k, text=inbound.text))
        decision = decide(DecisionInput(
            conversation_status=ConversationStatus(conversation.status),
            intent=intent,
            urgency=urgency,
            hits=hits,
            human_requested=asks_for_human(inbound.text),
            has_response=self.composer.has_response(intent.intent),
            previous_misses=_trailing_clarifications(transcript),
            unhelpful_streak=_unhelpful_streak(transcript),
        ), self.policy)
        replies = self.composer.compose(decision, team, turn_number=message_id)
        handoff = None
        if decision.kind == DecisionKind.HANDOFF:
            assert decision.reason is not None
            this_turn = IntentTurn(message_id, intent.intent, intent.confidence, intent.out_of_scope)
            handoff, reply = self.planner.plan(
                conversation_id=conversation.id, channel=conversation.channel.value, reason=decision.reason,
                detail=decision.detail, team=team, urgency=urgency, intent=intent.intent or intent.top_intent,
                confidence=intent.confidence, transcript=transcript,
                intents=[*self.store.intent_history(conversation.id), this_turn], reply=replies[0])
            replies = (reply,)
        return TurnRecord(message_id, conversation.id, triage, decision, replies, handoff, conversation.status)

    def _csat_answer(self, conversation: Conversation, transcript: list[StoredMessage], text: str) -> int | None:
        """A 1-5 score typed right after the CSAT question is stored as the rating."""
        if self.csat is None or conversation.status != ConversationStatus.BOT:
            return None
        last_bot = next((m for m in reversed(transcript) if m.sender != Sender.CUSTOMER), None)
        match = _SCORE.match(text)
        if last_bot is None or last_bot.kind != "csat_request" or match is None:
            return None
        try:
            self.csat.record_csat(conversation.id, int(match.group(1)))
        except ConflictError:
            return None  # already rated: treat the number as an ordinary message
        return int(match.group(1))

    def _failure(self, message_id: int, inbound: InboundMessage, error: Exception) -> TurnRecord:
        """A handoff built from whatever can still be read; each read may fail too."""
        detail = f"the bot pipeline failed ({type(error).__name__})"
        decision = Decision(DecisionKind.HANDOFF, HandoffReason.PIPELINE_ERROR, detail)
        urgency = UrgencyAssessment(Urgency.NORMAL, 0.25, ("the bot could not process the message",))
        transcript: list[StoredMessage] = []
        status = ConversationStatus.BOT
        channel = inbound.channel.value
        try:
            context = self.store.turn_context(inbound.conversation_id, self._recontact_since())
            transcript, conversation = context.transcript, context.conversation
            status, channel = ConversationStatus(conversation.status), conversation.channel.value
        except Exception:
            log.error("could not read the conversation for a failed turn (message %s)", message_id)
        if status != ConversationStatus.BOT:
            # Already with a human: the message is in the transcript for the agent; nothing to hand off.
            return TurnRecord(message_id, inbound.conversation_id, None,
                              Decision(DecisionKind.WAIT_FOR_AGENT, detail=detail), ())
        team = self.router.team_for(None)
        draft, reply = self.planner.plan(
            conversation_id=inbound.conversation_id, channel=channel, reason=HandoffReason.PIPELINE_ERROR,
            detail=detail, team=team, urgency=urgency, intent=None, confidence=None, transcript=transcript,
            intents=(), reply=BotReply(DecisionKind.HANDOFF, ERROR_TEXT))
        return TurnRecord(message_id, inbound.conversation_id, None, decision, (reply,), draft)


def _trailing_clarifications(transcript: list[StoredMessage]) -> int:
    count = 0
    for m in reversed(transcript):
        if m.sender != Sender.BOT:
            continue
        if m.kind != DecisionKind.CLARIFY.value:
            break
        count += 1
    return count


def _unhelpful_streak(transcript: list[StoredMessage]) -> int:
    """Answers marked unhelpful in a row, newest first (follow-ups and other bot lines are skipped)."""
    count = 0
    for m in reversed(transcript):
        if m.sender != Sender.BOT or m.kind not in (DecisionKind.ANSWER.value, DecisionKind.SUGGEST.value):
            continue
        if m.payload.get("feedback") != "unhelpful":
            break
        count += 1
    return count


def _decision_of(replies: list[StoredMessage], default: DecisionKind = DecisionKind.WAIT_FOR_AGENT) -> DecisionKind:
    for reply in replies:
        if reply.kind:
            try:
                return DecisionKind(reply.kind)
            except ValueError:
                continue
    return default
