"""The agent desk's storage on SQLite and PostgreSQL: races, guarded transitions, events, SLA, outbox."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from domain.enums import Channel, DecisionKind, HandoffReason, Urgency
from domain.errors import ConflictError, NotFoundError
from domain.models import (
    BotReply,
    Decision,
    HandoffContext,
    HandoffDraft,
    InboundMessage,
    TurnRecord,
)
from storage.conversations import ConversationRepository
from storage.db import Database
from storage.desk import DeskStore
from storage.events import EventLog
from storage.handoffs import HandoffRepository
from storage.staff import StaffRepository
from storage.tail import Position

pytestmark = pytest.mark.integration


def open_handoff(db: Database, team: str = "billing", urgency: Urgency = Urgency.NORMAL,
                 channel: Channel = Channel.WEB, due_in: timedelta = timedelta(minutes=15),
                 resolve_in: timedelta = timedelta(hours=1)) -> tuple[str, int]:
    repo = ConversationRepository(db)
    cid = repo.create_conversation(channel, "h", display_name="Kim").id
    msg, _ = repo.record_inbound(InboundMessage(cid, "help", channel))
    ctx = HandoffContext(channel.value, "customer_request", "", "help", urgency.value, 0.3, (), (), (), (), None)
    now = datetime.now(UTC)
    draft = HandoffDraft(HandoffReason.CUSTOMER_REQUEST, "", team, urgency, "refund_request", 0.8, "help", ctx,
                         first_response_due=now + due_in, resolution_due=now + resolve_in)
    record = TurnRecord(msg.id, cid, None, Decision(DecisionKind.HANDOFF, HandoffReason.CUSTOMER_REQUEST),
                        (BotReply(DecisionKind.HANDOFF, "passing you on"),), draft)
    _, handoff_id, _ = repo.record_turn(record)
    assert handoff_id is not None
    return cid, handoff_id


def test_fifty_simultaneous_claims_exactly_one_wins(db: Database) -> None:
    _, hid = open_handoff(db)
    desk = DeskStore(db)
    barrier = threading.Barrier(50)

    def attempt(i: int) -> str:
        barrier.wait()
        try:
            desk.claim(hid, f"agent-{i}")
            return f"won:agent-{i}"
        except ConflictError as e:
            return str(e)

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))
    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1
    winner = winners[0].removeprefix("won:")
    assert all(o == f"this handoff was already claimed by {winner}" for o in outcomes if not o.startswith("won:"))
    assert HandoffRepository(db).get(hid).claimed_by == winner
    claims = [e for e in EventLog(db).after(Position()) if e.kind == "handoff.claimed"]
    assert [(e.handoff_id, e.actor) for e in claims] == [(hid, winner)]
    assert desk.claim(hid, winner).claimed_by == winner  # a double click by the winner is fine


def test_reply_rules_and_first_response(db: Database) -> None:
    cid, hid = open_handoff(db, channel=Channel.TELEGRAM)
    desk = DeskStore(db)
    message = desk.reply(hid, "ann", "Ann", "Hello, I can help", delivery_status="pending")
    assert (message.sender.value, message.author, message.delivery_status) == ("agent", "Ann", "pending")
    handoff = HandoffRepository(db).get(hid)
    assert handoff.state == "claimed" and handoff.claimed_by == "ann" and handoff.first_response_at is not None
    with pytest.raises(ConflictError, match="claimed by ann"):
        desk.reply(hid, "bob", "Bob", "me too", None)
    assert desk.reply(hid, "sue", "Sue", "supervisor here", None, may_take_over=True).author == "Sue"
    first = HandoffRepository(db).get(hid).first_response_at
    desk.reply(hid, "ann", "Ann", "again", None)
    assert HandoffRepository(db).get(hid).first_response_at == first
    desk.resolve(hid, "ann", None, None)
    with pytest.raises(ConflictError, match="resolved; reopen it before replying"):
        desk.reply(hid, "ann", "Ann", "late", None)
    texts = [m.text for m in ConversationRepository(db).transcript(cid)]
    assert texts == ["help", "passing you on", "Hello, I can help", "supervisor here", "again"]
    with pytest.raises(NotFoundError):
        desk.reply(999_999, "ann", "Ann", "x", None)


def test_transfer_escalate_intent_notes(db: Database) -> None:
    _, hid = open_handoff(db)
    desk, handoffs = DeskStore(db), HandoffRepository(db)
    desk.claim(hid, "ann")
    moved = desk.transfer(hid, "ann", "technical", 2, "needs an engineer")
    assert (moved.team, moved.tier, moved.state, moved.claimed_by) == ("technical", 2, "open", None)
    notes = desk.notes(hid)
    assert notes[-1].text == "Moved from billing tier 1 to technical tier 2 by ann: needs an engineer"
    desk.add_note(hid, "bob", "called the customer")
    assert [n.text for n in desk.notes(hid)][-1] == "called the customer"
    desk.correct_intent(hid, "billing_charge_dispute", "bob")
    assert handoffs.get(hid).corrected_intent == "billing_charge_dispute"
    kinds = [e.kind for e in EventLog(db).after(Position()) if e.handoff_id == hid]
    assert kinds == ["handoff.created", "handoff.claimed", "handoff.transferred", "note.added",
                     "handoff.intent_corrected"]
    escalated = desk.transfer(hid, "bob", "technical", 3, "")
    assert escalated.tier == 3
    assert EventLog(db).after(Position())[-1].kind == "handoff.escalated"


def test_resolve_csat_and_reopen(db: Database) -> None:
    cid, hid = open_handoff(db)
    desk, repo = DeskStore(db), ConversationRepository(db)
    with pytest.raises(ConflictError, match="no resolved conversation to rate"):
        desk.record_csat(cid, 5)
    desk.claim(hid, "ann")
    handoff, prompt = desk.resolve(hid, "ann", "How would you rate us?", None)
    assert handoff.state == "resolved" and handoff.resolved_at is not None
    assert prompt is not None and prompt.kind == "csat_request"
    assert repo.get_conversation(cid).status == "bot"
    with pytest.raises(ConflictError, match="already resolved"):
        desk.resolve(hid, "ann", None, None)
    assert desk.record_csat(cid, 4, "quick and kind") == hid
    assert desk.csat_for(hid) == 4
    with pytest.raises(ConflictError, match="already rated"):
        desk.record_csat(cid, 5)
    due = datetime.now(UTC) + timedelta(minutes=5)
    reopened = desk.reopen(hid, "bob", due, due + timedelta(hours=1))
    assert (reopened.state, reopened.claimed_by, reopened.resolved_at) == ("open", None, None)
    assert reopened.first_response_due == due and reopened.first_response_at is None
    assert repo.get_conversation(cid).status == "human"
    with pytest.raises(ConflictError, match="only a resolved handoff"):
        desk.reopen(hid, "bob", due, due)


def test_sla_breaches_are_flagged_once(db: Database) -> None:
    _, late = open_handoff(db, due_in=timedelta(minutes=-1))
    _, fine = open_handoff(db, due_in=timedelta(minutes=30))
    desk = DeskStore(db)
    now = datetime.now(UTC)
    assert desk.flag_sla_breaches(now) == [(late, "first_response")]
    assert desk.flag_sla_breaches(now) == []
    later = now + timedelta(hours=3)
    flagged = sorted(desk.flag_sla_breaches(later))
    assert flagged == sorted([(fine, "first_response"), (late, "resolution"), (fine, "resolution")])
    handoff = HandoffRepository(db).get(late)
    assert handoff.first_response_breached and handoff.resolution_breached
    breaches = [e for e in EventLog(db).after(Position()) if e.kind == "sla.breached"]
    assert len(breaches) == 4


def test_queue_position_wait_history_and_presence(db: Database) -> None:
    desk = DeskStore(db)
    _, a = open_handoff(db, urgency=Urgency.NORMAL)
    _, b = open_handoff(db, urgency=Urgency.HIGH)
    _, c = open_handoff(db, urgency=Urgency.NORMAL)
    open_handoff(db, team="technical", urgency=Urgency.CRITICAL)
    assert [desk.queue_position("billing", 1, h) for h in (a, b, c)] == [2, 1, 3]
    assert desk.queue_position("billing", Urgency.NORMAL.rank) == 4  # a new normal one goes last
    assert desk.queue_position("billing", Urgency.CRITICAL.rank) == 1
    since = datetime.now(UTC) - timedelta(days=1)
    assert desk.median_first_response_minutes("billing", since) is None
    desk.reply(a, "ann", "Ann", "hi", None)
    median = desk.median_first_response_minutes("billing", since)
    assert median is not None and 0 <= median < 1
    staff = StaffRepository(db)
    staff.create_user("ann", "h", ["agent"], teams=["billing"])
    staff.create_user("tom", "h", ["agent"], teams=["technical"])
    staff.create_user("ed", "h", ["editor"])
    staff.create_user("sue", "h", ["supervisor"])
    now = datetime.now(UTC)
    for name in ("ann", "tom", "ed"):
        desk.touch(name, now)
    assert desk.agents_on_duty("billing", now - timedelta(minutes=2)) == 1
    desk.touch("sue", now)
    assert desk.agents_on_duty("billing", now - timedelta(minutes=2)) == 2
    assert desk.agents_on_duty("billing", now + timedelta(minutes=1)) == 0


def test_outbound_delivery_outbox(db: Database) -> None:
    cid, hid = open_handoff(db, channel=Channel.SLACK)
    repo, desk = ConversationRepository(db), DeskStore(db)
    now, lease = datetime.now(UTC), timedelta(seconds=60)
    due = repo.claim_deliveries("p1", now + timedelta(seconds=1), lease)
    assert [(c.message.text, c.conversation.channel) for c in due] == [("passing you on", Channel.SLACK)]
    notice = due[0].message
    reply = desk.reply(hid, "ann", "Ann", "on it", delivery_status="pending")
    assert repo.claim_deliveries("p2", now + timedelta(seconds=1), lease) == []  # waits for the notice (in order)
    assert repo.mark_delivered(notice.id, "p1", "1700000000.0001")
    assert repo.get_message(notice.id).payload["platform_id"] == "1700000000.0001"
    (claimed,) = repo.claim_deliveries("p2", now + timedelta(seconds=1), lease)
    retry_at = now + timedelta(minutes=5)
    assert repo.mark_delivery_failed(reply.id, "p1", "not the holder", retry_at) == 0
    assert repo.mark_delivery_failed(claimed.message.id, "p2", "channel_not_found", retry_at) == 1
    failed = repo.get_message(reply.id)
    assert (failed.delivery_status, failed.delivery_error, failed.delivery_attempts) == (
        "failed", "channel_not_found", 1)
    assert repo.claim_deliveries("p1", now + timedelta(seconds=1), lease) == []
    repo.retry_delivery(reply.id, now)
    (again,) = repo.claim_deliveries("p1", now + timedelta(seconds=1), lease)
    assert again.message.id == reply.id and not again.interrupted
    assert repo.mark_delivered(reply.id, "p1")
    assert repo.get_message(reply.id).delivery_status == "delivered"
    with pytest.raises(NotFoundError):
        repo.retry_delivery(reply.id, now)
    kinds = [e.kind for e in EventLog(db).after(Position(), conversation_id=cid)]
    assert "message.delivery_failed" in kinds and kinds.count("message.delivered") == 2


def test_concurrent_delivery_claims_never_share_a_message(db: Database) -> None:
    repo = ConversationRepository(db)
    expected = set()
    for _ in range(12):
        cid, _ = open_handoff(db, channel=Channel.TELEGRAM)
        expected |= {m.id for m in repo.transcript(cid) if m.delivery_status}
    later = datetime.now(UTC) + timedelta(seconds=1)
    barrier = threading.Barrier(4)
    claimed: list[int] = []

    def claim(owner: str) -> None:
        barrier.wait()
        for _ in range(6):
            claimed.extend(c.message.id for c in repo.claim_deliveries(owner, later, timedelta(minutes=2), limit=2))

    threads = [threading.Thread(target=claim, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(expected)
