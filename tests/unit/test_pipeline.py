"""The turn pipeline with fakes of our own interfaces on a real temporary SQLite file."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from sqlalchemy import update

from bot.handover import HandoffPlanner
from bot.pipeline import TurnPipeline
from bot.recovery import recover_unprocessed
from bot.replies import ERROR_TEXT, ReplyComposer
from domain.enums import Channel, ConversationStatus, DecisionKind, MessageStatus, Urgency
from domain.models import (
    CustomerIdentity,
    InboundMessage,
    IntentPrediction,
    SearchHit,
    TurnRecord,
)
from handoff.routing import parse_teams
from handoff.sla import DEFAULT_TARGETS
from knowledge_index.encoder import HashEncoder
from nlu.urgency import RuleUrgencyScorer
from settings import PolicySettings
from storage.conversations import ConversationRepository
from storage.customers import CustomerDirectory
from storage.db import Database
from storage.desk import DeskStore
from storage.handoffs import HandoffRepository
from storage.tables import ConversationRow

pytestmark = pytest.mark.unit

TEAMS = parse_teams("""
teams:
  billing: {name: Billing}
  technical: {name: Technical support}
  trust_safety: {name: Trust & Safety}
default_team: technical
intents:
  refund_request: {team: billing, urgency: normal}
  talk_to_human: {team: technical, urgency: normal}
  account_compromised: {team: trust_safety, urgency: high}
  greet: {team: technical, urgency: low}
