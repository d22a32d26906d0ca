"""The knowledge base service: upsert and delete articles, keep the vector index in sync, search."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from domain.models import Article, Chunk, SearchHit
from knowledge_index.articles import render_article
from knowledge_index.chunking import ChunkDraft, chunk_article
from knowledge_index.encoder import Encoder
from knowledge_index.repository import ArticleRepository
from knowledge_index.vector_index import ExactIndex, FaissIndex, load_index, new_index, save_index

log = logging.getLogger(__name__)

ENCODE_BATCH = 64


class UpsertStatus(StrEnum):
    """What an upsert did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class UpsertResult:
    """Outcome of adding or updating one article."""

    article_id: str
    status: UpsertStatus
    chunks: int


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`KnowledgeBase.sync` had to fix in the index."""

    encoded: int
    removed: int
    total: int
    rebuilt: bool


class KnowledgeBase:
    """Articles in a repository, their chunk vectors in an index persisted under ``index_dir``.

    The repository is the source of truth; the index is a cache that :meth:`sync` repairs (after a
    crash between a database commit and an index save, or when the encoder changes).
    """

    def __init__(
        self,
        repo: ArticleRepository,
        encoder: Encoder,
        index_dir: Path,
        index_kind: str = "faiss",
        chunk_max_words: int = 180,
    ) -> None:
        self.repo = repo
        self.encoder = encoder
        self.index_dir = index_dir
        self.index_kind = index_kind
        self.chunk_max_words = chunk_max_words
        loaded = load_index(index_kind, index_dir, encoder.dim, encoder.name)
        self._rebuilt = loaded is None
        self.index: FaissIndex | ExactIndex = loaded or new_index(index_kind, encoder.dim)
        self._chunks: dict[int, tuple[Chunk, str]] = {}
        self._write_lock = threading.Lock()

    # --- maintenance -------------------------------------------------------------------------

    def sync(self, progress: Callable[[int], None] | None = None) -> SyncReport:
        """Make the index hold exactly the repository's chunks; encode only what is missing."""
        with self._write_lock:
            rows = self.repo.all_chunks()
            self._chunks = {chunk.id: (chunk, title) for chunk, title in rows}
            present = self.index.ids()
            stale = present - self._chunks.keys()
            if stale:
                self.index.remove(stale)
            missing = [self._chunks[i] for i in sorted(self._chunks.keys() - present)]
            for start in range(0, len(missing), ENCODE_BATCH):
                part = missing[start : start + ENCODE_BATCH]
                texts = [_embedding_text(chunk, title) for chunk, title in part]
                self.index.add([chunk.id for chunk, _ in part], self.encoder.encode(texts))
                if progress:
                    progress(len(part))
            if stale or missing or self._rebuilt:
                save_index(self.index, self.index_dir, self.encoder.name)
            report = SyncReport(len(missing), len(stale), len(self.index), self._rebuilt)
            self._rebuilt = False
            return report

    def upsert(self, article: Article, save: bool = True) -> UpsertResult:
        """Add or replace one article; only its own chunks are re-encoded and re-indexed."""
        digest = self._hash(article)
        previous = self.repo.content_hash(article.id)
        if previous == digest:
            return UpsertResult(article.id, UpsertStatus.UNCHANGED, 0)
        drafts = chunk_article(article, self.chunk_max_words)
        # Encode before touching storage: an encoder failure leaves everything as it was.
        vectors = self.encoder.encode([d.embedding_text(article.title) for d in drafts])
        with self._write_lock:
            saved = self.repo.save_article(article, drafts, digest)
            self.index.remove(saved.replaced_chunk_ids)
            self.index.add([c.id for c in saved.chunks], vectors)
            for chunk_id in saved.replaced_chunk_ids:
                self._chunks.pop(chunk_id, None)
            for chunk in saved.chunks:
                self._chunks[chunk.id] = (chunk, article.title)
            if save:
                save_index(self.index, self.index_dir, self.encoder.name)
        status = UpsertStatus.CREATED if previous is None else UpsertStatus.UPDATED
        return UpsertResult(article.id, status, len(saved.chunks))

    def delete(self, article_id: str, save: bool = True) -> bool:
        """Remove an article and its vectors; False when it did not exist."""
        with self._write_lock:
            removed = self.repo.delete_article(article_id)
            if removed is None:
                return False
            self.index.remove(removed)
            for chunk_id in removed:
                self._chunks.pop(chunk_id, None)
            if save:
                save_index(self.index, self.index_dir, self.encoder.name)
        return True

    def save(self) -> None:
        """Persist the index (after a batch of upserts with ``save=False``)."""
        with self._write_lock:
            save_index(self.index, self.index_dir, self.encoder.name)

    # --- queries -----------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int = 8) -> list[SearchHit]:
        """Best chunk per article for an encoded query, best article first, at most ``k`` articles."""
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for chunk_id, score in self.index.search(query, k * 4):
            entry = self._chunks.get(chunk_id)
            if entry is None or entry[0].article_id in seen:
                continue
            chunk, title = entry
            seen.add(chunk.article_id)
            hits.append(SearchHit(chunk.article_id, title, chunk.id, chunk.heading, chunk.text, score))
            if len(hits) == k:
                break
        return hits

    def search_text(self, text: str, k: int = 8) -> list[SearchHit]:
        """Encode a query and search."""
        return self.search(self.encoder.encode([text])[0], k)

    def get_article(self, article_id: str) -> Article | None:
        """An article from the repository."""
        return self.repo.get_article(article_id)

    def chunk_count(self) -> int:
        """Number of chunks known to the search cache."""
        return len(self._chunks)

    def _hash(self, article: Article) -> str:
        material = f"{self.encoder.name}|{self.chunk_max_words}|{render_article(article)}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _embedding_text(chunk: Chunk, title: str) -> str:
    return ChunkDraft(chunk.ordinal, chunk.heading, chunk.text).embedding_text(title)
