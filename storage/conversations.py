"""Conversations, customers and messages: inbound first, then the whole turn in one transaction.

The per-turn paths (record_inbound, turn_context, record_turn) use Core statements with RETURNING rather
than ORM objects: they run on every message, and the unit of work cost more CPU than the SQL itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from domain.enums import Channel, ConversationStatus, DeliveryStatus, EventKind, MessageStatus, Sender
from domain.errors import NotFoundError
from domain.models import (
    BotReply,
    Conversation,
    CustomerIdentity,
    CustomerProfile,
    HandoffDraft,
    InboundMessage,
    IntentTurn,
    OutboundClaim,
    PendingInbound,
    StoredMessage,
    TurnContext,
    TurnRecord,
)
from storage.customers import build_profile
from storage.db import Database
from storage.events import append_event
from storage.handoffs import insert_handoff
from storage.tables import (
    ConversationRow,
    CustomerIdentityRow,
    CustomerRow,
    HandoffRow,
    MessageRow,
    PredictionRow,
    utcnow,
)

_MESSAGES = cast(Table, MessageRow.__table__)
_PREDICTIONS = cast(Table, PredictionRow.__table__)
_CONVERSATIONS = cast(Table, ConversationRow.__table__)
_CUSTOMERS = cast(Table, CustomerRow.__table__)
_DUE = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value, DeliveryStatus.SENDING.value)


def _statements() -> SimpleNamespace:
    """The statements of every customer turn, built once with bound parameters.

    A statement object built per call costs SQLAlchemy a cache-key traversal each time, more CPU than the SQL
    itself on this path (docs/performance.md); these are built at import and only executed with new values.
    """
    m, c, cu, p = _MESSAGES, _CONVERSATIONS, _CUSTOMERS, _PREDICTIONS
    other = c.alias("other")
    recent = (select(func.count()).select_from(other)
              .where(other.c.customer_id == c.c.customer_id, other.c.id != c.c.id,
                     other.c.created_at >= bindparam("since"))
              .scalar_subquery().label("recent"))
    head = select(c, cu.c.tier).join(cu, cu.c.id == c.c.customer_id).where(c.c.id == bindparam("cid"))
    identities = cast(Table, CustomerIdentityRow.__table__)
    return SimpleNamespace(
        identity_owner=select(identities.c.customer_id).where(identities.c.channel == bindparam("channel"),
                                                              identities.c.external_id == bindparam("external_id")),
        insert_customer=insert(cu).returning(cu.c.id),
        insert_identity=insert(identities),
        insert_conversation=insert(c),
        head=head,
        head_recent=head.add_columns(recent),
        insert_message=insert(m).returning(m.c.id),
        insert_messages=insert(m).returning(m.c.id, sort_by_parameter_order=True),
        transcript=(select(m).where(m.c.conversation_id == bindparam("cid"), m.c.id > bindparam("after"))
                    .order_by(m.c.id).limit(bindparam("limit"))),
        claim=(update(m).where(m.c.id == bindparam("mid"), m.c.status == MessageStatus.RECEIVED.value)
               .values(status=MessageStatus.PROCESSED.value, processed_at=bindparam("now"))),
        insert_prediction=insert(p),
        touch=(update(c).where(c.c.id == bindparam("cid")).values(updated_at=bindparam("now"))
               .returning(c.c.channel)),
        touch_handoff=(update(c).where(c.c.id == bindparam("cid"))
                       .values(updated_at=bindparam("now"), status=ConversationStatus.HUMAN.value)
                       .returning(c.c.channel)),
    )


_SQL = _statements()


class ConversationRepository:
    """Everything about conversations and their messages.

    ``inbound_lease``: how long a stored customer message belongs to the process handling it; if it is still
    unprocessed after that (the process died), :meth:`claim_unprocessed` hands it to another process.
    """

    def __init__(self, db: Database, inbound_lease: timedelta = timedelta(seconds=15)) -> None:
        self.db = db
        self.inbound_lease = inbound_lease

    # --- conversations -----------------------------------------------------------------------

    def create_conversation(
        self,
        channel: Channel,
        token_hash: str,
        display_name: str | None = None,
        email: str | None = None,
        identity: CustomerIdentity | None = None,
        external_ref: str | None = None,
        conversation_id: str | None = None,
    ) -> Conversation:
        """Start a conversation (a new UUID unless given); the customer is found by channel identity or created."""
        now = utcnow()
        with self.db.begin() as conn:
            customer_id = None
            if identity is not None:
                customer_id = conn.scalar(_SQL.identity_owner, {"channel": identity.channel,
                                                                "external_id": identity.external_id})
            if customer_id is None:
                customer_id = int(conn.execute(_SQL.insert_customer, {
                    "display_name": display_name, "email": email, "tier": "standard", "created_at": now,
                }).scalar_one())
                if identity is not None:
                    conn.execute(_SQL.insert_identity, {"customer_id": customer_id, "channel": identity.channel,
                                                        "external_id": identity.external_id, "created_at": now})
            values = {"id": conversation_id or str(uuid.uuid4()), "customer_id": customer_id,
                      "channel": channel.value, "status": ConversationStatus.BOT.value, "token_hash": token_hash,
                      "external_ref": external_ref, "created_at": now, "updated_at": now}
            conn.execute(_SQL.insert_conversation, values)
        return _conversation(SimpleNamespace(**values))

    def get_conversation(self, conversation_id: str) -> Conversation:
        """The conversation; raises NotFoundError."""
        with self.db.read() as s:
            found = s.execute(
                select(ConversationRow, CustomerRow.tier)
                .join(CustomerRow, CustomerRow.id == ConversationRow.customer_id)
                .where(ConversationRow.id == conversation_id)
            ).first()
            if found is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist")
            return _conversation(found[0], found[1])

    def set_status(self, conversation_id: str, status: ConversationStatus) -> None:
        """Change who owns the conversation."""
        with self.db.session() as s:
            s.execute(update(ConversationRow).where(ConversationRow.id == conversation_id)
                      .values(status=status.value, updated_at=utcnow()))

    # --- messages ----------------------------------------------------------------------------

    def record_inbound(self, inbound: InboundMessage) -> tuple[StoredMessage, bool]:
        """Commit a customer message before anything else happens.

        Returns:
            The stored message and True when it is a retried delivery already stored earlier.
        """
        stored, duplicate, _ = self._store_inbound(inbound, None)
        return stored, duplicate

    def begin_turn(self, inbound: InboundMessage, since: datetime) -> tuple[StoredMessage, bool, TurnContext | None]:
        """Commit a customer message and read its turn's context (:meth:`turn_context`) in the same transaction.

        Returns:
            The stored message, True when it is a retried delivery already stored earlier (then no context).
        """
        return self._store_inbound(inbound, since)

    def _store_inbound(self, inbound: InboundMessage, since: datetime | None
                       ) -> tuple[StoredMessage, bool, TurnContext | None]:
        values = _message_values(inbound.conversation_id, Sender.CUSTOMER, inbound.text,
                                 status=MessageStatus.RECEIVED.value, delivery_key=inbound.external_id,
                                 payload={"channel": inbound.channel.value})
        values["lease_until"] = values["created_at"] + self.inbound_lease
        try:
            with self.db.begin() as conn:
                if since is None:
                    head = conn.execute(_SQL.head, {"cid": inbound.conversation_id}).first()
                else:
                    head = conn.execute(_SQL.head_recent, {"cid": inbound.conversation_id, "since": since}).first()
                if head is None:
                    raise NotFoundError(f"conversation {inbound.conversation_id} does not exist")
                message_id = int(conn.execute(_SQL.insert_message, values).scalar_one())
                if head.status == ConversationStatus.HUMAN.value:
                    # Agents watch conversations they own live; bot-phase chatter is not streamed.
                    append_event(conn, EventKind.MESSAGE_CREATED, conversation_id=inbound.conversation_id,
                                 payload={"message_id": message_id, "sender": "customer"})
                context = None
                if since is not None:
                    context = TurnContext(_conversation(head, head.tier), _transcript(conn, inbound.conversation_id),
                                          int(head.recent or 0))
                return _stored(message_id, values), False, context
        except IntegrityError:
            if inbound.external_id is None:
                raise
            with self.db.read_connection() as conn:
                row = conn.execute(select(_MESSAGES).where(_MESSAGES.c.delivery_key == inbound.external_id)).one()
                return _message(row), True, None

    def add_message(
        self, conversation_id: str, sender: Sender, text: str, kind: str | None = None,
        author: str | None = None, payload: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Append a non-customer message (system notice, agent reply)."""
        with self.db.session() as s:
            row = MessageRow(conversation_id=conversation_id, sender=sender.value, text=text, kind=kind,
                             author=author, payload=payload or {}, status=MessageStatus.PROCESSED.value,
                             processed_at=utcnow())
            s.add(row)
            s.flush()
            return _message(row)

    def get_message(self, message_id: int) -> StoredMessage:
        """One message; raises NotFoundError."""
        with self.db.read() as s:
            row = s.get(MessageRow, message_id)
            if row is None:
                raise NotFoundError(f"message {message_id} does not exist")
            return _message(row)

    def transcript(self, conversation_id: str, after_id: int = 0, limit: int = 500) -> list[StoredMessage]:
        """Messages in order, optionally only those after a message id (for polling)."""
        with self.db.read() as s:
            return _transcript(s, conversation_id, after_id, limit)

    def turn_context(self, conversation_id: str, since: datetime) -> TurnContext:
        """The conversation (with the customer's tier), its transcript and the customer's other conversations
        started since ``since``: one read transaction, two statements. Raises NotFoundError."""
        with self.db.read_connection() as conn:
            head = conn.execute(_SQL.head_recent, {"cid": conversation_id, "since": since}).first()
            if head is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist")
            transcript = _transcript(conn, conversation_id)
        return TurnContext(_conversation(head, head.tier), transcript, int(head.recent or 0))

    def replies_to(self, message_id: int) -> list[StoredMessage]:
        """The bot replies produced by one inbound message."""
        with self.db.read() as s:
            rows = s.scalars(select(MessageRow).where(MessageRow.reply_to == message_id).order_by(MessageRow.id))
            return [_message(r) for r in rows.all()]

    def handoff_for_message(self, message_id: int) -> int | None:
        """The handoff a message triggered, if any."""
        with self.db.read() as s:
            return s.scalar(select(HandoffRow.id).where(HandoffRow.trigger_message_id == message_id))

    def claim_unprocessed(self, now: datetime, limit: int = 100) -> list[PendingInbound]:
        """Customer messages stored but never processed whose lease expired (their process died mid-turn), leased
        again to the caller for ``inbound_lease``, oldest first. Of several processes asking at once, each gets
        different messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; one writer at a time on SQLite)."""
        m = _MESSAGES
        due = (select(m.c.id).where(m.c.status == MessageStatus.RECEIVED.value,
                                    or_(m.c.lease_until.is_(None), m.c.lease_until < now))
               .order_by(m.c.id).limit(limit).with_for_update(skip_locked=True, of=m))
        with self.db.session() as s:
            ids = list(s.scalars(due))
            if not ids:
                return []
            s.execute(update(m).where(m.c.id.in_(ids))
                      .values(attempts=m.c.attempts + 1, lease_until=now + self.inbound_lease))
            rows = s.execute(
                select(m.c.id, m.c.conversation_id, m.c.text, m.c.delivery_key, m.c.attempts,
                       _CONVERSATIONS.c.channel)
                .join(_CONVERSATIONS, _CONVERSATIONS.c.id == m.c.conversation_id)
                .where(m.c.id.in_(ids)).order_by(m.c.id)).all()
        return [PendingInbound(r.id, InboundMessage(r.conversation_id, r.text, Channel(r.channel), r.delivery_key),
                               r.attempts) for r in rows]

    def unprocessed_count(self) -> int:
        """Customer messages stored and not yet processed (in flight, or waiting for recovery)."""
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(_MESSAGES)
                                .where(_MESSAGES.c.status == MessageStatus.RECEIVED.value)) or 0)

    def record_turn(self, record: TurnRecord) -> tuple[list[StoredMessage], int | None, bool]:
        """Store a turn's prediction, replies and handoff, and mark the inbound processed, atomically.

        Returns:
            (replies, handoff id, applied). ``applied`` is False when another worker had already
            processed the message; its replies are returned instead and nothing is written.
        """
        with self.db.begin() as conn:
            claimed = cast(CursorResult[Any], conn.execute(_SQL.claim, {"mid": record.message_id,
                                                                         "now": utcnow()})).rowcount
            if claimed:
                replies, handoff_id = _write_turn(conn, record)
                return replies, handoff_id, True
        return self.replies_to(record.message_id), self.handoff_for_message(record.message_id), False

    def record_bot_action(self, conversation_id: str, replies: Sequence[BotReply], handoff: HandoffDraft | None,
                          trigger_message_id: int | None) -> tuple[list[StoredMessage], int | None]:
        """Store bot messages (and a handoff) that no new customer message caused, e.g. after feedback."""
        with self.db.session() as s:
            rows, handoff_id = _write_outputs(s, conversation_id, replies, handoff, trigger_message_id)
            return rows, handoff_id

    def set_feedback(self, conversation_id: str, message_id: int, helpful: bool) -> StoredMessage:
        """Record the customer's reaction to a bot answer."""
        with self.db.session() as s:
            row = s.get(MessageRow, message_id)
            if row is None or row.conversation_id != conversation_id or row.sender != Sender.BOT.value:
                raise NotFoundError(f"bot message {message_id} does not exist in this conversation")
            verdict = "helpful" if helpful else "unhelpful"
            row.payload = {**row.payload, "feedback": verdict}
            if row.reply_to is not None:
                s.execute(update(PredictionRow).where(PredictionRow.message_id == row.reply_to)
                          .values(customer_feedback=verdict))
            return _message(row)

    # --- context for handoffs ----------------------------------------------------------------

    def intent_history(self, conversation_id: str) -> list[IntentTurn]:
        """The intent verdict of every processed customer message, oldest first."""
        with self.db.read() as s:
            rows = s.scalars(select(PredictionRow).where(PredictionRow.conversation_id == conversation_id)
                             .order_by(PredictionRow.message_id)).all()
            return [IntentTurn(r.message_id, r.intent, r.confidence, r.out_of_scope) for r in rows]

    def customer_profile(self, conversation_id: str) -> CustomerProfile:
        """The customer behind a conversation, their identities and earlier conversations."""
        with self.db.read() as s:
            conv = s.get(ConversationRow, conversation_id)
            if conv is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist")
            customer = s.get(CustomerRow, conv.customer_id)
            assert customer is not None  # enforced by the foreign key
            return build_profile(s, customer, exclude_conversation=conversation_id)

    def recent_conversations(self, conversation_id: str, since: datetime) -> int:
        """How many other conversations the same customer started since ``since``."""
        with self.db.read() as s:
            customer_id = select(ConversationRow.customer_id).where(ConversationRow.id == conversation_id)
            return int(s.scalar(
                select(func.count()).select_from(ConversationRow).where(
                    ConversationRow.customer_id == customer_id.scalar_subquery(),
                    ConversationRow.id != conversation_id, ConversationRow.created_at >= since)
            ) or 0)

    # --- outbound delivery -------------------------------------------------------------------

    def claim_deliveries(self, owner: str, now: datetime, lease: timedelta, limit: int = 50) -> list[OutboundClaim]:
        """Lease due outbound messages to ``owner`` until ``now + lease``; no other process gets them meanwhile.

        Due: pending, failed and due for a retry, or ``sending`` under a lease that expired (its process died
        mid-send; ``OutboundClaim.interrupted`` says so, since the platform may have received it). A message
        waits while an earlier one of its conversation is undelivered and not due (being sent elsewhere, or
        waiting for its retry), so each customer gets their messages in order; earlier ones that are due come
        in the same batch, before it. PostgreSQL skips rows another process is claiming (``FOR UPDATE SKIP
        LOCKED``); SQLite has one writer at a time.
        """
        m, earlier = _MESSAGES, _MESSAGES.alias("earlier")
        blocked = exists().where(earlier.c.conversation_id == m.c.conversation_id, earlier.c.id < m.c.id,
                                 earlier.c.delivery_status.in_(_DUE), earlier.c.next_delivery_at > now)
        due = (select(m.c.id, m.c.delivery_status)
               .where(m.c.delivery_status.in_(_DUE), m.c.next_delivery_at <= now, ~blocked)
               .order_by(m.c.id).limit(limit).with_for_update(skip_locked=True, of=m))
        with self.db.session() as s:
            found = s.execute(due).all()
            if not found:
                return []
            ids = [r.id for r in found]
            s.execute(update(m).where(m.c.id.in_(ids)).values(
                delivery_status=DeliveryStatus.SENDING.value, delivery_owner=owner, next_delivery_at=now + lease,
                delivery_attempts=m.c.delivery_attempts + 1))
            rows = s.execute(select(MessageRow, ConversationRow)
                             .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
                             .where(MessageRow.id.in_(ids)).order_by(MessageRow.id)).all()
        interrupted = {r.id for r in found if r.delivery_status == DeliveryStatus.SENDING.value}
        return [OutboundClaim(_message(msg), _conversation(conv), msg.id in interrupted) for msg, conv in rows]

    def mark_delivered(self, message_id: int, owner: str, platform_id: str | None = None,
                       resent: bool = False) -> bool:
        """The platform accepted the message; False when ``owner`` no longer held its lease.

        ``resent``: an earlier attempt was interrupted mid-send, so the customer may have it twice (recorded in
        the message's payload for agents and operators).
        """
        with self.db.session() as s:
            row = s.get(MessageRow, message_id)
            if not _leased_to(row, owner):
                return False
            assert row is not None
            row.delivery_status, row.delivery_error, row.next_delivery_at = DeliveryStatus.DELIVERED.value, None, None
            row.delivery_owner = None
            if platform_id:
                row.payload = {**row.payload, "platform_id": platform_id}
            if resent:
                row.payload = {**row.payload, "resent_after_interruption": True}
            append_event(s, EventKind.MESSAGE_DELIVERED, conversation_id=row.conversation_id,
                         payload={"message_id": row.id})
            return True

    def mark_delivery_failed(self, message_id: int, owner: str, error: str, retry_at: datetime) -> int:
        """The platform refused or was unreachable: keep the message and try again at ``retry_at``.

        Returns the attempts so far (0 when ``owner`` no longer held the lease: nothing was written).
        """
        with self.db.session() as s:
            row = s.get(MessageRow, message_id)
            if not _leased_to(row, owner):
                return 0
            assert row is not None
            row.delivery_status, row.delivery_error, row.next_delivery_at = (DeliveryStatus.FAILED.value, error[:500],
                                                                              retry_at)
            row.delivery_owner = None
            append_event(s, EventKind.MESSAGE_DELIVERY_FAILED, conversation_id=row.conversation_id,
                         payload={"message_id": row.id, "attempts": row.delivery_attempts})
            return row.delivery_attempts

    def postpone_delivery(self, message_id: int, owner: str, until: datetime) -> bool:
        """Give a leased message back untried, due at ``until`` (an earlier message of its conversation failed)."""
        with self.db.session() as s:
            row = s.get(MessageRow, message_id)
            if not _leased_to(row, owner):
                return False
            assert row is not None
            row.delivery_status = (DeliveryStatus.FAILED.value if row.delivery_error
                                   else DeliveryStatus.PENDING.value)
            row.next_delivery_at, row.delivery_owner = until, None
            row.delivery_attempts = max(0, row.delivery_attempts - 1)
            return True

    def retry_delivery(self, message_id: int, now: datetime) -> StoredMessage:
        """Make a failed message due now (an agent pressed 'retry')."""
        with self.db.session() as s:
            row = s.get(MessageRow, message_id)
            if row is None or row.delivery_status not in (DeliveryStatus.FAILED.value, DeliveryStatus.PENDING.value):
                raise NotFoundError(f"message {message_id} is not waiting for delivery")
            row.next_delivery_at = now
            return _message(row)

    def count_messages(self) -> int:
        """Total number of stored messages."""
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(MessageRow)) or 0)

    def open_conversation_for(self, channel: Channel, identity: CustomerIdentity) -> Conversation | None:
        """The newest conversation on ``channel`` of the customer with ``identity`` that is not closed.

        Open means status ``bot`` or ``human``: a resolved handoff gives the conversation back to the bot
        and it continues; only a ``closed`` one makes the connector start a new conversation.
        """
        with self.db.read() as s:
            found = s.execute(
                select(ConversationRow, CustomerRow.tier)
                .join(CustomerRow, CustomerRow.id == ConversationRow.customer_id)
                .join(CustomerIdentityRow, CustomerIdentityRow.customer_id == ConversationRow.customer_id)
                .where(CustomerIdentityRow.channel == identity.channel,
                       CustomerIdentityRow.external_id == identity.external_id,
                       ConversationRow.channel == channel.value,
                       ConversationRow.status != ConversationStatus.CLOSED.value)
                .order_by(ConversationRow.created_at.desc()).limit(1)
            ).first()
            return None if found is None else _conversation(found[0], found[1])


