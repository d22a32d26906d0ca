"""Pydantic models of the HTTP API (the documented JSON shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.models import CustomerProfile, Handoff, StaffUser, StoredMessage
from handoff.desk import QueueItem


class CitationOut(BaseModel):
    """An article cited by a bot reply."""

    article_id: str
    title: str
    url: str
    heading: str
    passage: str
    score: float


class MessageOut(BaseModel):
    """One message of a transcript."""

    id: int
    sender: str = Field(description="customer, bot, agent or system")
    text: str
    kind: str | None = Field(None, description="for bot replies: answer, suggest, respond, clarify, handoff")
    created_at: datetime
    author: str | None = None
    citations: list[CitationOut] = []
    feedback: str | None = Field(None, description="the customer's reaction to a bot answer")
    delivery_status: str | None = Field(None, description="for Slack/Telegram: pending, delivered or failed")
    delivery_error: str | None = None

    @classmethod
    def of(cls, m: StoredMessage) -> MessageOut:
        """From a stored message."""
        raw = m.payload.get("citations")
        citations = [CitationOut(**c) for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
        feedback = m.payload.get("feedback")
        return cls(id=m.id, sender=m.sender.value, text=m.text, kind=m.kind, created_at=m.created_at,
                   author=m.author, citations=citations, feedback=str(feedback) if feedback else None,
                   delivery_status=m.delivery_status, delivery_error=m.delivery_error)


class ConversationCreate(BaseModel):
    """Start a conversation; both fields are optional."""

    name: str | None = Field(None, max_length=120, description="how to greet the customer")
    email: str | None = Field(None, max_length=320)
    user_id: str | None = Field(None, min_length=1, max_length=200,
                                description="the host app's id of a signed-in customer (needs user_hash)")
    tier: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$",
                             description="the customer's plan tier, e.g. premium (signed with user_id)")
    user_hash: str | None = Field(None, max_length=128, description=(
        "hex HMAC-SHA256 of user_id (or of 'user_id\\ntier' when tier is given) keyed with chat.identity_secret"))


class ConversationCreated(BaseModel):
    """The new conversation and the token that gives access to it (shown once)."""

    conversation_id: str
    customer_token: str = Field(description="send as 'Authorization: Bearer <token>'; keep it secret")
    status: str


class ConversationOut(BaseModel):
    """A conversation with its transcript."""

    id: str
    status: str = Field(description="bot, human or closed")
    channel: str
    created_at: datetime
    messages: list[MessageOut]


class MessageIn(BaseModel):
    """A customer message."""

    text: str = Field(description="the message; empty or over the configured limit is refused")
    client_message_id: str | None = Field(
        None, max_length=100, description="idempotency key: a retried POST with the same id is not processed twice")


class TurnOut(BaseModel):
    """What the bot did with a message."""

    message: MessageOut
    replies: list[MessageOut]
    decision: str
    handed_off: bool
    conversation_status: str = Field(description="who owns the conversation now: bot, human or closed")
    duplicate: bool = Field(description="true when this delivery was a retry of an earlier one")


class FeedbackIn(BaseModel):
    """The customer's reaction to a bot answer."""

    helpful: bool


class LoginIn(BaseModel):
    """Staff credentials."""

    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=200)


class LoginOut(BaseModel):
    """A staff session."""

    token: str
    expires_at: datetime
    username: str
    roles: list[str]


class StaffUserOut(BaseModel):
    """A staff user."""

    username: str
    display_name: str | None
    roles: list[str]
    teams: list[str] = Field(default_factory=list, description="empty: every team")
    skills: list[str] = Field(default_factory=list)
    tier: int = 1
    active: bool = True

    @classmethod
    def of(cls, u: StaffUser) -> StaffUserOut:
        """From a staff user."""
        return cls(username=u.username, display_name=u.display_name, roles=sorted(u.roles), teams=sorted(u.teams),
                   skills=sorted(u.skills), tier=u.tier, active=u.active)


class StaffUserIn(BaseModel):
    """A new staff user."""

    username: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=200)
    roles: list[str] = Field(min_length=1)
    display_name: str | None = Field(None, max_length=200)
    teams: list[str] = Field(default_factory=list, max_length=50)
    skills: list[str] = Field(default_factory=list, max_length=50)
    tier: int = Field(1, ge=1, le=9)


