"""How the bot used each help-center article: answers, suggestions and customers' reactions, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, case, column, desc, func, literal_column, select, true

from domain.enums import DecisionKind, Sender
from storage.db import Database
from storage.tables import ArticleRow, MessageRow


@dataclass(frozen=True)
class ArticleUsage:
    """One article with the bot replies that cited it since a moment, and the customers' reactions to them.

    ``answered`` counts answers quoting the article, ``suggested`` suggestion lists naming it; ``helpful`` and
    ``unhelpful`` count the reactions to either kind of reply (a reaction to a suggestion list counts for
    every article it named).
    """

    id: str
    title: str
    tags: tuple[str, ...]
    locale: str
    team: str | None
    updated_at: datetime
    answered: int
    suggested: int
    helpful: int
    unhelpful: int

    @property
    def offered(self) -> int:
        """Replies that cited the article, of either kind."""
        return self.answered + self.suggested


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


class ArticleUsageRepository:
    """Reads article usage from the bot's replies (their ``payload.citations``) and reactions (``payload.feedback``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def usage(self, since: datetime) -> list[ArticleUsage]:
        """Every article with its usage by bot replies sent at or after ``since``.

        Sorted so problems come first: most unhelpful reactions, then most offered, then by id. Articles that
        were cited but no longer exist are left out; articles never cited have zeros. One SQL statement.
        """
        m = MessageRow
        citations = self._citations()
        feedback = m.payload["feedback"].as_string()
        # One row per (reply, article it cited); the outer query groups by the extracted id.
        cited = (
            select(citations.c.value["article_id"].as_string().label("article_id"), m.kind.label("kind"),
                   feedback.label("feedback"))
            .select_from(m).join(citations, true())
            .where(m.sender == Sender.BOT.value,
                   m.kind.in_((DecisionKind.ANSWER.value, DecisionKind.SUGGEST.value)),
                   m.created_at >= since)
            .subquery("cited")
        )
        per_article = (
            select(cited.c.article_id,
                   func.sum(_flag(cited.c.kind == DecisionKind.ANSWER.value)).label("answered"),
                   func.sum(_flag(cited.c.kind == DecisionKind.SUGGEST.value)).label("suggested"),
                   func.sum(_flag(cited.c.feedback == "helpful")).label("helpful"),
                   func.sum(_flag(cited.c.feedback == "unhelpful")).label("unhelpful"))
            .group_by(cited.c.article_id)
            .subquery("usage")
        )
        counts = [func.coalesce(per_article.c[name], 0) for name in ("answered", "suggested", "helpful", "unhelpful")]
        a = ArticleRow
        statement = (
            select(a.id, a.title, a.tags, a.locale, a.team, a.updated_at, *counts)
            .outerjoin(per_article, per_article.c.article_id == a.id)
            .order_by(desc(counts[3]), desc(counts[0] + counts[1]), a.id)
        )
        with self.db.read() as s:
            rows = s.execute(statement).all()
        return [ArticleUsage(row[0], row[1], tuple(row[2] or ()), row[3], row[4], row[5], *(int(n) for n in row[6:]))
                for row in rows]

    def _citations(self) -> Any:
        """The elements of a reply's ``payload.citations`` array as a table joined to ``messages`` (a lateral call:
        SQLite's ``json_each``, PostgreSQL's ``json_array_elements``)."""
        payload = MessageRow.payload
        if self.db.dialect == "postgresql":
            # Replies always store a list; anything else would make json_array_elements fail the whole query.
            array = case((func.json_typeof(payload["citations"]) == "array", payload["citations"]),
                         else_=literal_column("'[]'::json"))
            elements = func.json_array_elements(array)
        else:
            elements = func.json_each(payload, "$.citations")
        return elements.table_valued(column("value", JSON), joins_implicitly=True)
