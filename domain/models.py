"""Typed dataclasses passed between layers: articles, search hits, triage, decisions and turn results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.enums import Channel, DecisionKind, HandoffReason, Sender, Urgency


@dataclass(frozen=True)
class Article:
    """A help-center article as imported from markdown with front matter."""

    id: str
    title: str
    body: str
    tags: tuple[str, ...] = ()
    locale: str = "en"
    team: str | None = None
    source_path: str | None = None


@dataclass(frozen=True)
class Chunk:
    """One heading-delimited section of an article; ``id`` is the vector-index id."""

    id: int
    article_id: str
    ordinal: int
    heading: str
    text: str


@dataclass(frozen=True)
class SearchHit:
    """A retrieved chunk with its article and cosine score."""

    article_id: str
    article_title: str
    chunk_id: int
    heading: str
    text: str
    score: float


@dataclass(frozen=True)
class IntentPrediction:
    """The intent classifier's verdict on one message."""

    intent: str | None  # None when out of scope
    confidence: float
    ranking: tuple[tuple[str, float], ...]
    out_of_scope: bool
    model_version: str
    # The top-2 margin is below the one the model found trustworthy on validation data (see nlu.thresholds).
    ambiguous: bool = False

    @property
    def margin(self) -> float:
        """Probability gap between the two best intents (ambiguity when small)."""
        if len(self.ranking) < 2:
            return 1.0
        return self.ranking[0][1] - self.ranking[1][1]

    @property
    def top_intent(self) -> str | None:
        """The best-ranked intent even when the message was judged out of scope."""
        return self.ranking[0][0] if self.ranking else None


@dataclass(frozen=True)
class UrgencyAssessment:
    """Urgency level with the score and the human-readable reasons that raised it."""

    level: Urgency
    score: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Triage:
    """Everything the bot learned about one message."""

    intent: IntentPrediction
    urgency: UrgencyAssessment
    team: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A customer message as a connector hands it to the pipeline.

    ``external_id`` is the platform's delivery id (web client id, Slack event id, Telegram update id);
    a second delivery with the same id is a retry and is not processed twice.
    """

    conversation_id: str
    text: str
    channel: Channel = Channel.WEB
    external_id: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    """A message as it is kept in the transcript."""

    id: int
    conversation_id: str
    sender: Sender
    text: str
    created_at: datetime
    kind: str | None = None
    status: str = "processed"
    author: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    delivery_status: str | None = None  # None: nothing to push; pending / delivered / failed
    delivery_attempts: int = 0
    delivery_error: str | None = None


@dataclass(frozen=True)
class Citation:
    """The article an answer came from, as shown to the customer."""

    article_id: str
    title: str
    url: str
    passage: str
    heading: str
    score: float


@dataclass(frozen=True)
class Decision:
    """Output of the pure decision function: what to do and why."""

    kind: DecisionKind
    reason: HandoffReason | None = None
    detail: str = ""
    hits: tuple[SearchHit, ...] = ()
    response_key: str | None = None


@dataclass(frozen=True)
class BotReply:
    """A reply the bot sends for a turn."""

    kind: DecisionKind
    text: str
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class TurnResult:
    """What one customer turn produced; returned again unchanged for a retried delivery."""

    message_id: int
    conversation_id: str
    decision: DecisionKind
    replies: tuple[StoredMessage, ...]
    handoff_id: int | None = None
    duplicate: bool = False
    conversation_status: str | None = None  # who owns the conversation after the turn; None if unknown
    message: StoredMessage | None = None  # the customer's message as stored (processed); None if not at hand


@dataclass(frozen=True)
class Team:
    """A team of agents that handoffs are routed to."""

    key: str
    name: str
    description: str = ""
    hours: BusinessHours | None = None  # None: always open
    tiers: int = 3


@dataclass(frozen=True)
class IntentRoute:
    """Team, urgency prior and required skills of one intent, from the teams config."""

    team: str
    urgency: Urgency = Urgency.NORMAL
    skills: tuple[str, ...] = ()


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours of a team in its time zone: weekday (0 = Monday) -> (open, close) minute ranges."""

    timezone: str
    weekly: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]
    text: str


@dataclass(frozen=True)
class TranscriptLine:
    """One message of a transcript as shown to an agent."""

    message_id: int
    sender: str
    text: str
    at: str
    author: str | None = None


@dataclass(frozen=True)
class IntentTurn:
    """The intent verdict on one customer message."""

    message_id: int
    intent: str | None
    confidence: float
    out_of_scope: bool


@dataclass(frozen=True)
class OfferedArticle:
    """An article the bot offered, and how the customer reacted to it."""

    article_id: str
    title: str
    kind: str  # "answer" or "suggest"
    score: float
    message_id: int
    reaction: str  # "helpful", "unhelpful", "no reaction"


