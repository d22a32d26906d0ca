"""Handoff records: insert inside a turn's transaction, list the queue, read one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from domain.enums import EventKind, HandoffState, Urgency
from domain.errors import NotFoundError
from domain.models import Handoff, HandoffDraft
from storage.db import Database
from storage.events import append_event
from storage.tables import ConversationRow, HandoffRow, utcnow


def insert_handoff(s: Session | Connection, conversation_id: str, draft: HandoffDraft,
                   trigger_message_id: int | None) -> int:
    """Add a handoff row in the caller's transaction; returns its id."""
    now = utcnow()
    handoffs = cast(Table, HandoffRow.__table__)
    handoff_id = int(s.execute(insert(handoffs).values(
        conversation_id=conversation_id, state=HandoffState.OPEN.value, reason=draft.reason.value,
        reason_detail=draft.reason_detail, team=draft.team, urgency=draft.urgency.value,
        urgency_rank=draft.urgency.rank, intent=draft.intent, confidence=draft.confidence,
        summary=draft.summary, context=asdict(draft.context), trigger_message_id=trigger_message_id,
        required_skills=list(draft.required_skills), queued_at=now, created_at=now, updated_at=now,
        first_response_due=draft.first_response_due, resolution_due=draft.resolution_due,
    ).returning(handoffs.c.id)).scalar_one())
    append_event(s, EventKind.HANDOFF_CREATED, handoff_id=handoff_id, conversation_id=conversation_id, team=draft.team,
                 payload={"urgency": draft.urgency.value, "reason": draft.reason.value})
    return handoff_id


class HandoffRepository:
    """Read side of the handoff queue (the agent workflow extends it)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def queue(self, states: tuple[HandoffState, ...] = (HandoffState.OPEN, HandoffState.CLAIMED),
              team: str | None = None, limit: int = 200, claimed_by: str | None = None,
              teams: frozenset[str] = frozenset(), tier: int | None = None,
              urgency: str | None = None) -> list[Handoff]:
        """Handoffs in the given states, most urgent first, then longest waiting."""
        with self.db.read() as s:
            query = (select(HandoffRow, ConversationRow.channel)
                     .join(ConversationRow, ConversationRow.id == HandoffRow.conversation_id)
                     .where(HandoffRow.state.in_([st.value for st in states])))
            if team:
                query = query.where(HandoffRow.team == team)
            if teams:
                query = query.where(HandoffRow.team.in_(sorted(teams)))
            if claimed_by:
                query = query.where(HandoffRow.claimed_by == claimed_by)
            if tier is not None:
                query = query.where(HandoffRow.tier == tier)
            if urgency:
                query = query.where(HandoffRow.urgency == urgency)
            query = query.order_by(HandoffRow.urgency_rank.desc(), HandoffRow.queued_at, HandoffRow.id)
            return [_handoff(r, channel) for r, channel in s.execute(query.limit(limit)).all()]

    def get(self, handoff_id: int) -> Handoff:
        """One handoff; raises NotFoundError."""
        with self.db.read() as s:
            found = s.execute(select(HandoffRow, ConversationRow.channel)
                              .join(ConversationRow, ConversationRow.id == HandoffRow.conversation_id)
                              .where(HandoffRow.id == handoff_id)).first()
            if found is None:
                raise NotFoundError(f"handoff {handoff_id} does not exist")
            return _handoff(found[0], found[1])

    def for_conversation(self, conversation_id: str) -> list[Handoff]:
        """All handoffs of a conversation, oldest first."""
        with self.db.read() as s:
            rows = s.scalars(select(HandoffRow).where(HandoffRow.conversation_id == conversation_id)
                             .order_by(HandoffRow.id)).all()
            return [_handoff(r) for r in rows]


def handoff_of(row: HandoffRow, channel: str | None = None) -> Handoff:
    """The domain view of a handoff row."""
    context: dict[str, Any] = dict(row.context or {})
    return Handoff(
        id=row.id, conversation_id=row.conversation_id, state=row.state, reason=row.reason,
        reason_detail=row.reason_detail, team=row.team, urgency=Urgency(row.urgency), intent=row.intent,
        confidence=row.confidence, summary=row.summary, context=context, created_at=row.created_at,
        updated_at=row.updated_at, claimed_by=row.claimed_by, claimed_at=row.claimed_at,
        resolved_at=row.resolved_at, tier=row.tier, required_skills=tuple(row.required_skills or ()),
        queued_at=row.queued_at, first_response_at=row.first_response_at,
        first_response_due=row.first_response_due, resolution_due=row.resolution_due,
        first_response_breached=row.first_response_breached, resolution_breached=row.resolution_breached,
        corrected_intent=row.corrected_intent, channel=channel, trigger_message_id=row.trigger_message_id,
    )


_handoff = handoff_of
