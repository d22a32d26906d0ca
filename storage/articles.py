"""SQL implementation of knowledge_index's ArticleRepository."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select

from domain.models import Article, Chunk
from knowledge_index.chunking import ChunkDraft
from knowledge_index.repository import ArticleSummary, SavedArticle
from storage.db import Database
from storage.tables import ArticleRow, ChunkRow, utcnow


class SqlArticleRepository:
    """Articles and chunks in the ``articles`` and ``chunks`` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get_article(self, article_id: str) -> Article | None:
        with self.db.read() as s:
            row = s.get(ArticleRow, article_id)
            return _article(row) if row else None

    def list_articles(self) -> list[ArticleSummary]:
        with self.db.read() as s:
            rows = s.scalars(select(ArticleRow).order_by(ArticleRow.id)).all()
            return [
                ArticleSummary(r.id, r.title, tuple(r.tags), r.locale, r.team, r.content_hash, r.updated_at)
                for r in rows
            ]

    def content_hash(self, article_id: str) -> str | None:
        with self.db.read() as s:
            return s.scalar(select(ArticleRow.content_hash).where(ArticleRow.id == article_id))

    def save_article(self, article: Article, chunks: Sequence[ChunkDraft], content_hash: str) -> SavedArticle:
        with self.db.session() as s:
            old_ids = tuple(s.scalars(select(ChunkRow.id).where(ChunkRow.article_id == article.id)).all())
            row = s.get(ArticleRow, article.id)
            if row is None:
                row = ArticleRow(id=article.id)
                s.add(row)
            row.title, row.body, row.tags = article.title, article.body, list(article.tags)
            row.locale, row.team, row.source_path = article.locale, article.team, article.source_path
            row.content_hash, row.updated_at = content_hash, utcnow()
            if old_ids:
                s.execute(delete(ChunkRow).where(ChunkRow.article_id == article.id))
            s.flush()
            new_rows = [
                ChunkRow(article_id=article.id, ordinal=d.ordinal, heading=d.heading[:300], text=d.text)
                for d in chunks
            ]
            s.add_all(new_rows)
            s.flush()
            saved = tuple(Chunk(r.id, r.article_id, r.ordinal, r.heading, r.text) for r in new_rows)
        return SavedArticle(chunks=saved, replaced_chunk_ids=old_ids)

    def delete_article(self, article_id: str) -> tuple[int, ...] | None:
        with self.db.session() as s:
            row = s.get(ArticleRow, article_id)
            if row is None:
                return None
            ids = tuple(s.scalars(select(ChunkRow.id).where(ChunkRow.article_id == article_id)).all())
            s.execute(delete(ChunkRow).where(ChunkRow.article_id == article_id))
            s.delete(row)
            return ids

    def all_chunks(self) -> list[tuple[Chunk, str]]:
        with self.db.read() as s:
            rows = s.execute(
                select(ChunkRow, ArticleRow.title).join(ArticleRow, ArticleRow.id == ChunkRow.article_id)
                .order_by(ChunkRow.id)
            ).all()
            return [(Chunk(c.id, c.article_id, c.ordinal, c.heading, c.text), title) for c, title in rows]

    def count_articles(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(ArticleRow)) or 0)


def _article(row: ArticleRow) -> Article:
    return Article(
        id=row.id, title=row.title, body=row.body, tags=tuple(row.tags), locale=row.locale,
        team=row.team, source_path=row.source_path,
    )
