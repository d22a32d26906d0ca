"""The ArticleRepository protocol: where articles and their chunks are persisted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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


class ArticleRepository(Protocol):
    """Persistence of articles and chunks (the SQL implementation lives in ``storage``).

    Contract: chunk ids are positive int64, unique, and never reused after a delete, so a stale vector
    index can never return a chunk that now means something else. ``save_article`` replaces the article
    and all its chunks in one transaction.
    """

    def get_article(self, article_id: str) -> Article | None: ...

    def list_articles(self) -> list[ArticleSummary]: ...

    def content_hash(self, article_id: str) -> str | None: ...

    def save_article(self, article: Article, chunks: Sequence[ChunkDraft], content_hash: str) -> SavedArticle: ...

    def delete_article(self, article_id: str) -> tuple[int, ...] | None: ...

    def all_chunks(self) -> list[tuple[Chunk, str]]: ...

    def count_articles(self) -> int: ...