""")
POLICY = PolicySettings(answer_threshold=0.6, suggest_threshold=0.4, intent_confidence_threshold=0.5)


class KeywordClassifier:
    """A fake IntentClassifier: the first keyword found decides the intent."""

    version = "fake-1"
    intents: tuple[str, ...] = ("refund_request", "talk_to_human", "account_compromised", "greet")
    keywords: ClassVar[dict[str, str]] = {
        "refund": "refund_request", "person": "talk_to_human", "hacked": "account_compromised", "hello": "greet"}

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        for word, intent in self.keywords.items():
            if word in text.lower():
                return IntentPrediction(intent, 0.9, ((intent, 0.9), ("greet", 0.1)), False, self.version)
        return IntentPrediction(None, 0.2, (("greet", 0.2), ("refund_request", 0.1)), True, self.version)


@dataclass
class ScriptedRetriever:
    """A fake Retriever: returns the hits scripted for a keyword; can be told to fail."""

    fail: bool = False
    failure_message: str = "index exploded"
    calls: int = 0
    script: dict[str, tuple[SearchHit, ...]] = field(default_factory=lambda: {
        "refund": (SearchHit("billing-refunds", "Refunds", 11, "Asking for a refund",
                             "You can ask for a refund within 14 days.", 0.82),
                   SearchHit("billing-cancel", "Cancel Premium", 12, "Cancel", "Cancel anytime.", 0.41)),
        "download": (SearchHit("playback-offline", "Offline downloads", 21, "Downloads", "Download...", 0.5),
                     SearchHit("devices-limit", "Download devices", 22, "Limit", "Five devices.", 0.45)),
    })

    def search(self, query: np.ndarray, k: int = 8, text: str | None = None) -> list[SearchHit]:
        self.calls += 1
        if self.fail:
            raise RuntimeError(self.failure_message)
        return []

    def for_text(self, text: str) -> list[SearchHit]:
        for word, hits in self.script.items():
            if word in text.lower():
                return list(hits)
        return []


class TextAwareRetriever(ScriptedRetriever):
    """Remembers the last encoded text so the scripted hits can depend on it."""

    def __init__(self, encoder: RecordingEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def search(self, query: np.ndarray, k: int = 8, text: str | None = None) -> list[SearchHit]:
        super().search(query, k)
        return self.for_text(self.encoder.last)[:k]


class RecordingEncoder(HashEncoder):
    """The hash encoder, remembering the last text it saw."""

    last = ""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.last = texts[-1] if texts else ""
        return super().encode(texts)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'pipeline.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def store(db: Database) -> ConversationRepository:
    return ConversationRepository(db)


def make_pipeline(store: ConversationRepository, retriever: ScriptedRetriever | None = None) -> TurnPipeline:
    encoder = RecordingEncoder(64)
    responses = {"utter_greet": ("Hello! How can I help?",)}
    composer = ReplyComposer(responses, "/help/articles/{article_id}",
                             {k: t.name for k, t in TEAMS.teams.items()})
    planner = HandoffPlanner(store, TEAMS, DEFAULT_TARGETS, composer)
    return TurnPipeline(store=store, encoder=encoder, classifier=KeywordClassifier(),
                        urgency=RuleUrgencyScorer(TEAMS.urgency_priors()),
                        retriever=retriever or TextAwareRetriever(encoder), router=TEAMS, composer=composer,
                        policy=POLICY, planner=planner, csat=DeskStore(store.db))


def new_conversation(store: ConversationRepository, name: str = "Dana") -> str:
    return store.create_conversation(Channel.WEB, "hash", display_name=name).id


def say(pipeline: TurnPipeline, conversation_id: str, text: str, key: str | None = None):
    return pipeline.handle(InboundMessage(conversation_id, text, Channel.WEB, key))


def test_answer_cites_the_article_and_stores_the_prediction(store: ConversationRepository, db: Database) -> None:
    pipeline = make_pipeline(store)
    cid = new_conversation(store)
    result = say(pipeline, cid, "How do I get a refund?")
    assert result.decision == DecisionKind.ANSWER
    (reply,) = result.replies
    assert reply.text == "You can ask for a refund within 14 days."
    citation = reply.payload["citations"][0]
    assert citation["title"] == "Refunds" and citation["url"] == "/help/articles/billing-refunds"
    assert citation["passage"] == reply.text and citation["heading"] == "Asking for a refund"
    assert store.get_message(result.message_id).status == MessageStatus.PROCESSED
    assert store.get_conversation(cid).status == ConversationStatus.BOT
    (turn,) = store.intent_history(cid)
    assert (turn.intent, turn.confidence) == ("refund_request", 0.9)


def test_suggest_clarify_respond(store: ConversationRepository) -> None:
    pipeline = make_pipeline(store)
    cid = new_conversation(store)
    assert say(pipeline, cid, "hello").replies[0].text == "Hello! How can I help?"
    suggested = say(pipeline, cid, "my downloads are gone")
    assert suggested.decision == DecisionKind.SUGGEST
    assert [c["article_id"] for c in suggested.replies[0].payload["citations"]] == ["playback-offline",
                                                                                     "devices-limit"]
    assert say(pipeline, cid, "what's the weather").decision == DecisionKind.CLARIFY


def test_two_misunderstood_turns_hand_off(store: ConversationRepository) -> None:
    pipeline = make_pipeline(store)
    cid = new_conversation(store)
    assert say(pipeline, cid, "blorp").decision == DecisionKind.CLARIFY
    second = say(pipeline, cid, "zzzt")
    assert second.decision == DecisionKind.HANDOFF
    handoff = HandoffRepository(store.db).get(second.handoff_id or -1)
    assert handoff.reason == "out_of_scope" and "2 times in a row" in handoff.reason_detail


def test_explicit_request_hands_off_with_the_full_context(store: ConversationRepository) -> None:
    pipeline = make_pipeline(store)
    earlier = store.create_conversation(Channel.TELEGRAM, "h", identity=CustomerIdentity("telegram", "4242"))
    cid = store.create_conversation(Channel.TELEGRAM, "h", identity=CustomerIdentity("telegram", "4242")).id
    first = say(pipeline, cid, "I want a refund for last month")
    store.set_feedback(cid, first.replies[0].id, helpful=False)
    result = say(pipeline, cid, "that did not help, let me talk to a person")
    assert result.decision == DecisionKind.HANDOFF
    assert result.replies[0].text.startswith("Of course. I'm passing you to our Technical support team")
    assert store.get_conversation(cid).status == ConversationStatus.HUMAN

    handoff = HandoffRepository(store.db).get(result.handoff_id or -1)
    assert (handoff.reason, handoff.team, handoff.intent) == ("customer_request", "technical", "talk_to_human")
    ctx = handoff.context
    assert [line["sender"] for line in ctx["transcript"]] == ["customer", "bot", "customer"]
    assert ctx["transcript"][0]["text"] == "I want a refund for last month"
    assert [t["intent"] for t in ctx["intents"]] == ["refund_request", "talk_to_human"]
    assert ctx["articles_offered"] == [{
        "article_id": "billing-refunds", "title": "Refunds", "kind": "answer", "score": 0.82,
        "message_id": first.replies[0].id, "reaction": "unhelpful"}]
    assert ctx["customer"]["identities"] == [{"channel": "telegram", "external_id": "4242"}]
    assert [c["conversation_id"] for c in ctx["customer"]["earlier_conversations"]] == [earlier.id]
    assert ctx["channel"] == "telegram" and ctx["reason"] == "customer_request"
    assert handoff.summary == "I want a refund for last month … that did not help, let me talk to a person"
    assert ctx["urgency"] == "normal"


def test_urgent_message_hands_off_with_reasons(store: ConversationRepository) -> None:
    result = say(make_pipeline(store), new_conversation(store), "I think I got hacked, someone changed my email")
    assert result.decision == DecisionKind.HANDOFF
    handoff = HandoffRepository(store.db).get(result.handoff_id or -1)
    assert handoff.urgency == Urgency.HIGH and handoff.team == "trust_safety"
    assert any("taken over" in r for r in handoff.context["urgency_reasons"])


def test_the_customers_tier_and_recent_contacts_reach_the_urgency(store: ConversationRepository) -> None:
    pipeline = make_pipeline(store)
    regular = CustomerIdentity("telegram", "100")
    for age in (timedelta(hours=1), timedelta(days=4), timedelta(days=5)):  # the window is 72 hours
        old = store.create_conversation(Channel.TELEGRAM, "h", identity=regular)
        with store.db.session() as s:
            s.execute(update(ConversationRow).where(ConversationRow.id == old.id)
                      .values(created_at=datetime.now(UTC) - age))
    current = store.create_conversation(Channel.TELEGRAM, "h", identity=regular)
    CustomerDirectory(store.db).update(current.customer_id, tier="premium")
    calm = say(pipeline, current.id, "I want a refund")
    assert calm.decision == DecisionKind.ANSWER  # tier alone: normal; one other conversation in the window

    insistent = CustomerIdentity("telegram", "200")
    for _ in range(2):
        store.create_conversation(Channel.TELEGRAM, "h", identity=insistent)
    conversation = store.create_conversation(Channel.TELEGRAM, "h", identity=insistent)
    CustomerDirectory(store.db).update(conversation.customer_id, tier="premium")
    result = say(pipeline, conversation.id, "I want a refund")
    assert result.decision == DecisionKind.HANDOFF  # normal prior + tier + recontact: high
    handoff = HandoffRepository(store.db).get(result.handoff_id or -1)
    assert handoff.urgency == Urgency.HIGH
    assert set(handoff.context["urgency_reasons"]) == {"customer tier is premium",
                                                       "the customer contacted us 2 other times recently"}


def test_messages_to_a_human_owned_conversation_get_no_bot_reply(store: ConversationRepository) -> None:
    pipeline = make_pipeline(store)
    cid = new_conversation(store)
    say(pipeline, cid, "person please")
    follow_up = say(pipeline, cid, "hello? also I want a refund")
    assert follow_up.decision == DecisionKind.WAIT_FOR_AGENT and follow_up.replies == ()
    assert store.transcript(cid)[-1].text == "hello? also I want a refund"
    assert len(HandoffRepository(store.db).for_conversation(cid)) == 1


def test_pipeline_failure_hands_off_without_internals(store: ConversationRepository,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = "my card number is 4111 1111 1111 1111, refund it"
    # Exception messages may quote customer text: they must not reach logs above DEBUG.
    pipeline = make_pipeline(store, ScriptedRetriever(fail=True, failure_message=f"bad query {secret_text}"))
    cid = new_conversation(store)
    result = say(pipeline, cid, secret_text)
    assert result.decision == DecisionKind.HANDOFF
    assert result.replies[0].text == ERROR_TEXT
    assert "bad query" not in result.replies[0].text and "Traceback" not in result.replies[0].text
    handoff = HandoffRepository(store.db).get(result.handoff_id or -1)
    assert handoff.reason == "pipeline_error" and "RuntimeError" in handoff.reason_detail
    assert handoff.context["transcript"][0]["text"] == secret_text
    assert store.get_conversation(cid).status == ConversationStatus.HUMAN
    loud = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert any("turn failed" in m for m in loud)
    assert not any("4111" in m for m in loud)


def test_retried_delivery_is_processed_once(store: ConversationRepository) -> None:
    retriever = TextAwareRetriever(RecordingEncoder(64))
    pipeline = make_pipeline(store, retriever)
    pipeline.encoder = retriever.encoder
    cid = new_conversation(store)
    first = say(pipeline, cid, "refund please", key="web:1")
    again = say(pipeline, cid, "refund please", key="web:1")
    assert again.duplicate and not first.duplicate
    assert again.message_id == first.message_id
    assert [r.id for r in again.replies] == [r.id for r in first.replies]
    assert again.decision == first.decision == DecisionKind.ANSWER
    assert retriever.calls == 1
    assert len(store.transcript(cid)) == 2


class CrashOnce:
    """Wraps the real store; the first record_turn raises as if the process died mid-turn."""

    def __init__(self, inner: ConversationRepository) -> None:
        self.inner = inner
        self.crashed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def record_turn(self, record: TurnRecord) -> object:
        if not self.crashed:
            self.crashed = True
            raise ConnectionError("database went away")
        return self.inner.record_turn(record)


def test_a_crash_mid_turn_leaves_the_message_recoverable(store: ConversationRepository) -> None:
    crashing = make_pipeline(store)
    crashing.store = CrashOnce(store)  # type: ignore[assignment]
    cid = new_conversation(store)
    with pytest.raises(ConnectionError):
        say(crashing, cid, "I need a refund")
    (inbound,) = store.transcript(cid)
    assert inbound.status == MessageStatus.RECEIVED

    # Its lease has not expired: the turn may still be running in another process.
    assert recover_unprocessed(make_pipeline(store), store).processed == 0
    later = datetime.now(UTC) + store.inbound_lease + timedelta(seconds=1)
    report = recover_unprocessed(make_pipeline(store), store, now=later)
    assert (report.processed, report.failed) == (1, 0)
    messages = store.transcript(cid)
    assert [m.sender.value for m in messages] == ["customer", "bot"]
    assert messages[0].status == MessageStatus.PROCESSED and messages[1].kind == "answer"
    assert recover_unprocessed(make_pipeline(store), store, now=later + timedelta(hours=1)).processed == 0


def test_recovery_leases_each_message_to_one_process(store: ConversationRepository) -> None:
    crashing = make_pipeline(store)
    crashing.store = CrashOnce(store)  # type: ignore[assignment]
    cid = new_conversation(store)
    with pytest.raises(ConnectionError):
        say(crashing, cid, "I need a refund")
    later = datetime.now(UTC) + store.inbound_lease + timedelta(seconds=1)
    (first,) = store.claim_unprocessed(later)
    assert first.attempts == 1 and first.inbound.text == "I need a refund"
    # Leased to whoever claimed it: another process asking now gets nothing, until that lease expires too.
    assert store.claim_unprocessed(later) == []
    (again,) = store.claim_unprocessed(later + store.inbound_lease + timedelta(seconds=1))
    assert again.message_id == first.message_id and again.attempts == 2


def test_retry_after_crash_with_same_delivery_key_processes_it(store: ConversationRepository) -> None:
    crashing = make_pipeline(store)
    crashing.store = CrashOnce(store)  # type: ignore[assignment]
    cid = new_conversation(store)
    with pytest.raises(ConnectionError):
        say(crashing, cid, "refund please", key="web:x")
    retried = say(make_pipeline(store), cid, "refund please", key="web:x")
    assert retried.duplicate and retried.decision == DecisionKind.ANSWER
    assert len(store.transcript(cid)) == 2
