"""Hybrid retrieval with the real all-MiniLM-L6-v2 on the demo help center, and what the policy does with it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from bot.policy import DecisionInput, decide
from domain.enums import ConversationStatus, DecisionKind, Urgency
from domain.models import Decision, IntentPrediction, UrgencyAssessment
from knowledge_index.encoder import Encoder
from knowledge_index.importer import import_folder
from knowledge_index.knowledge_base import KnowledgeBase
from settings import DEMO_DIR, KnowledgeSettings, PolicySettings
from storage.articles import SqlArticleRepository
from storage.db import Database
from tests.conftest import make_settings
from wiring import retrieval_weights

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SPLIT_SEED = 20261122  # bench/eval_kb.py --seed: the retrieval weights were chosen on the other half


@pytest.fixture(scope="module")
def kb(minilm: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    folder = tmp_path_factory.mktemp("hybrid-kb")
    db = Database(f"sqlite:///{folder / 'kb.db'}")
    db.migrate()
    weights = retrieval_weights(make_settings(folder))
    assert (weights.title, weights.lexical) == (KnowledgeSettings().title_weight, KnowledgeSettings().lexical_weight)
    knowledge = KnowledgeBase(SqlArticleRepository(db), minilm, "faiss", weights=weights)
    assert import_folder(knowledge, DEMO_DIR / "articles").ok
    yield knowledge
    db.dispose()


def _decide(kb: KnowledgeBase, text: str) -> Decision:
    """The knowledge-base branch of the real decision, with a confident, calm, in-scope intent."""
    intent = IntentPrediction("kb_question", 0.99, (("kb_question", 0.99),), False, "test")
    return decide(DecisionInput(ConversationStatus.BOT, intent, UrgencyAssessment(Urgency.NORMAL, 0.25),
                                tuple(kb.search_text(text, 8))), PolicySettings())


def test_recall_on_the_half_the_weights_were_not_chosen_on(kb: KnowledgeBase) -> None:
    lines = (DEMO_DIR / "eval" / "kb_questions.jsonl").read_text().splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    order = list(range(len(questions)))
    random.Random(SPLIT_SEED).shuffle(order)
    test = [questions[i] for i in sorted(order[len(questions) // 2 :])]
    top = [kb.search_text(q["text"], 1)[0].article_id == q["article_id"] for q in test]
    # Measured 0.887 on these 62 questions (0.790 dense only); the floor leaves room for 4 questions of noise.
    assert sum(top) / len(top) >= 0.82, sum(top) / len(top)


@pytest.mark.parametrize(
    ("question", "article_id"),
    [
        ("how do I get songs onto my phone to listen on a plane", "playback-offline-downloads"),
        ("my visa expired last week, where do i put the new one so premium doesnt stop",
         "billing-update-payment-method"),
    ],
)
def test_the_two_reported_failures_now_offer_the_right_article(kb: KnowledgeBase, question: str,
                                                              article_id: str) -> None:
    # Before, the first was answered from devices-cadence-connect and the second listed only unrelated
    # billing articles. The right article is still not first for either, so the bot must not answer: it
    # suggests a short list that holds the right article.
    decision = _decide(kb, question)
    assert decision.kind == DecisionKind.SUGGEST, decision
    assert article_id in [h.article_id for h in decision.hits]


def test_a_clear_question_is_answered_from_the_right_article(kb: KnowledgeBase) -> None:
    decision = _decide(kb, "how do I download songs to listen on a plane")
    assert decision.kind == DecisionKind.ANSWER, decision
    assert decision.hits[0].article_id == "playback-offline-downloads"


@pytest.mark.parametrize(
    "question",
    [
        "what's a good recipe for banana bread",
        "how do I get my song distributed to Cadence as an independent artist",
        "can you check whether my refund for order 88213 was approved yet",
    ],
)
def test_unanswerable_questions_are_not_answered(kb: KnowledgeBase, question: str) -> None:
    assert _decide(kb, question).kind != DecisionKind.ANSWER


def test_an_off_topic_question_gets_no_list_either(kb: KnowledgeBase) -> None:
    assert _decide(kb, "what's a good recipe for banana bread").kind not in (DecisionKind.ANSWER,
                                                                             DecisionKind.SUGGEST)
