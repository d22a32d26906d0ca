"""The knowledge base service: upsert and delete articles, keep the search indexes in sync, search."""

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
from knowledge_index.fusion import RetrievalWeights, fuse
from knowledge_index.lexical_index import LexicalIndex
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
    titles_encoded: int = 0


@dataclass(frozen=True)
class _ArticleEntry:
    """What search needs to know about an article besides its chunks."""

    title: str
    tags: tuple[str, ...]
    title_key: int  # id of its first chunk: the key of its title vector


class KnowledgeBase:
    """Articles in a repository; chunk vectors, title vectors and word stems in indexes kept in step with it.

    Three indexes, all updated per article: chunk vectors (``index``, under ``index_dir``), one "title (tags)"
    vector per article (``title_index``, under ``index_dir/titles``, keyed by the id of the article's first
    chunk, so an edited article gets a new key just as its chunks get new ids) and the article's word stems
    (``lexical``, in memory, rebuilt from the repository by :meth:`sync`). The repository is the source of
    truth; the vector indexes are caches that :meth:`sync` repairs (after a crash between a database commit
    and an index save, or when the encoder changes).
    """

    def __init__(
        self,
        repo: ArticleRepository,
        encoder: Encoder,
        index_dir: Path,
        index_kind: str = "faiss",
        chunk_max_words: int = 180,
        weights: RetrievalWeights | None = None,
    ) -> None:
        self.repo = repo
        self.encoder = encoder
        self.index_dir = index_dir
        self.index_kind = index_kind
        self.chunk_max_words = chunk_max_words
        self.weights = weights or RetrievalWeights()
        loaded = load_index(index_kind, index_dir, encoder.dim, encoder.name)
        titles = load_index(index_kind, self._titles_dir, encoder.dim, encoder.name)
        self._rebuilt = loaded is None or titles is None
        self.index: FaissIndex | ExactIndex = loaded or new_index(index_kind, encoder.dim)
        self.title_index: FaissIndex | ExactIndex = titles or new_index(index_kind, encoder.dim)
        self.lexical = LexicalIndex()
        self._chunks: dict[int, tuple[Chunk, str]] = {}
        self._articles: dict[str, _ArticleEntry] = {}
        self._title_owner: dict[int, str] = {}
        self._write_lock = threading.Lock()

    @property
    def _titles_dir(self) -> Path:
        return self.index_dir / "titles"

    # --- maintenance -------------------------------------------------------------------------

    def sync(self, progress: Callable[[int], None] | None = None) -> SyncReport:
        """Make the indexes hold exactly the repository's articles; encode only what is missing."""
        with self._write_lock:
            rows = self.repo.all_chunks()
            self._chunks = {chunk.id: (chunk, title) for chunk, title in rows}
            tags = {a.id: a.tags for a in self.repo.list_articles()}
            by_article: dict[str, list[Chunk]] = {}
            for chunk, _ in rows:
                by_article.setdefault(chunk.article_id, []).append(chunk)
            self._articles, self._title_owner = {}, {}
            self.lexical.clear()
            for article_id, chunks in by_article.items():
                chunks.sort(key=lambda c: c.ordinal)
                self._remember(article_id, self._chunks[chunks[0].id][1], tags.get(article_id, ()), chunks)
            titles_encoded, titles_removed = self._sync_titles()
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
            if stale or missing or titles_encoded or titles_removed or self._rebuilt:
                self._save()
            report = SyncReport(len(missing), len(stale), len(self.index), self._rebuilt, titles_encoded)
            self._rebuilt = False
            return report

    def _sync_titles(self) -> tuple[int, int]:
        """Title vectors for exactly the known articles; returns (encoded, removed)."""
        present = self.title_index.ids()
        stale = present - self._title_owner.keys()
        if stale:
            self.title_index.remove(stale)
        missing = sorted(self._title_owner.keys() - present)
        for start in range(0, len(missing), ENCODE_BATCH):
            keys = missing[start : start + ENCODE_BATCH]
            texts = [_title_text(self._articles[self._title_owner[key]]) for key in keys]
            self.title_index.add(keys, self.encoder.encode(texts))
        return len(missing), len(stale)

    def _remember(self, article_id: str, title: str, tags: tuple[str, ...], chunks: list[Chunk]) -> None:
        """Record an article's search metadata and its lexical document (chunks in reading order)."""
        entry = _ArticleEntry(title, tuple(tags), chunks[0].id)
        self._articles[article_id] = entry
        self._title_owner[entry.title_key] = article_id
        self.lexical.add(article_id, _lexical_text(entry, chunks))

    def _forget(self, article_id: str) -> int | None:
        """Drop an article's search metadata and lexical document; returns its old title key."""
        entry = self._articles.pop(article_id, None)
        self.lexical.remove([article_id])
        if entry is None:
            return None
        self._title_owner.pop(entry.title_key, None)
        return entry.title_key

    def _save(self) -> None:
        save_index(self.index, self.index_dir, self.encoder.name)
        save_index(self.title_index, self._titles_dir, self.encoder.name)

    def upsert(self, article: Article, save: bool = True) -> UpsertResult:
        """Add or replace one article; only its own chunks are re-encoded and re-indexed."""
        digest = self._hash(article)
        previous = self.repo.content_hash(article.id)
        if previous == digest:
            return UpsertResult(article.id, UpsertStatus.UNCHANGED, 0)
        drafts = chunk_article(article, self.chunk_max_words)
        # Encode before touching storage: an encoder failure leaves everything as it was. The last text is
        # the title vector's.
        texts = [d.embedding_text(article.title) for d in drafts]
        vectors = self.encoder.encode([*texts, _title_text(_ArticleEntry(article.title, article.tags, 0))])
        with self._write_lock:
            saved = self.repo.save_article(article, drafts, digest)
            self.index.remove(saved.replaced_chunk_ids)
            self.index.add([c.id for c in saved.chunks], vectors[: len(saved.chunks)])
            old_key = self._forget(article.id)
            if old_key is not None:
                self.title_index.remove([old_key])
            for chunk_id in saved.replaced_chunk_ids:
                self._chunks.pop(chunk_id, None)
            for chunk in saved.chunks:
                self._chunks[chunk.id] = (chunk, article.title)
            if saved.chunks:
                self._remember(article.id, article.title, article.tags, list(saved.chunks))
                self.title_index.add([saved.chunks[0].id], vectors[-1:])
            if save:
                self._save()
        status = UpsertStatus.CREATED if previous is None else UpsertStatus.UPDATED
        return UpsertResult(article.id, status, len(saved.chunks))

    def delete(self, article_id: str, save: bool = True) -> bool:
        """Remove an article and its vectors; False when it did not exist."""
        with self._write_lock:
            removed = self.repo.delete_article(article_id)
            if removed is None:
                return False
            self.index.remove(removed)
            old_key = self._forget(article_id)
            # Also the first chunk id, in case the article was never remembered (upserted by another process).
            self.title_index.remove([*removed, *([old_key] if old_key is not None else [])])
            for chunk_id in removed:
                self._chunks.pop(chunk_id, None)
            if save:
                self._save()
        return True

    def save(self) -> None:
        """Persist the vector indexes (after a batch of upserts with ``save=False``)."""
        with self._write_lock:
            self._save()

    # --- queries -----------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int = 8, text: str | None = None) -> list[SearchHit]:
        """Articles for an encoded query, best first, at most ``k``, each with its best chunk.

        Candidates are the articles of the ``max(weights.depth, 4k)`` nearest chunks. Each is scored by
        :func:`knowledge_index.fusion.fuse` from its best chunk's cosine, its title vector's cosine and, when
        ``text`` (the query as typed) is given, the share of the query's words it contains. Title cosines are
        exact when there are at most ``depth`` articles; beyond that an article outside the nearest ``depth``
        titles is given the lowest of their cosines (an upper bound, and a small term).
        """
        if k <= 0:
            return []
        w = self.weights
        depth = max(w.depth, 4 * k)
        best: dict[str, tuple[Chunk, str, float]] = {}
        for chunk_id, score in self.index.search(query, depth):
            entry = self._chunks.get(chunk_id)
            if entry is not None and entry[0].article_id not in best:
                best[entry[0].article_id] = (entry[0], entry[1], score)
        if not best:
            return []
        title_scores: dict[str, float] = {}
        floor: float | None = None
        if w.title > 0.0:
            for key, score in self.title_index.search(query, depth):
                owner = self._title_owner.get(key)
                if owner is not None:
                    title_scores[owner] = score
                floor = score
        lexical = self.lexical.coverage(text, best) if text is not None and w.lexical > 0.0 else None
        ranked = []
        for article_id, (chunk, title, passage) in best.items():
            title_score = title_scores.get(article_id, floor) if article_id in self._articles else None
            score = fuse(passage, title_score, None if lexical is None else lexical[article_id], w)
            ranked.append((-score, -passage, article_id, SearchHit(article_id, title, chunk.id, chunk.heading,
                                                                   chunk.text, score)))
        ranked.sort(key=lambda r: r[:3])
        return [r[3] for r in ranked[:k]]

    def search_text(self, text: str, k: int = 8) -> list[SearchHit]:
        """Encode a query and search with its words too."""
        return self.search(self.encoder.encode([text])[0], k, text=text)

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


def _title_text(entry: _ArticleEntry) -> str:
    """What the title vector encodes: "Update your payment method (billing, payment, card)"."""
    return f"{entry.title} ({', '.join(entry.tags)})" if entry.tags else entry.title


def _lexical_text(entry: _ArticleEntry, chunks: list[Chunk]) -> str:
    """The article's words as the lexical index sees them: title, tags, headings and text."""
    parts = [entry.title, " ".join(entry.tags)]
    for chunk in chunks:
        parts += [chunk.heading, chunk.text]
    return "\n".join(parts)
