"""What the agent desk needs from storage and the knowledge base, as protocols."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.enums import HandoffState
from domain.models import (
    Article,
    CannedResponse,
    Conversation,
    CustomerProfile,
    Handoff,
    Note,
    SearchHit,
    StoredMessage,
)


class KnownIntents(Protocol):
    """The intents of the model being served (``nlu.serving.ServingModel``): an agent's correction must name one."""

    @property
    def intents(self) -> tuple[str, ...]: ...


class DeskStorePort(Protocol):
    """State changes of the agent workflow (``storage.desk.DeskStore``)."""

    def claim(self, handoff_id: int, agent: str) -> Handoff: ...

    def reply(self, handoff_id: int, agent: str, author: str, text: str, delivery_status: str | None,
              may_take_over: bool = False) -> StoredMessage: ...

    def add_note(self, handoff_id: int, author: str, text: str) -> Note: ...

    def notes(self, handoff_id: int) -> list[Note]: ...

    def transfer(self, handoff_id: int, actor: str, team: str, tier: int, reason: str) -> Handoff: ...

    def correct_intent(self, handoff_id: int, intent: str, actor: str) -> Handoff: ...

    def resolve(self, handoff_id: int, actor: str, closing_text: str | None,
                delivery_status: str | None) -> tuple[Handoff, StoredMessage | None]: ...

    def reopen(self, handoff_id: int, actor: str, first_response_due: datetime | None,
               resolution_due: datetime | None) -> Handoff: ...

    def record_csat(self, conversation_id: str, score: int, comment: str | None = None) -> int: ...

    def csat_for(self, handoff_id: int) -> int | None: ...

    def queue_position(self, team: str, urgency_rank: int, handoff_id: int | None = None) -> int: ...

    def median_first_response_minutes(self, team: str, since: datetime) -> float | None: ...

    def agents_on_duty(self, team: str, since: datetime) -> int: ...

    def touch(self, username: str, now: datetime) -> None: ...


class HandoffReader(Protocol):
    """Reading handoffs (``storage.handoffs.HandoffRepository``)."""

    def queue(self, states: tuple[HandoffState, ...] = ..., team: str | None = None, limit: int = 200,
              claimed_by: str | None = None, teams: frozenset[str] = ..., tier: int | None = None,
              urgency: str | None = None) -> list[Handoff]: ...

    def get(self, handoff_id: int) -> Handoff: ...


class ConversationReader(Protocol):
    """Reading conversations (``storage.conversations.ConversationRepository``)."""

    def get_conversation(self, conversation_id: str) -> Conversation: ...

    def transcript(self, conversation_id: str, after_id: int = 0, limit: int = 500) -> list[StoredMessage]: ...

    def customer_profile(self, conversation_id: str) -> CustomerProfile: ...


class CannedPort(Protocol):
    """Reply templates (``storage.canned.CannedStore``)."""

    def get(self, canned_id: int) -> CannedResponse: ...


class ArticleLookup(Protocol):
    """Articles and search (``knowledge_index.KnowledgeBase`` + its repository)."""

    def search_text(self, text: str, k: int = 8) -> list[SearchHit]: ...

    def get_article(self, article_id: str) -> Article | None: ...
