"""SQL implementation of knowledge_index's ArticleRepository: articles, chunks and their vectors."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from sqlalchemy import delete, exists, func, or_, select, update

from domain.enums import Topic
from domain.models import Article, Chunk
from knowledge_index.chunking import ChunkDraft
from knowledge_index.repository import ArticleSummary, ArticleVectors, IndexedArticle, SavedArticle
from storage.changes import publish
from storage.db import Database
from storage.tables import ArticleRow, ChunkRow, utcnow

# Little-endian float32: the same bytes on every host that reads them.
_VECTOR = np.dtype("<f4")


class SqlArticleRepository:
    """Articles and chunks in the ``articles`` and ``chunks`` tables; vectors as float32 bytes beside them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get_article(self, article_id: str) -> Article | None:
        with self.db.read() as s:
            row = s.get(ArticleRow, article_id)
            return _article(row) if row else None

    def list_articles(self) -> list[ArticleSummary]:
        with self.db.read() as s:
            rows = s.execute(select(ArticleRow.id, ArticleRow.title, ArticleRow.tags, ArticleRow.locale,
                                    ArticleRow.team, ArticleRow.content_hash, ArticleRow.updated_at)
                             .order_by(ArticleRow.id)).all()
            return [ArticleSummary(r.id, r.title, tuple(r.tags), r.locale, r.team, r.content_hash, r.updated_at)
                    for r in rows]

    def content_hash(self, article_id: str) -> str | None:
        with self.db.read() as s:
            return s.scalar(select(ArticleRow.content_hash).where(ArticleRow.id == article_id))

    def save_article(self, article: Article, chunks: Sequence[ChunkDraft], content_hash: str,
                     vectors: ArticleVectors) -> SavedArticle:
        if len(vectors.chunks) != len(chunks):
            raise ValueError(f"{len(vectors.chunks)} vectors for {len(chunks)} chunks")
        with self.db.session() as s:
            old_ids = tuple(s.scalars(select(ChunkRow.id).where(ChunkRow.article_id == article.id)).all())
            row = s.get(ArticleRow, article.id)
            if row is None:
                row = ArticleRow(id=article.id)
                s.add(row)
            row.title, row.body, row.tags = article.title, article.body, list(article.tags)
            row.locale, row.team, row.source_path = article.locale, article.team, article.source_path
            row.content_hash, row.updated_at = content_hash, utcnow()
            row.title_vector, row.vector_encoder = _bytes(vectors.title), vectors.encoder
            if old_ids:
                s.execute(delete(ChunkRow).where(ChunkRow.article_id == article.id))
            s.flush()
            new_rows = [
                ChunkRow(article_id=article.id, ordinal=d.ordinal, heading=d.heading[:300], text=d.text,
                         vector=_bytes(vector))
                for d, vector in zip(chunks, vectors.chunks, strict=True)
            ]
            s.add_all(new_rows)
            s.flush()
            saved = tuple(Chunk(r.id, r.article_id, r.ordinal, r.heading, r.text) for r in new_rows)
            publish(s, Topic.ARTICLES, article.id)
        return SavedArticle(chunks=saved, replaced_chunk_ids=old_ids)

    def delete_article(self, article_id: str) -> tuple[int, ...] | None:
        with self.db.session() as s:
            row = s.get(ArticleRow, article_id)
            if row is None:
                return None
            ids = tuple(s.scalars(select(ChunkRow.id).where(ChunkRow.article_id == article_id)).all())
            s.execute(delete(ChunkRow).where(ChunkRow.article_id == article_id))
            s.delete(row)
            publish(s, Topic.ARTICLES, article_id)
            return ids

    def indexed_articles(self, article_ids: Collection[str] | None = None) -> list[IndexedArticle]:
        articles = select(ArticleRow.id, ArticleRow.title, ArticleRow.tags, ArticleRow.title_vector,
                          ArticleRow.vector_encoder)
        chunks = select(ChunkRow.id, ChunkRow.article_id, ChunkRow.ordinal, ChunkRow.heading, ChunkRow.text,
                        ChunkRow.vector)
        if article_ids is not None:
            ids = sorted(set(article_ids))
            articles, chunks = articles.where(ArticleRow.id.in_(ids)), chunks.where(ChunkRow.article_id.in_(ids))
        with self.db.read() as s:
            heads = s.execute(articles.order_by(ArticleRow.id)).all()
            by_article: dict[str, list[tuple[Chunk, bytes | None]]] = {}
            for c in s.execute(chunks.order_by(ChunkRow.article_id, ChunkRow.ordinal, ChunkRow.id)):
                by_article.setdefault(c.article_id, []).append(
                    (Chunk(c.id, c.article_id, c.ordinal, c.heading, c.text), c.vector))
        out = []
        for head in heads:
            rows = by_article.get(head.id, [])
            vectors = None
            if head.vector_encoder and head.title_vector is not None and all(v is not None for _, v in rows):
                vectors = ArticleVectors(head.vector_encoder, _matrix([v for _, v in rows], len(head.title_vector)),
                                         np.frombuffer(head.title_vector, dtype=_VECTOR).astype(np.float32))
            out.append(IndexedArticle(head.id, head.title, tuple(head.tags), tuple(c for c, _ in rows), vectors))
        return out

    def articles_without_vectors(self, encoder: str) -> list[str]:
        missing_chunk = exists().where(ChunkRow.article_id == ArticleRow.id, ChunkRow.vector.is_(None))
        with self.db.read() as s:
            return list(s.scalars(select(ArticleRow.id).where(or_(
                ArticleRow.vector_encoder.is_(None), ArticleRow.vector_encoder != encoder,
                ArticleRow.title_vector.is_(None), missing_chunk)).order_by(ArticleRow.id)))

    def save_vectors(self, article_id: str, vectors: ArticleVectors) -> None:
        with self.db.session() as s:
            ids = s.scalars(select(ChunkRow.id).where(ChunkRow.article_id == article_id)
                            .order_by(ChunkRow.ordinal, ChunkRow.id)).all()
            if len(ids) != len(vectors.chunks):
                return  # the article changed meanwhile; whoever changed it stored its vectors
            for chunk_id, vector in zip(ids, vectors.chunks, strict=True):
                s.execute(update(ChunkRow).where(ChunkRow.id == chunk_id).values(vector=_bytes(vector)))
            s.execute(update(ArticleRow).where(ArticleRow.id == article_id)
                      .values(title_vector=_bytes(vectors.title), vector_encoder=vectors.encoder))
            publish(s, Topic.ARTICLES, article_id)

    def count_articles(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(ArticleRow)) or 0)


def _bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=_VECTOR).tobytes()


def _matrix(blobs: list[bytes | None], width_bytes: int) -> np.ndarray:
    dim = width_bytes // _VECTOR.itemsize
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(b or b"" for b in blobs), dtype=_VECTOR).reshape(len(blobs), dim).astype(np.float32)


def _article(row: ArticleRow) -> Article:
    return Article(
        id=row.id, title=row.title, body=row.body, tags=tuple(row.tags), locale=row.locale,
        team=row.team, source_path=row.source_path,
    )