class StaffUserPatch(BaseModel):
    """Changes to a staff user; omitted fields stay as they are."""

    roles: list[str] | None = Field(None, min_length=1)
    display_name: str | None = Field(None, max_length=200)
    teams: list[str] | None = Field(None, max_length=50)
    skills: list[str] | None = Field(None, max_length=50)
    tier: int | None = Field(None, ge=1, le=9)
    active: bool | None = None


class SlaOut(BaseModel):
    """A handoff against its SLA targets."""

    first_response_due: datetime
    resolution_due: datetime
    first_response_breached: bool
    resolution_breached: bool


class HandoffOut(BaseModel):
    """A handoff in the queue, with the full context for the agent."""

    id: int
    conversation_id: str
    state: str = Field(description="open, claimed or resolved")
    reason: str
    reason_detail: str
    team: str
    tier: int
    urgency: str
    intent: str | None
    corrected_intent: str | None
    confidence: float | None
    summary: str
    channel: str | None
    created_at: datetime
    queued_at: datetime | None
    claimed_by: str | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    required_skills: list[str]
    waiting_seconds: float | None = Field(None, description="until the first response (or now)")
    sla: SlaOut | None = None
    can_take: bool | None = Field(None, description="whether the calling agent may work it")
    why_not: str | None = None
    context: dict[str, Any]

    @classmethod
    def of(cls, h: Handoff, with_context: bool = True, item: QueueItem | None = None) -> HandoffOut:
        """From a stored handoff (and its queue view)."""
        sla = None
        if item is not None:
            sla = SlaOut(first_response_due=item.sla.first_response_due, resolution_due=item.sla.resolution_due,
                         first_response_breached=item.sla.first_response_breached or h.first_response_breached,
                         resolution_breached=item.sla.resolution_breached or h.resolution_breached)
        return cls(id=h.id, conversation_id=h.conversation_id, state=h.state, reason=h.reason,
                   reason_detail=h.reason_detail, team=h.team, tier=h.tier, urgency=h.urgency.value, intent=h.intent,
                   corrected_intent=h.corrected_intent, confidence=h.confidence, summary=h.summary,
                   channel=h.channel, created_at=h.created_at, queued_at=h.queued_at, claimed_by=h.claimed_by,
                   first_response_at=h.first_response_at, resolved_at=h.resolved_at,
                   required_skills=list(h.required_skills),
                   waiting_seconds=round(item.waiting_seconds, 1) if item else None, sla=sla,
                   can_take=item.can_take if item else None, why_not=(item.why_not or None) if item else None,
                   context=h.context if with_context else {})


class NoteOut(BaseModel):
    """An internal note."""

    id: int
    author: str
    text: str
    created_at: datetime


class IdentityOut(BaseModel):
    """The customer's id on one channel."""

    channel: str
    external_id: str


class EarlierOut(BaseModel):
    """One of the customer's conversations and how it ended."""

    conversation_id: str
    channel: str
    status: str
    started_at: str
    outcome: str


class CustomerOut(BaseModel):
    """A customer's profile across channels."""

    customer_id: int
    display_name: str | None
    email: str | None
    tier: str
    identities: list[IdentityOut]
    conversations: list[EarlierOut] = Field(description="the latest conversations, newest first")

    @classmethod
    def of(cls, p: CustomerProfile) -> CustomerOut:
        return cls(customer_id=p.customer_id, display_name=p.display_name, email=p.email, tier=p.tier,
                   identities=[IdentityOut(channel=i.channel, external_id=i.external_id) for i in p.identities],
                   conversations=[EarlierOut(conversation_id=c.conversation_id, channel=c.channel, status=c.status,
                                             started_at=c.started_at, outcome=c.outcome)
                                  for c in p.earlier_conversations])


class HandoffDetailOut(BaseModel):
    """One handoff with everything the console shows."""

    handoff: HandoffOut
    transcript: list[MessageOut]
    notes: list[NoteOut]
    suggested_articles: list[SearchHitOut]
    csat: int | None
    customer: CustomerOut | None = Field(description=(
        "the customer's profile now, with their other conversations (the context keeps the one at handoff)"))


class TextIn(BaseModel):
    """A reply or a note."""

    text: str = Field(min_length=1, max_length=4000)


class TransferIn(BaseModel):
    """Where to move a handoff."""

    team: str | None = Field(None, max_length=60)
    tier: int | None = Field(None, ge=1, le=9)
    reason: str = Field("", max_length=500)


