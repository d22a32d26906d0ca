"""The ArticleRepository protocol: where articles and their chunks are persisted."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from domain.models import Article, Chunk
from knowledge_index.chunking import ChunkDraft


@dataclass(frozen=True)
class ArticleSummary:
    """An article without its body, for listings."""

    id: str
    title: str
    tags: tuple[str, ...]
    locale: str
    team: str | None
    content_hash: str
    updated_at: datetime


@dataclass(frozen=True)
class SavedArticle:
    """Result of saving an article: its new chunks (with ids) and the ids they replaced."""

    chunks: tuple[Chunk, ...]
    replaced_chunk_ids: tuple[int, ...]


@dataclass(frozen=True)
class ArticleVectors:
    """The vectors of an article's chunks (one row per chunk, in order) and of its "title (tags)" text."""

    encoder: str  # the encoder that produced them: vectors of different encoders are not comparable
    chunks: np.ndarray
    title: np.ndarray


@dataclass(frozen=True)
class IndexedArticle:
    """An article as the search indexes hold it: its chunks in reading order and their stored vectors."""

    id: str
    title: str
    tags: tuple[str, ...]
    chunks: tuple[Chunk, ...]
    vectors: ArticleVectors | None  # None when never encoded


class ArticleRepository(Protocol):
    """Persistence of articles, their chunks and the chunks' vectors (the SQL implementation lives in ``storage``).

    Contract: chunk ids are positive int64, unique, and never reused after a delete, so a stale vector
    index can never return a chunk that now means something else. ``save_article`` replaces the article,
    all its chunks and their vectors in one transaction; ``save_article``, ``delete_article`` and
    ``save_vectors`` also record the change for the other server processes (``Topic.ARTICLES``, the id).
    """

    def get_article(self, article_id: str) -> Article | None: ...

    def list_articles(self) -> list[ArticleSummary]: ...

    def content_hash(self, article_id: str) -> str | None: ...

    def save_article(self, article: Article, chunks: Sequence[ChunkDraft], content_hash: str,
                     vectors: ArticleVectors) -> SavedArticle: ...

    def delete_article(self, article_id: str) -> tuple[int, ...] | None: ...

    def indexed_articles(self, article_ids: Collection[str] | None = None) -> list[IndexedArticle]:
        """The given articles (all when None) that exist, with their chunks and vectors, by id."""
        ...

    def articles_without_vectors(self, encoder: str) -> list[str]:
        """Ids of articles whose stored vectors are missing or were made by another encoder."""
        ...

    def save_vectors(self, article_id: str, vectors: ArticleVectors) -> None:
        """Store vectors computed for an article's current chunks (e.g. after the encoder changed)."""
        ...

    def count_articles(self) -> int: ...