def _write_turn(s: Any, record: TurnRecord) -> tuple[list[StoredMessage], int | None]:
    if record.triage is not None:
        intent = record.triage.intent
        urgency = record.triage.urgency
        s.execute(_SQL.insert_prediction, dict(
            message_id=record.message_id, conversation_id=record.conversation_id, intent=intent.intent,
            top_intent=intent.top_intent, confidence=intent.confidence, margin=intent.margin,
            out_of_scope=intent.out_of_scope, ranking=[list(r) for r in intent.ranking[:5]],
            urgency=urgency.level.value, urgency_score=urgency.score, urgency_reasons=list(urgency.reasons),
            team=record.triage.team, model_version=intent.model_version, decision=record.decision.kind.value,
            decision_reason=record.decision.reason.value if record.decision.reason else None,
        ))
    return _write_outputs(s, record.conversation_id, record.replies, record.handoff, record.message_id)


def _write_outputs(s: Any, conversation_id: str, replies: Sequence[BotReply], handoff: HandoffDraft | None,
                   reply_to: int | None) -> tuple[list[StoredMessage], int | None]:
    now = utcnow()
    # Touching the conversation first returns its channel, which decides whether replies are pushed.
    channel = s.scalar(_SQL.touch if handoff is None else _SQL.touch_handoff, {"cid": conversation_id, "now": now})
    delivery = delivery_status_for(channel)
    rows = [
        _message_values(conversation_id, Sender.BOT, reply.text, kind=reply.kind.value, reply_to=reply_to,
                        payload={"citations": [asdict(c) for c in reply.citations]}, processed_at=now,
                        delivery_status=delivery, next_delivery_at=now if delivery else None, created_at=now)
        for reply in replies
    ]
    ids: list[int] = []
    if rows:
        ids = list(s.scalars(_SQL.insert_messages, rows))
    handoff_id = None
    if handoff is not None:
        handoff_id = insert_handoff(s, conversation_id, handoff, reply_to)
        append_event(s, EventKind.CONVERSATION_STATUS, conversation_id=conversation_id, payload={"status": "human"})
    return [_stored(i, v) for i, v in zip(ids, rows, strict=True)], handoff_id


