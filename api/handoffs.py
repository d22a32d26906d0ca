"""The agent desk API: the queue, one handoff with its context, and every agent action."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AgentDep, ServicesDep
from api.schemas import (
    CustomerOut,
    DeskInfoOut,
    HandoffDetailOut,
    HandoffOut,
    IntentIn,
    MessageOut,
    NoteOut,
    RenderedOut,
    ResolveOut,
    SearchHitOut,
    StaffUserOut,
    TeamOut,
    TextIn,
    TransferIn,
)
from domain.enums import HandoffState
from domain.errors import ValidationError
from domain.models import Note
from handoff.hours import is_open

router = APIRouter(prefix="/api", tags=["agents"])


@router.get("/desk", response_model=DeskInfoOut)
def desk_info(services: ServicesDep, agent: AgentDep) -> DeskInfoOut:
    """Teams (with hours and tiers), known intents and the calling agent."""
    now = datetime.now(UTC)
    teams = [TeamOut(key=t.key, name=t.name, tiers=t.tiers, hours=t.hours.text if t.hours else None,
                     on_duty=is_open(t.hours, now)) for t in services.teams.teams.values()]
    services.desk.seen(agent)
    return DeskInfoOut(teams=teams, intents=sorted(services.serving.intents), me=StaffUserOut.of(agent))


@router.get("/handoffs", response_model=list[HandoffOut])
def list_handoffs(
    services: ServicesDep, agent: AgentDep,
    state: Annotated[list[str] | None, Query(description="open, claimed, resolved (default: open and claimed)")]
    = None,
    team: Annotated[str | None, Query(description="only this team")] = None,
    mine: Annotated[bool, Query(description="only handoffs I claimed")] = False,
    urgency: Annotated[str | None, Query(description="low, normal, high or critical")] = None,
    with_context: Annotated[bool, Query(description="include the full context")] = False,
) -> list[HandoffOut]:
    """The queue, most urgent first, then longest waiting (agents see their own teams)."""
    try:
        states = tuple(HandoffState(s) for s in state) if state else (HandoffState.OPEN, HandoffState.CLAIMED)
    except ValueError as e:
        raise ValidationError("state must be open, claimed or resolved") from e
    if urgency is not None and urgency not in ("low", "normal", "high", "critical"):
        raise ValidationError("urgency must be low, normal, high or critical")
    items = services.desk.queue(agent, states=states, team=team, mine=mine, urgency=urgency)
    return [HandoffOut.of(i.handoff, with_context, i) for i in items]


@router.get("/handoffs/{handoff_id}", response_model=HandoffDetailOut)
def read_handoff(services: ServicesDep, agent: AgentDep, handoff_id: int) -> HandoffDetailOut:
    """Transcript, intents, urgency reasons, articles offered, customer profile, notes, suggestions, CSAT."""
    detail = services.desk.detail(agent, handoff_id)
    url = services.settings.knowledge.article_url_template
    return HandoffDetailOut(
        handoff=HandoffOut.of(detail.item.handoff, True, detail.item),
        transcript=[MessageOut.of(m) for m in detail.transcript],
        notes=[_note(n) for n in detail.notes],
        suggested_articles=[SearchHitOut(article_id=h.article_id, title=h.article_title, heading=h.heading,
                                         passage=h.text, score=round(h.score, 4),
                                         url=url.format(article_id=h.article_id)) for h in detail.suggestions],
        csat=detail.csat,
        customer=CustomerOut.of(detail.customer) if detail.customer else None,
    )


@router.post("/handoffs/{handoff_id}/claim", response_model=HandoffOut)
def claim(services: ServicesDep, agent: AgentDep, handoff_id: int) -> HandoffOut:
    """Take the handoff; 409 when another agent already has it."""
    return HandoffOut.of(services.desk.claim(agent, handoff_id), with_context=False)


@router.post("/handoffs/{handoff_id}/reply", response_model=MessageOut)
def reply(services: ServicesDep, agent: AgentDep, handoff_id: int, body: TextIn) -> MessageOut:
    """Reply to the customer on the channel they came from (claims an open handoff)."""
    return MessageOut.of(services.desk.reply(agent, handoff_id, body.text))


@router.post("/handoffs/{handoff_id}/notes", response_model=NoteOut)
def add_note(services: ServicesDep, agent: AgentDep, handoff_id: int, body: TextIn) -> NoteOut:
    """An internal note, never shown to the customer."""
    return _note(services.desk.note(agent, handoff_id, body.text))


@router.post("/handoffs/{handoff_id}/transfer", response_model=HandoffOut)
def transfer(services: ServicesDep, agent: AgentDep, handoff_id: int, body: TransferIn) -> HandoffOut:
    """Move to another team and/or tier; it goes back to the queue with its whole context."""
    return HandoffOut.of(services.desk.transfer(agent, handoff_id, body.team, body.tier, body.reason), False)


@router.post("/handoffs/{handoff_id}/escalate", response_model=HandoffOut)
def escalate(services: ServicesDep, agent: AgentDep, handoff_id: int, body: TransferIn | None = None
             ) -> HandoffOut:
    """One tier up in the same team."""
    return HandoffOut.of(services.desk.escalate(agent, handoff_id, body.reason if body else ""), False)


@router.put("/handoffs/{handoff_id}/intent", response_model=HandoffOut)
def set_intent(services: ServicesDep, agent: AgentDep, handoff_id: int, body: IntentIn) -> HandoffOut:
    """Set the intent the bot should have recognized; it reaches the trainers."""
    return HandoffOut.of(services.desk.set_intent(agent, handoff_id, body.intent), False)


@router.post("/handoffs/{handoff_id}/resolve", response_model=ResolveOut)
def resolve(services: ServicesDep, agent: AgentDep, handoff_id: int) -> ResolveOut:
    """Resolve: the bot takes the conversation back and asks the customer for a 1-5 rating."""
    handoff, message = services.desk.resolve(agent, handoff_id)
    return ResolveOut(handoff=HandoffOut.of(handoff, False), message=MessageOut.of(message) if message else None)


@router.post("/handoffs/{handoff_id}/reopen", response_model=HandoffOut)
def reopen(services: ServicesDep, agent: AgentDep, handoff_id: int) -> HandoffOut:
    """Put a resolved handoff back in the queue."""
    return HandoffOut.of(services.desk.reopen(agent, handoff_id), False)


@router.get("/handoffs/{handoff_id}/canned/{canned_id}", response_model=RenderedOut)
def render_canned(services: ServicesDep, agent: AgentDep, handoff_id: int, canned_id: int) -> RenderedOut:
    """A canned response filled in for this handoff (customer name, agent name, article links)."""
    return RenderedOut(text=services.desk.render_canned(agent, handoff_id, canned_id))


@router.post("/messages/{message_id}/retry-delivery", response_model=MessageOut)
def retry_delivery(services: ServicesDep, _: AgentDep, message_id: int) -> MessageOut:
    """Try delivering an undelivered message again now."""
    message = services.conversations.retry_delivery(message_id, datetime.now(UTC))
    services.notifier.notify()
    return MessageOut.of(message)


def _note(note: Note) -> NoteOut:
    return NoteOut(id=note.id, author=note.author, text=note.text, created_at=note.created_at)
