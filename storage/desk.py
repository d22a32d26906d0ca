"""The agent workflow's state changes: claim, reply, note, transfer, intent, resolve, reopen, CSAT, SLA.

Each method is one transaction guarded by the current state (so two agents can never both win a claim),
and appends its events in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from statistics import median
from typing import Any, cast

from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session

from domain.enums import ConversationStatus, EventKind, HandoffState, Sender
from domain.errors import ConflictError, NotFoundError
from domain.models import Handoff, Note, StoredMessage
from storage.conversations import message_of
from storage.db import Database
from storage.events import append_event
from storage.handoffs import handoff_of
from storage.tables import (
    ConversationRow,
    CsatRow,
    HandoffNoteRow,
    HandoffRow,
    IntentCorrectionRow,
    MessageRow,
    PredictionRow,
    StaffUserRow,
    utcnow,
)


class DeskStore:
    """Persistence of the agent desk."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- claiming ----------------------------------------------------------------------------

    def claim(self, handoff_id: int, agent: str) -> Handoff:
        """Take an open handoff; exactly one of many simultaneous claims wins.

        Raises:
            NotFoundError: no such handoff.
            ConflictError: someone else has it, or it is resolved.
        """
        with self.db.session() as s:
            now = utcnow()
            won = cast(CursorResult[Any], s.execute(
                update(HandoffRow).where(HandoffRow.id == handoff_id, HandoffRow.state == HandoffState.OPEN.value)
                .values(state=HandoffState.CLAIMED.value, claimed_by=agent, claimed_at=now, updated_at=now)
            )).rowcount
            row = _load(s, handoff_id)
            if not won:
                if row.state == HandoffState.CLAIMED.value and row.claimed_by == agent:
                    return handoff_of(row)  # a double click is not an error
                raise _state_conflict(row, agent)
            append_event(s, EventKind.HANDOFF_CLAIMED, handoff_id=row.id, conversation_id=row.conversation_id,
                         team=row.team, actor=agent)
            return handoff_of(row)

    # --- messages and notes ------------------------------------------------------------------

    def reply(self, handoff_id: int, agent: str, author: str, text: str, delivery_status: str | None,
              may_take_over: bool = False) -> StoredMessage:
        """Store an agent's reply to the customer; an open handoff is claimed by the replying agent.

        Raises:
            ConflictError: the handoff is resolved, or another agent has it (unless ``may_take_over``).
        """
        with self.db.session() as s:
            row = _load(s, handoff_id, lock=True)
            if row.state == HandoffState.RESOLVED.value:
                raise ConflictError("this conversation is resolved; reopen it before replying")
            if row.state == HandoffState.CLAIMED.value and row.claimed_by != agent and not may_take_over:
                raise ConflictError(f"this handoff is claimed by {row.claimed_by}")
            now = utcnow()
            if row.state == HandoffState.OPEN.value:
                row.state, row.claimed_by, row.claimed_at = HandoffState.CLAIMED.value, agent, now
                append_event(s, EventKind.HANDOFF_CLAIMED, handoff_id=row.id, conversation_id=row.conversation_id,
                             team=row.team, actor=agent)
            if row.first_response_at is None:
                row.first_response_at = now
            row.updated_at = now
            message = MessageRow(conversation_id=row.conversation_id, sender=Sender.AGENT.value, text=text,
                                 author=author, payload={"agent": agent, "handoff_id": row.id},
                                 status="processed", processed_at=now, delivery_status=delivery_status,
                                 next_delivery_at=now if delivery_status else None)
            s.add(message)
            s.flush()
            stored = message_of(message)
            append_event(s, EventKind.MESSAGE_CREATED, handoff_id=row.id, conversation_id=row.conversation_id,
                         team=row.team, actor=agent, payload={"message_id": message.id, "sender": "agent"})
            return stored

    def add_note(self, handoff_id: int, author: str, text: str) -> Note:
        """An internal note (never shown to the customer)."""
        with self.db.session() as s:
            row = _load(s, handoff_id)
            note = HandoffNoteRow(handoff_id=handoff_id, author=author, text=text)
            s.add(note)
            s.flush()
            append_event(s, EventKind.NOTE_ADDED, handoff_id=handoff_id, conversation_id=row.conversation_id,
                         team=row.team, actor=author, payload={"note_id": note.id})
            return Note(note.id, note.handoff_id, note.author, note.text, note.created_at)

    def notes(self, handoff_id: int) -> list[Note]:
        """The handoff's notes, oldest first."""
        with self.db.read() as s:
            rows = s.scalars(select(HandoffNoteRow).where(HandoffNoteRow.handoff_id == handoff_id)
                             .order_by(HandoffNoteRow.id)).all()
            return [Note(n.id, n.handoff_id, n.author, n.text, n.created_at) for n in rows]

    # --- routing changes ---------------------------------------------------------------------

    def transfer(self, handoff_id: int, actor: str, team: str, tier: int, reason: str) -> Handoff:
        """Send a handoff to another team and/or tier: back in the queue, context and SLA clock kept."""
        with self.db.session() as s:
            row = _load(s, handoff_id, lock=True)
            if row.state == HandoffState.RESOLVED.value:
                raise ConflictError("this conversation is resolved; reopen it before transferring")
            before = f"{row.team} tier {row.tier}"
            escalated = tier > row.tier and team == row.team
            kind = EventKind.HANDOFF_ESCALATED if escalated else EventKind.HANDOFF_TRANSFERRED
            row.team, row.tier = team, tier
            row.state, row.claimed_by, row.claimed_at = HandoffState.OPEN.value, None, None
            row.updated_at = utcnow()
            text = f"Moved from {before} to {team} tier {tier} by {actor}" + (f": {reason}" if reason else "")
            s.add(HandoffNoteRow(handoff_id=handoff_id, author=actor, text=text))
            append_event(s, kind, handoff_id=row.id, conversation_id=row.conversation_id, team=team, actor=actor,
                         payload={"from": before, "team": team, "tier": tier})
            return handoff_of(row)

    def correct_intent(self, handoff_id: int, intent: str, actor: str) -> Handoff:
        """Record the right intent for the message that caused the handoff (it reaches the trainers)."""
        with self.db.session() as s:
            row = _load(s, handoff_id)
            row.corrected_intent, row.updated_at = intent, utcnow()
            message_id = row.trigger_message_id
            if message_id is not None:
                prediction = s.scalars(select(PredictionRow).where(PredictionRow.message_id == message_id)).first()
                s.add(IntentCorrectionRow(
                    message_id=message_id, conversation_id=row.conversation_id, handoff_id=row.id,
                    predicted_intent=prediction.intent if prediction else row.intent, corrected_intent=intent,
                    model_version=prediction.model_version if prediction else None, source="agent",
                    corrected_by=actor))
            append_event(s, EventKind.HANDOFF_INTENT_CORRECTED, handoff_id=row.id, conversation_id=row.conversation_id,
                         team=row.team, actor=actor, payload={"intent": intent})
            return handoff_of(row)

    # --- closing -----------------------------------------------------------------------------

    def resolve(self, handoff_id: int, actor: str, closing_text: str | None,
                delivery_status: str | None) -> tuple[Handoff, StoredMessage | None]:
        """Resolve: the bot owns the conversation again and (optionally) asks for a CSAT score."""
        with self.db.session() as s:
            row = _load(s, handoff_id, lock=True)
            if row.state == HandoffState.RESOLVED.value:
                raise ConflictError("this handoff is already resolved")
            now = utcnow()
            row.state, row.resolved_at, row.updated_at = HandoffState.RESOLVED.value, now, now
            _set_status(s, row.conversation_id, ConversationStatus.BOT)
            message = None
            if closing_text:
                message = MessageRow(conversation_id=row.conversation_id, sender=Sender.BOT.value, text=closing_text,
                                     kind="csat_request", payload={"handoff_id": row.id}, status="processed",
                                     processed_at=now, delivery_status=delivery_status,
                                     next_delivery_at=now if delivery_status else None)
                s.add(message)
                s.flush()
            append_event(s, EventKind.HANDOFF_RESOLVED, handoff_id=row.id, conversation_id=row.conversation_id,
                         team=row.team, actor=actor, payload={"status": "bot"})
            if message is not None:
                append_event(s, EventKind.MESSAGE_CREATED, handoff_id=row.id, conversation_id=row.conversation_id,
                             team=row.team, payload={"message_id": message.id, "sender": "bot"})
            return handoff_of(row), message_of(message) if message is not None else None

    def reopen(self, handoff_id: int, actor: str, first_response_due: datetime | None,
               resolution_due: datetime | None) -> Handoff:
        """Put a resolved handoff back in the queue; the conversation returns to the agents."""
        with self.db.session() as s:
            row = _load(s, handoff_id, lock=True)
            if row.state != HandoffState.RESOLVED.value:
                raise ConflictError("only a resolved handoff can be reopened")
            now = utcnow()
            row.state, row.claimed_by, row.claimed_at, row.resolved_at = HandoffState.OPEN.value, None, None, None
            row.queued_at, row.updated_at, row.first_response_at = now, now, None
            row.first_response_due, row.resolution_due = first_response_due, resolution_due
            row.first_response_breached = row.resolution_breached = False
            _set_status(s, row.conversation_id, ConversationStatus.HUMAN)
            append_event(s, EventKind.HANDOFF_REOPENED, handoff_id=row.id, conversation_id=row.conversation_id,
                         team=row.team, actor=actor, payload={"status": "human"})
            return handoff_of(row)

    def record_csat(self, conversation_id: str, score: int, comment: str | None = None) -> int:
        """Store a 1-5 score for the conversation's latest resolved handoff; returns that handoff's id.

        Raises:
            ConflictError: nothing to rate, or it was rated already.
        """
        with self.db.session() as s:
            row = s.scalars(select(HandoffRow).where(HandoffRow.conversation_id == conversation_id,
                                                     HandoffRow.state == HandoffState.RESOLVED.value)
                            .order_by(HandoffRow.resolved_at.desc(), HandoffRow.id.desc())).first()
            if row is None:
                raise ConflictError("there is no resolved conversation to rate")
            if s.scalar(select(CsatRow.id).where(CsatRow.handoff_id == row.id)) is not None:
                raise ConflictError("this conversation was already rated")
            s.add(CsatRow(conversation_id=conversation_id, handoff_id=row.id, score=score, comment=comment))
            append_event(s, EventKind.CSAT_RECEIVED, handoff_id=row.id, conversation_id=conversation_id, team=row.team,
                         payload={"score": score})
            return row.id

    def csat_for(self, handoff_id: int) -> int | None:
        """The score given after a handoff, if any."""
        with self.db.read() as s:
            return s.scalar(select(CsatRow.score).where(CsatRow.handoff_id == handoff_id))

    # --- SLA and waiting ---------------------------------------------------------------------

    def flag_sla_breaches(self, now: datetime) -> list[tuple[int, str]]:
        """Mark handoffs whose first-response or resolution due time passed; each breach is flagged once.

        Each flag is a conditional UPDATE, so two processes checking at the same moment never flag (and
        announce) the same breach twice.
        """
        flagged: list[tuple[int, str]] = []
        open_ = HandoffRow.state != HandoffState.RESOLVED.value
        checks = (
            ("first_response", HandoffRow.first_response_breached,
             (HandoffRow.first_response_at.is_(None), HandoffRow.first_response_breached.is_(False),
              HandoffRow.first_response_due < now)),
            ("resolution", HandoffRow.resolution_breached,
             (HandoffRow.resolution_breached.is_(False), HandoffRow.resolution_due < now)),
        )
        with self.db.session() as s:
            for target, column, conditions in checks:
                rows = s.execute(update(HandoffRow).where(open_, *conditions).values({column: True})
                                 .returning(HandoffRow.id, HandoffRow.conversation_id, HandoffRow.team,
                                            HandoffRow.urgency)
                                 .execution_options(synchronize_session=False)).all()
                for row in sorted(rows, key=lambda r: r.id):
                    flagged.append((row.id, target))
                    append_event(s, EventKind.SLA_BREACHED, handoff_id=row.id, conversation_id=row.conversation_id,
                                 team=row.team, payload={"target": target, "urgency": row.urgency})
        return flagged

    def queue_position(self, team: str, urgency_rank: int, handoff_id: int | None = None) -> int:
        """1-based place in the team's open queue.

        For a handoff about to be created, pass its team and urgency rank: it goes behind every open
        handoff at least as urgent. For an existing one, pass its id (team and rank are then its own).
        """
        with self.db.read() as s:
            ahead = select(func.count()).select_from(HandoffRow).where(HandoffRow.state == HandoffState.OPEN.value)
            if handoff_id is None:
                ahead = ahead.where(HandoffRow.team == team, HandoffRow.urgency_rank >= urgency_rank)
            else:
                row = _load(s, handoff_id)
                ahead = ahead.where(HandoffRow.team == row.team, HandoffRow.id != row.id, or_(
                    HandoffRow.urgency_rank > row.urgency_rank,
                    and_(HandoffRow.urgency_rank == row.urgency_rank,
                         or_(HandoffRow.queued_at < row.queued_at,
                             and_(HandoffRow.queued_at == row.queued_at, HandoffRow.id < row.id)))))
            return int(s.scalar(ahead) or 0) + 1

    def median_first_response_minutes(self, team: str, since: datetime) -> float | None:
        """Median minutes from queueing to the first agent reply, over the team's recent handoffs."""
        with self.db.read() as s:
            rows = s.execute(select(HandoffRow.queued_at, HandoffRow.first_response_at).where(
                HandoffRow.team == team, HandoffRow.first_response_at.is_not(None), HandoffRow.queued_at >= since)
                .order_by(HandoffRow.id.desc()).limit(500)).all()
        waits = [(first - queued).total_seconds() / 60 for queued, first in rows if first and queued]
        return median(waits) if waits else None

    def agents_on_duty(self, team: str, since: datetime) -> int:
        """Agents of the team (or of every team) whose console was active since ``since``."""
        with self.db.read() as s:
            rows = s.execute(select(StaffUserRow.teams, StaffUserRow.roles).where(
                StaffUserRow.active.is_(True), StaffUserRow.last_seen_at >= since)).all()
        return sum(1 for teams, roles in rows
                   if set(roles) & {"agent", "supervisor"} and (not teams or team in teams))

    def touch(self, username: str, now: datetime) -> None:
        """Record that a staff member is active (presence for 'on duty')."""
        with self.db.session() as s:
            s.execute(update(StaffUserRow).where(StaffUserRow.username == username).values(last_seen_at=now))


def _load(s: Session, handoff_id: int, lock: bool = False) -> HandoffRow:
    query = select(HandoffRow).where(HandoffRow.id == handoff_id)
    if lock:
        query = query.with_for_update()  # PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already serializes
    row = s.scalars(query).first()
    if row is None:
        raise NotFoundError(f"handoff {handoff_id} does not exist")
    return row


def _state_conflict(row: HandoffRow, agent: str) -> ConflictError:
    if row.state == HandoffState.RESOLVED.value:
        return ConflictError("this handoff is resolved; reopen it first")
    return ConflictError(f"this handoff was already claimed by {row.claimed_by}")


def _set_status(s: Session, conversation_id: str, status: ConversationStatus) -> None:
    s.execute(update(ConversationRow).where(ConversationRow.id == conversation_id)
              .values(status=status.value, updated_at=utcnow()))
    append_event(s, EventKind.CONVERSATION_STATUS, conversation_id=conversation_id, payload={"status": status.value})
