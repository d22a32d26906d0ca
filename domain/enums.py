"""Enumerations of the support domain: channels, senders, urgency, decisions, handoff states, roles."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Where a customer wrote from; replies go back on the same channel."""

    WEB = "web"
    SLACK = "slack"
    TELEGRAM = "telegram"
    API = "api"


class Sender(StrEnum):
    """Who wrote a message in a conversation."""

    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    """Processing state of an inbound message (outbound messages are always ``processed``)."""

    RECEIVED = "received"
    PROCESSED = "processed"


class ConversationStatus(StrEnum):
    """Who owns the conversation right now."""

    BOT = "bot"
    HUMAN = "human"
    CLOSED = "closed"


class Urgency(StrEnum):
    """Urgency of a message or a handoff, ordered by :attr:`rank`."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for critical; higher is more urgent."""
        return _URGENCY_RANK[self]

    @classmethod
    def from_rank(cls, rank: int) -> Urgency:
        """The level for a rank, clamped to the valid range."""
        return _URGENCY_BY_RANK[max(0, min(3, rank))]


_URGENCY_RANK = {Urgency.LOW: 0, Urgency.NORMAL: 1, Urgency.HIGH: 2, Urgency.CRITICAL: 3}
_URGENCY_BY_RANK = {rank: level for level, rank in _URGENCY_RANK.items()}


class DecisionKind(StrEnum):
    """What the bot does with a customer turn."""

    ANSWER = "answer"  # one cited knowledge-base passage
    SUGGEST = "suggest"  # a short list of likely articles
    RESPOND = "respond"  # a canned response for a conversational intent (greeting, thanks, ...)
    CLARIFY = "clarify"  # not understood: ask the customer to rephrase
    FOLLOW_UP = "follow_up"  # an answer was marked unhelpful: ask what is missing
    HANDOFF = "handoff"  # a human takes over
    WAIT_FOR_AGENT = "wait_for_agent"  # already with a human: the bot stays quiet


class HandoffReason(StrEnum):
    """Why the bot handed a conversation to a human."""

    CUSTOMER_REQUEST = "customer_request"
    URGENCY = "urgency"
    LOW_CONFIDENCE = "low_confidence"
    OUT_OF_SCOPE = "out_of_scope"
    NO_ANSWER = "no_answer"
    UNHELPFUL = "unhelpful"
    PIPELINE_ERROR = "pipeline_error"


class HandoffState(StrEnum):
    """Life cycle of a handoff in the agents' queue."""

    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


class Role(StrEnum):
    """Staff roles; a customer token never carries any of them."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    EDITOR = "editor"
    TRAINER = "trainer"
    ADMIN = "admin"


class Topic(StrEnum):
    """What changed in the shared state that every server process keeps a view of (the change log)."""

    ARTICLES = "articles"  # key: the article id (created, edited or deleted)
    MODEL = "model"  # key: the version that became active
    STAFF = "staff"  # key: the username (roles, teams, disabled, password, a session ended)
    CANNED = "canned"  # key: the canned response id
    JOBS = "jobs"  # key: the retrain job id (queued, progress, finished)


class DeliveryStatus(StrEnum):
    """Outbound delivery of a message to the customer's platform (None: nothing to push, e.g. web chat)."""

    PENDING = "pending"
    SENDING = "sending"  # leased by one process until ``next_delivery_at``
    DELIVERED = "delivered"
    FAILED = "failed"  # kept; retried with back-off and shown to agents


class EventKind(StrEnum):
    """What an event in the event log says happened (live views stream these; the pages read the values)."""

    CONVERSATION_STATUS = "conversation.status"
    CSAT_RECEIVED = "csat.received"
    CUSTOMER_MERGED = "customer.merged"
    HANDOFF_CLAIMED = "handoff.claimed"
    HANDOFF_CREATED = "handoff.created"
    HANDOFF_ESCALATED = "handoff.escalated"
    HANDOFF_INTENT_CORRECTED = "handoff.intent_corrected"
    HANDOFF_REOPENED = "handoff.reopened"
    HANDOFF_RESOLVED = "handoff.resolved"
    HANDOFF_TRANSFERRED = "handoff.transferred"
    MESSAGE_CREATED = "message.created"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_DELIVERY_FAILED = "message.delivery_failed"
    NOTE_ADDED = "note.added"
    SLA_BREACHED = "sla.breached"