class IntentIn(BaseModel):
    """The intent the bot should have recognized."""

    intent: str = Field(min_length=1, max_length=120)


class ResolveOut(BaseModel):
    """A resolved handoff and the CSAT question sent to the customer."""

    handoff: HandoffOut
    message: MessageOut | None


class CannedIn(BaseModel):
    """A reply template: placeholders {customer_name}, {agent_name}, {article:<article-id>}."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    team: str | None = Field(None, max_length=60)


class CannedOut(BaseModel):
    """A reply template."""

    id: int
    title: str
    body: str
    team: str | None
    updated_by: str
    updated_at: datetime


class RenderedOut(BaseModel):
    """A canned response filled in for one handoff."""

    text: str


class CsatIn(BaseModel):
    """A customer satisfaction score."""

    score: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)


class FeedbackOut(BaseModel):
    """The rated message and what the bot said next."""

    message: MessageOut
    replies: list[MessageOut]
    conversation_status: str


class TeamOut(BaseModel):
    """A team as the console shows it."""

    key: str
    name: str
    tiers: int
    hours: str | None
    on_duty: bool


class DeskInfoOut(BaseModel):
    """Teams, intents and who is asking: what the console needs to draw its menus."""

    teams: list[TeamOut]
    intents: list[str]
    me: StaffUserOut


class ArticleIn(BaseModel):
    """An article written through the editor API."""

    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=200_000)
    tags: list[str] = Field(default_factory=list, max_length=30)
    locale: str = Field("en", max_length=20)
    team: str | None = Field(None, max_length=60)


class ArticleOut(BaseModel):
    """An article."""

    id: str
    title: str
    body: str
    tags: list[str]
    locale: str
    team: str | None
    url: str


class ArticleSummaryOut(BaseModel):
    """An article in a listing."""

    id: str
    title: str
    tags: list[str]
    team: str | None
    url: str
    updated_at: datetime


class SearchHitOut(BaseModel):
    """A knowledge-base search result."""

    article_id: str
    title: str
    heading: str
    passage: str
    score: float
    url: str


class ArticleUsageOut(BaseModel):
    """An article with how the bot used it in the window: replies that cited it and customers' reactions."""

    id: str
    title: str
    tags: list[str]
    locale: str
    team: str | None
    url: str
    updated_at: datetime
    answered: int = Field(description="answers quoting this article")
    suggested: int = Field(description="suggestion lists naming this article")
    helpful: int = Field(description="'helpful' reactions to those replies")
    unhelpful: int = Field(description="'unhelpful' reactions to those replies")


class TeamNameOut(BaseModel):
    """A team an article can belong to."""

    key: str
    name: str


class ArticleStatsOut(BaseModel):
    """Every article with its usage since ``since``, most unhelpful reactions first; the configured teams."""

    days: int
    since: datetime
    teams: list[TeamNameOut]
    articles: list[ArticleUsageOut]


class ArticlePreviewIn(BaseModel):
    """A draft to cut into sections the way the knowledge base will."""

    title: str = Field("", max_length=300)
    body: str = Field("", max_length=200_000)


class ArticleSectionOut(BaseModel):
    """One chunk of a draft: what the bot can quote as an answer, under its heading."""

    heading: str
    text: str


class ArticlePreviewOut(BaseModel):
    """A draft's sections, in order."""

    sections: list[ArticleSectionOut]


class TryQuestionIn(BaseModel):
    """A customer question to run against the knowledge base."""

    text: str = Field(min_length=1, max_length=2000)


class TryHitOut(BaseModel):
    """A ranked article for the question, and whether the decision uses it."""

    article_id: str
    title: str
    heading: str
    passage: str
    score: float
    url: str
    chosen: bool = Field(description="quoted (answer) or listed (suggest) by the decision")


class PolicyThresholdsOut(BaseModel):
    """The thresholds the knowledge-base decision compares article scores with (settings.policy)."""

    answer_threshold: float
    answer_margin: float
    suggest_threshold: float
    max_suggestions: int


class TryQuestionOut(BaseModel):
    """What the knowledge-base step of the bot would do with the question now (intent and urgency aside)."""

    decision: str = Field(description="answer, suggest or none")
    detail: str
    hits: list[TryHitOut]
    thresholds: PolicyThresholdsOut