def _message_values(conversation_id: str, sender: Sender, text: str, *, kind: str | None = None,
                    status: str = MessageStatus.PROCESSED.value, delivery_key: str | None = None,
                    reply_to: int | None = None, payload: dict[str, Any] | None = None,
                    processed_at: datetime | None = None, delivery_status: str | None = None,
                    next_delivery_at: datetime | None = None, created_at: datetime | None = None) -> dict[str, Any]:
    """Every column of a new message row but its id (so the domain message needs no read back)."""
    return {"conversation_id": conversation_id, "sender": sender.value, "text": text, "kind": kind, "status": status,
            "delivery_key": delivery_key, "reply_to": reply_to, "author": None, "payload": payload or {},
            "attempts": 0, "created_at": created_at or utcnow(), "processed_at": processed_at, "lease_until": None,
            "delivery_status": delivery_status, "delivery_attempts": 0, "next_delivery_at": next_delivery_at,
            "delivery_error": None}


def _stored(message_id: int, values: dict[str, Any]) -> StoredMessage:
    """The domain view of a row just inserted with ``values``."""
    return StoredMessage(
        id=message_id, conversation_id=values["conversation_id"], sender=Sender(values["sender"]), text=values["text"],
        created_at=values["created_at"], kind=values["kind"], status=values["status"], author=values["author"],
        payload=dict(values["payload"]), delivery_status=values["delivery_status"],
        delivery_attempts=values["delivery_attempts"], delivery_error=values["delivery_error"],
    )


