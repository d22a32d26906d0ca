"""The trainers' storage: rejected and pruned versions, job steps, added examples, reviews and their undo
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.enums import Channel, DecisionKind, Urgency
from domain.errors import ConflictError, NotFoundError
from domain.models import (
    BotReply,
    Decision,
    InboundMessage,
    IntentPrediction,
    Triage,
    TurnRecord,
    UrgencyAssessment,
)
from domain.trainer import ReviewAction, VersionStatus
from storage.conversations import ConversationRepository
from storage.db import Database
from storage.trainer import TrainerStore

pytestmark = pytest.mark.integration


def unsure_message(db: Database, text: str) -> int:
    """A customer message the model was unsure about (it lands in the inbox)."""
    repo = ConversationRepository(db)
    cid = repo.create_conversation(Channel.WEB, "h").id
    message, _ = repo.record_inbound(InboundMessage(cid, text, Channel.WEB))
    prediction = IntentPrediction("greet", 0.3, (("greet", 0.3), ("goodbye", 0.25)), False, "v1")
    triage = Triage(prediction, UrgencyAssessment(Urgency.NORMAL, 0.1), "general")
    reply = BotReply(DecisionKind.ANSWER, "hello", ())
    repo.record_turn(TurnRecord(message.id, cid, triage, Decision(DecisionKind.ANSWER, None), (reply,), None))
    return message.id


def inbox_ids(store: TrainerStore) -> set[int]:
    return {c.message_id for c in store.inbox_candidates(0.5, 0.1)}


def test_reject_a_candidate_and_prune_files(db: Database) -> None:
    store = TrainerStore(db)
    store.register_version("v1", "linear", VersionStatus.CANDIDATE, 10, {}, "startup")
    store.activate("v1", "startup")
    store.register_version("v2", "linear", VersionStatus.CANDIDATE, 12, {"candidate": {"accuracy": 0.9}}, "tess")
    rejected = store.reject("v2", "tess")
    assert rejected.status == "rejected" and rejected.rejected_by == "tess" and rejected.rejected_at is not None
    assert store.version("v2").rejected_by == "tess"
    with pytest.raises(ConflictError, match="v1 is active, not a candidate"):
        store.reject("v1", "tess")
    with pytest.raises(ConflictError, match="rejected, not a candidate"):
        store.reject("v2", "tess")
    with pytest.raises(NotFoundError):
        store.reject("nope", "tess")

    assert store.mark_pruned(["v2"]) == 1 and store.mark_pruned(["v2"]) == 0  # once
    assert store.version("v2").pruned_at is not None and store.version("v1").pruned_at is None
    # Trained again (the same data): the file is back, the decision stays on record.
    again = store.register_version("v2", "linear", VersionStatus.CANDIDATE, 12, {"candidate": {"accuracy": 0.8}},
                                   "tess")
    assert again.status == "rejected" and again.pruned_at is None and again.rejected_by == "tess"
    assert again.metrics == {"candidate": {"accuracy": 0.8}}
    # A rejected candidate can still be activated later (the trainer changed their mind).
    assert store.activate("v2", "tom").status == "active"
    assert [(v.version, v.status) for v in store.versions()] == [("v2", "active"), ("v1", "retired")]


def test_job_steps(db: Database) -> None:
    store = TrainerStore(db)
    job = store.start_job("tess")
    assert job.step == "queued"
    store.update_job(job.id, status="running", step="encoding", progress=0.1, stage="encoding the examples")
    assert (store.job(job.id).step, store.job(job.id).progress) == ("encoding", 0.1)
    store.update_job(job.id, status="failed", step="failed", stage="failed", error="boom")
    assert store.job(job.id).step == "failed" and store.job(job.id).finished_at is not None
    assert store.claim_job("p1", datetime.now(UTC), timedelta(seconds=60)) is None


def test_undo_a_review_takes_back_what_it_added(db: Database) -> None:
    store = TrainerStore(db)
    relabelled = unsure_message(db, "my zorblax broke")
    ignored = unsure_message(db, "lorem ipsum")
    assert {relabelled, ignored} <= inbox_ids(store)
    store.add_example("my zorblax broke", "refund", "tess", relabelled)
    store.add_regression_case("my zorblax broke", "refund", "tess", relabelled)
    store.review(relabelled, ReviewAction.RELABEL, "refund", "tess")
    store.review(ignored, ReviewAction.IGNORE, None, "tom")
    assert not {relabelled, ignored} & inbox_ids(store)
    reviews = store.reviews()
    assert [(r.message_id, r.text, r.action, r.intent, r.reviewed_by) for r in reviews] == [
        (ignored, "lorem ipsum", "ignore", None, "tom"), (relabelled, "my zorblax broke", "relabel", "refund", "tess")]
    assert [(e.text, e.message_id) for e in store.examples()] == [("my zorblax broke", relabelled)]

    undone = store.undo_review(relabelled)
    assert (undone.action, undone.removed_example, undone.removed_regression_case) == ("relabel", True, True)
    assert relabelled in inbox_ids(store) and store.examples() == [] and store.regression_cases() == []
    assert store.undo_review(ignored).removed_example is False
    with pytest.raises(NotFoundError, match="no review to undo"):
        store.undo_review(ignored)
    assert store.reviews() == []


def test_a_later_decision_on_the_same_text_owns_the_example(db: Database) -> None:
    store = TrainerStore(db)
    first, second = unsure_message(db, "zorp"), unsure_message(db, "zorp")
    store.add_example("zorp", "refund", "tess", first)
    store.add_regression_case("zorp", "refund", "tess", first)
    store.review(first, ReviewAction.RELABEL, "refund", "tess")
    store.add_example("zorp", None, "tom", second)
    store.review(second, ReviewAction.MARK_OOS, None, "tom")
    # Undoing the first decision leaves the example the second one made, and takes the first one's case.
    undone = store.undo_review(first)
    assert (undone.removed_example, undone.removed_regression_case) == (False, True)
    assert [(e.text, e.intent, e.message_id) for e in store.examples()] == [("zorp", None, second)]
    example = store.examples()[0]
    store.remove_example(example.id)
    assert store.examples() == []
    with pytest.raises(NotFoundError):
        store.remove_example(example.id)
