"""What the pipeline needs from the rest of the system, as small protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import numpy as np

from domain.enums import Urgency
from domain.models import (
    BotReply,
    Conversation,
    CustomerProfile,
    HandoffDraft,
    InboundMessage,
    IntentTurn,
    SearchHit,
    StoredMessage,
    TurnContext,
    TurnRecord,
)
from handoff.waiting import WaitInfo


class ConversationStore(Protocol):
    """Persistence of conversations (``storage.conversations.ConversationRepository``).

    Contract: ``record_inbound`` commits before returning and reports retried deliveries;
    ``turn_context`` reads the conversation, its transcript and the customer's repeat contacts consistently;
    ``record_turn`` is atomic and idempotent (a second call for the same message writes nothing).
    """

    def record_inbound(self, inbound: InboundMessage) -> tuple[StoredMessage, bool]: ...

    def begin_turn(self, inbound: InboundMessage, since: datetime) -> tuple[StoredMessage, bool, TurnContext | None]:
        """``record_inbound`` and, for a message stored now, ``turn_context`` in the same transaction."""
        ...

    def turn_context(self, conversation_id: str, since: datetime) -> TurnContext: ...

    def get_conversation(self, conversation_id: str) -> Conversation: ...

    def transcript(self, conversation_id: str, after_id: int = 0, limit: int = 500) -> list[StoredMessage]: ...

    def intent_history(self, conversation_id: str) -> list[IntentTurn]: ...

    def customer_profile(self, conversation_id: str) -> CustomerProfile: ...

    def record_turn(self, record: TurnRecord) -> tuple[list[StoredMessage], int | None, bool]: ...

    def record_bot_action(self, conversation_id: str, replies: Sequence[BotReply], handoff: HandoffDraft | None,
                          trigger_message_id: int | None) -> tuple[list[StoredMessage], int | None]: ...

    def set_feedback(self, conversation_id: str, message_id: int, helpful: bool) -> StoredMessage: ...

    def replies_to(self, message_id: int) -> list[StoredMessage]: ...

    def handoff_for_message(self, message_id: int) -> int | None: ...


class Retriever(Protocol):
    """Knowledge-base search over an already encoded query (``knowledge_index.KnowledgeBase``).

    ``text`` is the query as typed: its words are part of the evidence (scores are calibrated with it).
    """

    def search(self, query: np.ndarray, k: int = 8, text: str | None = None) -> list[SearchHit]: ...


class Router(Protocol):
    """Intent -> team (``handoff.routing.TeamsConfig``)."""

    def team_for(self, intent: str | None) -> str: ...


class WaitEstimator(Protocol):
    """Queue place and expected wait for a new handoff (``handoff.desk.AgentDesk``)."""

    def wait_info(self, team: str, urgency: Urgency, now: datetime | None = None,
                  handoff_id: int | None = None) -> WaitInfo: ...


class CsatRecorder(Protocol):
    """Stores a customer's 1-5 score (``storage.desk.DeskStore``); raises ConflictError if nothing to rate."""

    def record_csat(self, conversation_id: str, score: int, comment: str | None = None) -> int: ...