@dataclass(frozen=True)
class CustomerIdentity:
    """The customer's id on one channel."""

    channel: str
    external_id: str


@dataclass(frozen=True)
class EarlierConversation:
    """A previous conversation of the same customer and how it ended."""

    conversation_id: str
    channel: str
    status: str
    started_at: str
    outcome: str


@dataclass(frozen=True)
class CustomerProfile:
    """Who the customer is across channels."""

    customer_id: int
    display_name: str | None
    email: str | None
    tier: str
    identities: tuple[CustomerIdentity, ...] = ()
    earlier_conversations: tuple[EarlierConversation, ...] = ()


@dataclass(frozen=True)
class HandoffContext:
    """Everything the bot knew when it handed over; stored with the handoff as JSON."""

    channel: str
    reason: str
    reason_detail: str
    summary: str
    urgency: str
    urgency_score: float
    urgency_reasons: tuple[str, ...]
    transcript: tuple[TranscriptLine, ...]
    intents: tuple[IntentTurn, ...]
    articles_offered: tuple[OfferedArticle, ...]
    customer: CustomerProfile | None


@dataclass(frozen=True)
class HandoffDraft:
    """A handoff about to be stored, built by ``handoff.context``."""

    reason: HandoffReason
    reason_detail: str
    team: str
    urgency: Urgency
    intent: str | None
    confidence: float | None
    summary: str
    context: HandoffContext
    required_skills: tuple[str, ...] = ()
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None


@dataclass(frozen=True)
class TurnRecord:
    """All outputs of one processed turn, stored in one transaction with the inbound marked processed."""

    message_id: int
    conversation_id: str
    triage: Triage | None
    decision: Decision
    replies: tuple[BotReply, ...]
    handoff: HandoffDraft | None = None
    conversation_status: str | None = None  # the status the turn saw (before a handoff changes it)


@dataclass(frozen=True)
class TurnContext:
    """What a turn reads before deciding, in one read: the conversation, its transcript, repeat contacts."""

    conversation: Conversation
    transcript: list[StoredMessage]  # oldest first, the message being processed included
    recent_contacts: int  # other conversations of the same customer in the repeat-contact window


@dataclass(frozen=True)
class Conversation:
    """A conversation between one customer and the support desk."""

    id: str
    customer_id: int
    channel: Channel
    status: str
    token_hash: str
    created_at: datetime
    updated_at: datetime
    external_ref: str | None = None
    customer_tier: str = "standard"


@dataclass(frozen=True)
class Handoff:
    """A stored handoff with its full context."""

    id: int
    conversation_id: str
    state: str
    reason: str
    reason_detail: str
    team: str
    urgency: Urgency
    intent: str | None
    confidence: float | None
    summary: str
    context: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    resolved_at: datetime | None = None
    tier: int = 1
    required_skills: tuple[str, ...] = ()
    queued_at: datetime | None = None
    first_response_at: datetime | None = None
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    first_response_breached: bool = False
    resolution_breached: bool = False
    corrected_intent: str | None = None
    channel: str | None = None
    trigger_message_id: int | None = None


@dataclass(frozen=True)
class StaffUser:
    """An agent, supervisor, editor, trainer or admin."""

    id: int
    username: str
    display_name: str | None
    roles: frozenset[str]
    active: bool = True
    teams: frozenset[str] = frozenset()  # empty: every team
    skills: frozenset[str] = frozenset()
    tier: int = 1

    @property
    def name(self) -> str:
        """How the customer sees this person."""
        return self.display_name or self.username


@dataclass(frozen=True)
class Event:
    """Something that happened to a handoff or conversation (the live views stream these)."""

    id: int
    kind: str
    created_at: datetime
    handoff_id: int | None = None
    conversation_id: str | None = None
    team: str | None = None
    actor: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    tx: int = 0  # the writing transaction on PostgreSQL: with ``id`` it orders events by commit

    @property
    def position(self) -> str:
        """Where a reader of the log is after this event (an SSE event id; ``storage.tail.Position``)."""
        return f"{self.tx}.{self.id}"


@dataclass(frozen=True)
class PendingInbound:
    """A stored customer message whose turn never finished, leased to this process to run it again."""

    message_id: int
    inbound: InboundMessage
    attempts: int


@dataclass(frozen=True)
class OutboundClaim:
    """An outbound message leased to this process for delivery to the customer's platform."""

    message: StoredMessage
    conversation: Conversation
    interrupted: bool  # a previous attempt died mid-send: the platform may already have received it


@dataclass(frozen=True)
class Note:
    """An internal note on a handoff."""

    id: int
    handoff_id: int
    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class CannedResponse:
    """A reply template; placeholders: {customer_name}, {agent_name}, {article:<id>}."""

    id: int
    title: str
    body: str
    team: str | None
    updated_by: str
    updated_at: datetime