def _transcript(s: Any, conversation_id: str, after_id: int = 0, limit: int = 500) -> list[StoredMessage]:
    rows = s.execute(_SQL.transcript, {"cid": conversation_id, "after": after_id, "limit": limit}).all()
    return [_message(r) for r in rows]


def delivery_status_for(channel: str | None) -> str | None:
    """Messages to push to a platform start ``pending``; web chat reads its messages, nothing to push."""
    return None if channel in (None, Channel.WEB.value, Channel.API.value) else DeliveryStatus.PENDING.value


def _leased_to(row: MessageRow | None, owner: str) -> bool:
    return (row is not None and row.delivery_status == DeliveryStatus.SENDING.value
            and row.delivery_owner == owner)


def _conversation(row: Any, tier: str = "standard") -> Conversation:
    """From an ORM row or a Core row of the conversations table."""
    return Conversation(row.id, row.customer_id, Channel(row.channel), row.status, row.token_hash,
                        row.created_at, row.updated_at, row.external_ref, tier)


def message_of(row: MessageRow) -> StoredMessage:
    """The domain view of a message row."""
    return _message(row)


def _message(row: Any) -> StoredMessage:
    """From an ORM row or a Core row of the messages table."""
    return StoredMessage(
        id=row.id, conversation_id=row.conversation_id, sender=Sender(row.sender), text=row.text,
        created_at=row.created_at, kind=row.kind, status=row.status, author=row.author,
        payload=dict(row.payload or {}), delivery_status=row.delivery_status,
        delivery_attempts=row.delivery_attempts or 0, delivery_error=row.delivery_error,
    )
