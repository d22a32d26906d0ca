"""One storage suite, run against SQLite and PostgreSQL (the `db` fixture is parametrized)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from domain.enums import Channel, ConversationStatus, DecisionKind, HandoffReason, HandoffState, Topic, Urgency
from domain.errors import ConflictError, NotFoundError
from domain.models import (
    Article,
    BotReply,
    Citation,
    CustomerIdentity,
    Decision,
    HandoffContext,
    HandoffDraft,
    InboundMessage,
    IntentPrediction,
    Triage,
    TurnRecord,
    UrgencyAssessment,
)
from knowledge_index.chunking import ChunkDraft
from knowledge_index.repository import SavedArticle
from storage.articles import SqlArticleRepository
from storage.changes import ChangeLog
from storage.conversations import ConversationRepository
from storage.customers import CustomerDirectory
from storage.db import Database
from storage.handoffs import HandoffRepository
from storage.staff import StaffRepository
from storage.tail import Position
from tests.storage.vectors import vectors_for

pytestmark = pytest.mark.integration


def _triage(intent: str = "refund_request") -> Triage:
    return Triage(IntentPrediction(intent, 0.8, ((intent, 0.8), ("greet", 0.2)), False, "v7"),
                  UrgencyAssessment(Urgency.NORMAL, 0.25), "billing")


def _handoff(urgency: Urgency = Urgency.NORMAL, team: str = "billing") -> HandoffDraft:
    ctx = HandoffContext("web", "customer_request", "asked", "wants a refund", urgency.value, 0.5, ("r",), (), (),
                         (), None)
    return HandoffDraft(HandoffReason.CUSTOMER_REQUEST, "asked", team, urgency, "refund_request", 0.8,
                        "wants a refund", ctx)


def _turn(message_id: int, cid: str, handoff: HandoffDraft | None = None) -> TurnRecord:
    kind = DecisionKind.HANDOFF if handoff else DecisionKind.ANSWER
    citation = Citation("a", "A", "/help/articles/a", "passage", "h", 0.9)
    reply = BotReply(kind, "reply text", () if handoff else (citation,))
    return TurnRecord(message_id, cid, _triage(), Decision(kind, HandoffReason.CUSTOMER_REQUEST if handoff else None),
                      (reply,), handoff)


def test_conversations_and_customers(db: Database) -> None:
    repo = ConversationRepository(db)
    conv = repo.create_conversation(Channel.WEB, "h1", display_name="Ana", email="ana@example.com")
    got = repo.get_conversation(conv.id)
    assert (got.channel, got.status, got.token_hash, got.customer_tier) == (Channel.WEB, "bot", "h1", "standard")
    assert got.created_at.tzinfo is not None
    with pytest.raises(NotFoundError):
        repo.get_conversation("missing")
    ident = CustomerIdentity("telegram", "77")
    a = repo.create_conversation(Channel.TELEGRAM, "h2", identity=ident)
    b = repo.create_conversation(Channel.TELEGRAM, "h3", identity=ident)
    assert a.customer_id == b.customer_id != conv.customer_id
    profile = repo.customer_profile(b.id)
    assert profile.identities == (ident,)
    assert [c.conversation_id for c in profile.earlier_conversations] == [a.id]
    assert repo.recent_conversations(b.id, datetime.now(UTC) - timedelta(hours=1)) == 1
    assert repo.recent_conversations(conv.id, datetime.now(UTC) - timedelta(hours=1)) == 0
    repo.set_status(a.id, ConversationStatus.CLOSED)
    assert repo.get_conversation(a.id).status == "closed"


def test_inbound_is_committed_and_deduplicated(db: Database) -> None:
    repo = ConversationRepository(db)
    cid = repo.create_conversation(Channel.WEB, "h").id
    first, dup = repo.record_inbound(InboundMessage(cid, "hello", Channel.WEB, "slack:Ev1"))
    again, dup2 = repo.record_inbound(InboundMessage(cid, "hello", Channel.WEB, "slack:Ev1"))
    assert (dup, dup2) == (False, True) and again.id == first.id and again.status == "received"
    plain1, _ = repo.record_inbound(InboundMessage(cid, "same text", Channel.WEB))
    plain2, _ = repo.record_inbound(InboundMessage(cid, "same text", Channel.WEB))
    assert plain1.id != plain2.id  # no key: two real messages
    with pytest.raises(NotFoundError):
        repo.record_inbound(InboundMessage("nope", "x", Channel.WEB))
    assert [m.text for m in repo.transcript(cid)] == ["hello", "same text", "same text"]
    assert [m.text for m in repo.transcript(cid, after_id=first.id)] == ["same text", "same text"]


def test_record_turn_is_atomic_and_idempotent(db: Database) -> None:
    repo = ConversationRepository(db)
    cid = repo.create_conversation(Channel.WEB, "h").id
    msg, _ = repo.record_inbound(InboundMessage(cid, "refund?", Channel.WEB))
    replies, handoff_id, applied = repo.record_turn(_turn(msg.id, cid))
    assert applied and handoff_id is None
    assert [(r.text, r.kind) for r in replies] == [("reply text", "answer")]
    assert replies[0].payload["citations"][0]["url"] == "/help/articles/a"
    assert repo.get_message(msg.id).status == "processed"
    again, _, applied_again = repo.record_turn(_turn(msg.id, cid, _handoff()))
    assert not applied_again and [r.id for r in again] == [r.id for r in replies]
    assert HandoffRepository(db).for_conversation(cid) == []
    assert len(repo.intent_history(cid)) == 1


def test_turn_context_and_written_messages_match_what_is_read_back(db: Database) -> None:
    repo = ConversationRepository(db)
    ident = CustomerIdentity("telegram", "99")
    repo.create_conversation(Channel.TELEGRAM, "h", identity=ident)
    conv = repo.create_conversation(Channel.TELEGRAM, "h", identity=ident)
    CustomerDirectory(db).update(conv.customer_id, tier="premium")
    inbound, _ = repo.record_inbound(InboundMessage(conv.id, "refund?", Channel.TELEGRAM, "telegram:1"))
    context = repo.turn_context(conv.id, datetime.now(UTC) - timedelta(hours=1))
    assert context.conversation == repo.get_conversation(conv.id)
    assert context.conversation.customer_tier == "premium" and context.recent_contacts == 1
    assert context.transcript == repo.transcript(conv.id) == [inbound]
    assert repo.turn_context(conv.id, datetime.now(UTC) + timedelta(hours=1)).recent_contacts == 0
    replies, _, _ = repo.record_turn(_turn(inbound.id, conv.id, _handoff()))
    assert replies[0].delivery_status == "pending"  # Telegram replies are pushed to the platform
    assert repo.transcript(conv.id) == [replace(inbound, status="processed"), *replies]
    assert repo.get_conversation(conv.id).status == "human"
    with pytest.raises(NotFoundError):
        repo.turn_context("missing", datetime.now(UTC))


def test_concurrent_record_turn_applies_exactly_once(db: Database) -> None:
    repo = ConversationRepository(db)
    cid = repo.create_conversation(Channel.WEB, "h").id
    msg, _ = repo.record_inbound(InboundMessage(cid, "refund?", Channel.WEB))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: repo.record_turn(_turn(msg.id, cid, _handoff())), range(8)))
    assert sum(1 for _, _, applied in results if applied) == 1
    assert len(HandoffRepository(db).for_conversation(cid)) == 1
    assert len(repo.replies_to(msg.id)) == 1


def test_handoff_turn_sets_status_and_queue_order(db: Database) -> None:
    repo, handoffs = ConversationRepository(db), HandoffRepository(db)
    ids: dict[str, int] = {}
    for name, urgency, team in [("n1", Urgency.NORMAL, "billing"), ("c", Urgency.CRITICAL, "trust_safety"),
                                ("n2", Urgency.NORMAL, "technical"), ("h", Urgency.HIGH, "billing")]:
        cid = repo.create_conversation(Channel.WEB, "h").id
        msg, _ = repo.record_inbound(InboundMessage(cid, name, Channel.WEB))
        _, hid, _ = repo.record_turn(_turn(msg.id, cid, _handoff(urgency, team)))
        assert repo.get_conversation(cid).status == "human"
        assert hid is not None and repo.handoff_for_message(msg.id) == hid
        ids[name] = hid
        time.sleep(0.01)
    queue = handoffs.queue()
    assert [h.id for h in queue] == [ids["c"], ids["h"], ids["n1"], ids["n2"]]
    assert [h.id for h in handoffs.queue(team="billing")] == [ids["h"], ids["n1"]]
    assert handoffs.queue(states=(HandoffState.RESOLVED,)) == []
    one = handoffs.get(ids["c"])
    assert one.urgency == Urgency.CRITICAL and one.context["summary"] == "wants a refund"
    assert one.state == "open" and one.created_at.tzinfo is not None
    with pytest.raises(NotFoundError):
        handoffs.get(999_999)


def test_unprocessed_messages_are_leased_one_claimant_at_a_time(db: Database) -> None:
    repo = ConversationRepository(db, inbound_lease=timedelta(seconds=10))
    cid = repo.create_conversation(Channel.SLACK, "h").id
    stuck, _ = repo.record_inbound(InboundMessage(cid, "stuck", Channel.SLACK, "slack:E9"))
    done, _ = repo.record_inbound(InboundMessage(cid, "done", Channel.SLACK))
    repo.record_turn(_turn(done.id, cid))
    assert repo.claim_unprocessed(datetime.now(UTC)) == []  # still leased to the process that stored it
    assert repo.unprocessed_count() == 1
    later = datetime.now(UTC) + timedelta(seconds=11)
    pending = repo.claim_unprocessed(later)
    assert [(p.message_id, p.inbound.text, p.inbound.channel, p.inbound.external_id, p.attempts) for p in pending] \
        == [(stuck.id, "stuck", Channel.SLACK, "slack:E9", 1)]
    assert repo.claim_unprocessed(later) == []
    assert [p.attempts for p in repo.claim_unprocessed(later + timedelta(seconds=11))] == [2]


def test_concurrent_recovery_claims_split_the_messages(db: Database) -> None:
    repo = ConversationRepository(db, inbound_lease=timedelta(seconds=1))
    cid = repo.create_conversation(Channel.WEB, "h").id
    ids = {repo.record_inbound(InboundMessage(cid, f"m{i}", Channel.WEB))[0].id for i in range(40)}
    later = datetime.now(UTC) + timedelta(seconds=5)
    barrier = threading.Barrier(4)
    claimed: list[int] = []

    def claim() -> None:
        barrier.wait()
        for _ in range(10):
            claimed.extend(p.message_id for p in repo.claim_unprocessed(later, limit=3))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # every message once, none twice


def test_feedback_only_on_bot_messages_of_that_conversation(db: Database) -> None:
    repo = ConversationRepository(db)
    cid = repo.create_conversation(Channel.WEB, "h").id
    other = repo.create_conversation(Channel.WEB, "h").id
    msg, _ = repo.record_inbound(InboundMessage(cid, "q", Channel.WEB))
    (reply,), _, _ = repo.record_turn(_turn(msg.id, cid))
    assert repo.set_feedback(cid, reply.id, helpful=False).payload["feedback"] == "unhelpful"
    with pytest.raises(NotFoundError):
        repo.set_feedback(other, reply.id, helpful=True)
    with pytest.raises(NotFoundError):
        repo.set_feedback(cid, msg.id, helpful=True)


def _save(repo: SqlArticleRepository, article: Article, drafts: list[ChunkDraft], digest: str) -> SavedArticle:
    return repo.save_article(article, drafts, digest, vectors_for(drafts))


def test_articles_chunk_ids_and_vectors(db: Database) -> None:
    repo = SqlArticleRepository(db)
    article = Article("a-1", "Title", "Body", ("x", "y"), "en", "billing", "kb/a.md")
    drafts = [ChunkDraft(0, "Title", "one"), ChunkDraft(1, "H", "two")]
    saved = _save(repo, article, drafts, "hash1")
    assert [c.ordinal for c in saved.chunks] == [0, 1] and saved.replaced_chunk_ids == ()
    assert repo.get_article("a-1") == article
    assert repo.content_hash("a-1") == "hash1"
    (stored,) = repo.indexed_articles()
    expected = vectors_for(drafts)
    assert stored.vectors is not None and stored.vectors.encoder == "test-4"
    assert np.array_equal(stored.vectors.chunks, expected.chunks) and np.array_equal(stored.vectors.title,
                                                                                     expected.title)
    replaced = _save(repo, article, [ChunkDraft(0, "Title", "new")], "hash2")
    assert set(replaced.replaced_chunk_ids) == {c.id for c in saved.chunks}
    assert min(c.id for c in replaced.chunks) > max(c.id for c in saved.chunks)
    assert [[c.text for c in a.chunks] for a in repo.indexed_articles()] == [["new"]]
    assert repo.indexed_articles(["missing"]) == []
    assert [s.id for s in repo.list_articles()] == ["a-1"] and repo.count_articles() == 1
    assert repo.articles_without_vectors("test-4") == [] and repo.articles_without_vectors("other") == ["a-1"]
    repo.save_vectors("a-1", vectors_for([ChunkDraft(0, "Title", "new")], dim=4, seed=7))
    assert repo.articles_without_vectors("test-4") == []
    assert repo.delete_article("a-1") == tuple(c.id for c in replaced.chunks)
    assert repo.delete_article("a-1") is None and repo.get_article("a-1") is None
    again = _save(repo, article, [ChunkDraft(0, "Title", "again")], "hash3")
    assert again.chunks[0].id > replaced.chunks[0].id
    # Every write told the other processes which article changed.
    changes = ChangeLog(db).after(Position())
    assert [(c.topic, c.key) for c in changes] == [(Topic.ARTICLES, "a-1")] * 5


def test_staff_users_and_tokens(db: Database) -> None:
    repo = StaffRepository(db)
    user = repo.create_user("alice", "hash", ["agent", "agent", "editor"], "Alice")
    assert user.roles == frozenset({"agent", "editor"})
    with pytest.raises(ConflictError):
        repo.create_user("alice", "hash", ["agent"])
    now = datetime.now(UTC)
    repo.add_token(user.id, "t-live", now + timedelta(hours=1))
    repo.add_token(user.id, "t-old", now - timedelta(seconds=1))
    assert repo.user_for_token("t-live", now) == user
    assert repo.user_for_token("t-old", now) is None
    assert repo.user_for_token("nope", now) is None
    found = repo.credentials("alice")
    assert found is not None and found[1] == "hash"
    repo.set_password("alice", "hash2")
    assert repo.user_for_token("t-live", now) is None  # a new password ends every session
    assert repo.count_users() == 1 and [u.username for u in repo.list_users()] == ["alice"]


def test_open_conversation_for_identity(db: Database) -> None:
    repo = ConversationRepository(db)
    ident = CustomerIdentity("slack", "T1:U1")
    assert repo.open_conversation_for(Channel.SLACK, ident) is None
    first = repo.create_conversation(Channel.SLACK, "h1", identity=ident, external_ref="D1")
    other = repo.create_conversation(Channel.SLACK, "h2", identity=CustomerIdentity("slack", "T1:U2"))
    found = repo.open_conversation_for(Channel.SLACK, ident)
    assert found is not None and (found.id, found.external_ref) == (first.id, "D1")
    assert repo.open_conversation_for(Channel.TELEGRAM, ident) is None  # the channel must match too
    repo.set_status(first.id, ConversationStatus.HUMAN)  # with an agent: still open
    assert getattr(repo.open_conversation_for(Channel.SLACK, ident), "id", None) == first.id
    repo.set_status(first.id, ConversationStatus.CLOSED)
    assert repo.open_conversation_for(Channel.SLACK, ident) is None
    time.sleep(0.01)  # distinct created_at, so "newest" is well defined
    second = repo.create_conversation(Channel.SLACK, "h3", identity=ident, external_ref="D1")
    assert second.customer_id == first.customer_id != other.customer_id
    repo.set_status(first.id, ConversationStatus.BOT)  # two open ones: the newest wins
    assert getattr(repo.open_conversation_for(Channel.SLACK, ident), "id", None) == second.id
