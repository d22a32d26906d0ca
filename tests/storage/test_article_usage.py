"""Article usage (answers, suggestions, reactions) on SQLite and PostgreSQL, from replies stored by the real
repositories; only the clock is moved afterwards, by rewriting timestamps, so every figure is exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from domain.enums import Channel, DecisionKind
from domain.models import Article, BotReply, Citation, Decision, InboundMessage, TurnRecord
from knowledge_index.chunking import ChunkDraft
from storage.article_usage import ArticleUsage, ArticleUsageRepository
from storage.articles import SqlArticleRepository
from storage.conversations import ConversationRepository
from storage.db import Database
from storage.tables import MessageRow
from tests.storage.vectors import vectors_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
SINCE = NOW - timedelta(days=30)


def _article(db: Database, article_id: str, team: str | None = None) -> None:
    article = Article(article_id, f"Title {article_id}", "Some text.", ("tag",), "en", team)
    drafts = [ChunkDraft(0, article.title, "Some text.")]
    SqlArticleRepository(db).save_article(article, drafts, "hash", vectors_for(drafts))


def _cite(article_id: str) -> Citation:
    return Citation(article_id, f"Title {article_id}", f"/help/articles/{article_id}", "passage", "heading", 0.7)


class Replies:
    """Bot replies made through the conversation repository, each with its citations and a reaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.repo = ConversationRepository(db)
        self.cid = self.repo.create_conversation(Channel.WEB, "h").id

    def reply(self, kind: DecisionKind, *article_ids: str, feedback: bool | None = None,
              at: datetime | None = None) -> int:
        inbound, _ = self.repo.record_inbound(InboundMessage(self.cid, "a question", Channel.WEB))
        reply = BotReply(kind, "reply", tuple(_cite(a) for a in article_ids))
        (stored,), _, _ = self.repo.record_turn(TurnRecord(inbound.id, self.cid, None, Decision(kind), (reply,)))
        if feedback is not None:
            self.repo.set_feedback(self.cid, stored.id, helpful=feedback)
        if at is not None:
            with self.db.session() as s:
                s.execute(update(MessageRow).where(MessageRow.id == stored.id).values(created_at=at))
        return stored.id


def _by_id(rows: list[ArticleUsage]) -> dict[str, tuple[int, int, int, int]]:
    return {r.id: (r.answered, r.suggested, r.helpful, r.unhelpful) for r in rows}


def build(db: Database) -> None:
    for article_id, team in (("alpha", "billing"), ("beta", "technical"), ("gamma", None), ("delta", "billing")):
        _article(db, article_id, team)
    r = Replies(db)
    r.reply(DecisionKind.ANSWER, "alpha", feedback=True)
    r.reply(DecisionKind.ANSWER, "alpha", feedback=True)
    r.reply(DecisionKind.ANSWER, "alpha")
    r.reply(DecisionKind.ANSWER, "beta", feedback=False)
    r.reply(DecisionKind.SUGGEST, "beta", "gamma", feedback=False)  # one reaction counts for both articles
    r.reply(DecisionKind.SUGGEST, "alpha", "beta", "gamma")
    r.reply(DecisionKind.ANSWER, "gamma", feedback=False, at=NOW - timedelta(days=31))  # before the window
    r.reply(DecisionKind.ANSWER, "gamma", feedback=True, at=SINCE + timedelta(seconds=5))  # just inside it
    r.reply(DecisionKind.ANSWER, "deleted-article", feedback=False)  # cited, since deleted: not listed
    r.reply(DecisionKind.CLARIFY)
    r.reply(DecisionKind.RESPOND)


def test_counts_per_article_in_the_window(db: Database) -> None:
    build(db)
    rows = ArticleUsageRepository(db).usage(SINCE)
    assert _by_id(rows) == {
        "alpha": (3, 1, 2, 0),
        "beta": (1, 2, 0, 2),
        "gamma": (1, 2, 1, 1),
        "delta": (0, 0, 0, 0),
    }
    # Most unhelpful first, then most offered, then by id.
    assert [r.id for r in rows] == ["beta", "gamma", "alpha", "delta"]
    alpha = next(r for r in rows if r.id == "alpha")
    assert (alpha.title, alpha.tags, alpha.locale, alpha.team, alpha.offered) == (
        "Title alpha", ("tag",), "en", "billing", 4)
    assert next(r for r in rows if r.id == "gamma").team is None


def test_a_later_window_and_a_reaction_changed_afterwards(db: Database) -> None:
    build(db)
    r = Replies(db)
    reply = r.reply(DecisionKind.ANSWER, "delta", feedback=False)
    r.repo.set_feedback(r.cid, reply, helpful=True)  # the customer changed their mind: counted once, helpful
    rows = ArticleUsageRepository(db).usage(NOW - timedelta(minutes=5))
    assert _by_id(rows)["delta"] == (1, 0, 1, 0)
    assert _by_id(rows)["gamma"] == (0, 2, 0, 1)  # the answers rewritten into the past are outside


def test_no_articles_or_no_replies(db: Database) -> None:
    assert ArticleUsageRepository(db).usage(SINCE) == []
    _article(db, "lonely")
    assert _by_id(ArticleUsageRepository(db).usage(SINCE)) == {"lonely": (0, 0, 0, 0)}


def test_one_statement_whatever_the_data(db: Database) -> None:
    usage = ArticleUsageRepository(db)

    def statements() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            usage.usage(SINCE)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    assert statements() == 1
    build(db)
    assert statements() == 1  # no query per article or reply
