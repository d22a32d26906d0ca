"""The knowledge base service: upsert and delete articles, keep this process's search indexes in step, search."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from domain.models import Article, Chunk, SearchHit
from knowledge_index.articles import render_article
from knowledge_index.chunking import ChunkDraft, chunk_article
from knowledge_index.encoder import Encoder
from knowledge_index.fusion import RetrievalWeights, fuse
from knowledge_index.lexical_index import LexicalIndex
from knowledge_index.repository import ArticleRepository, ArticleVectors, IndexedArticle
from knowledge_index.vector_index import VectorIndex, new_index

log = logging.getLogger(__name__)

LOAD_BATCH = 200  # articles read from the repository at a time when loading


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
class LoadReport:
    """What :meth:`KnowledgeBase.load` found and had to encode."""

    articles: int
    chunks: int
    encoded: int  # chunks without vectors of this encoder (new deployment, or the encoder changed)


@dataclass(frozen=True)
class _ArticleEntry:
    """What search needs to know about an article besides its chunks."""

    title: str
    tags: tuple[str, ...]
    chunk_ids: tuple[int, ...]  # in reading order; the first is also the key of its title vector

    @property
    def title_key(self) -> int:
        return self.chunk_ids[0]


@dataclass
class _Indexes:
    """One consistent set of search structures (swapped as a whole by :meth:`KnowledgeBase.load`)."""

    chunks: VectorIndex
    titles: VectorIndex
    lexical: LexicalIndex
    passages: dict[int, tuple[Chunk, str]]  # chunk id -> (chunk, article title)
    articles: dict[str, _ArticleEntry]
    title_owner: dict[int, str]  # title key -> article id


class KnowledgeBase:
    """Articles in a repository; chunk vectors, title vectors and word stems in this process's indexes.

    The repository is the truth, including every chunk's vector: a process builds its indexes from it when it
    starts (:meth:`load`) and applies what other processes changed with :meth:`refresh` (the change feed calls
    it with the changed article ids), so only the process that saves an article encodes it. Three indexes, all
    updated per article: chunk vectors, one "title (tags)" vector per article (keyed by the id of the article's
    first chunk, so an edited article gets a new key just as its chunks get new ids) and the article's word
    stems.
    """

    def __init__(
        self,
        repo: ArticleRepository,
        encoder: Encoder,
        index_kind: str = "faiss",
        chunk_max_words: int = 180,
        weights: RetrievalWeights | None = None,
        make_index: Callable[[int], VectorIndex] | None = None,
    ) -> None:
        self.repo = repo
        self.encoder = encoder
        self.index_kind = index_kind
        self.chunk_max_words = chunk_max_words
        self.weights = weights or RetrievalWeights()
        self._make_index = make_index or (lambda dim: new_index(index_kind, dim))
        self._ix = self._empty()
        self._write_lock = threading.Lock()

    def _empty(self) -> _Indexes:
        dim = self.encoder.dim
        return _Indexes(self._make_index(dim), self._make_index(dim), LexicalIndex(), {}, {}, {})

    @property
    def index(self) -> VectorIndex:
        """The chunk-vector index."""
        return self._ix.chunks

    @property
    def title_index(self) -> VectorIndex:
        """The title-vector index."""
        return self._ix.titles

    @property
    def lexical(self) -> LexicalIndex:
        """The word-stem index."""
        return self._ix.lexical

    # --- keeping the indexes in step ------------------------------------------------------------

    def ensure_vectors(self, progress: Callable[[int], None] | None = None) -> int:
        """Encode and store the vectors of articles that have none from this encoder (a new deployment, an
        upgrade, or a changed encoder); returns how many chunks were encoded. Run by one process at a time
        (the start-up lock), before the others :meth:`load`."""
        ids = self.repo.articles_without_vectors(self.encoder.name)
        encoded = 0
        for start in range(0, len(ids), LOAD_BATCH):
            for article in self.repo.indexed_articles(ids[start : start + LOAD_BATCH]):
                if article.chunks:
                    self.repo.save_vectors(article.id, self._encode(article.title, article.tags, article.chunks))
                    encoded += len(article.chunks)
                    if progress:
                        progress(len(article.chunks))
        return encoded

    def load(self, progress: Callable[[int], None] | None = None, store_vectors: bool = False) -> LoadReport:
        """Build this process's indexes from the stored vectors (at start, or when told that anything changed).

        Articles whose stored vectors are missing or come from another encoder are encoded here, and with
        ``store_vectors`` also saved (see :meth:`ensure_vectors`, which a deployment runs first). Searches keep
        using the previous indexes until the new ones are complete.
        """
        fresh = self._empty()
        ids = [a.id for a in self.repo.list_articles()]
        chunk_ids: list[int] = []
        title_ids: list[int] = []
        chunk_vectors: list[np.ndarray] = []
        title_vectors: list[np.ndarray] = []
        encoded = 0
        for start in range(0, len(ids), LOAD_BATCH):
            for article in self.repo.indexed_articles(ids[start : start + LOAD_BATCH]):
                if not article.chunks:
                    continue
                vectors = article.vectors
                if vectors is None or vectors.encoder != self.encoder.name:
                    vectors = self._encode(article.title, article.tags, article.chunks)
                    encoded += len(article.chunks)
                    if store_vectors:
                        self.repo.save_vectors(article.id, vectors)
                entry = _remember(fresh, article)
                chunk_ids.extend(entry.chunk_ids)
                chunk_vectors.append(vectors.chunks)
                title_ids.append(entry.title_key)
                title_vectors.append(vectors.title.reshape(1, -1))
                if progress:
                    progress(len(article.chunks))
        if chunk_ids:  # one add per index: an approximate index builds its graph once
            fresh.chunks.add(chunk_ids, np.concatenate(chunk_vectors))
            fresh.titles.add(title_ids, np.concatenate(title_vectors))
        with self._write_lock:
            self._ix = fresh
        return LoadReport(len(fresh.articles), len(chunk_ids), encoded)

    def refresh(self, article_ids: Collection[str] | None) -> int:
        """Apply what changed in the repository to these articles (None: reload everything); returns how many
        articles changed here. Idempotent: an article already as stored is left alone."""
        if article_ids is None:
            self.load()
            return len(self._ix.articles)
        stored = {a.id: a for a in self.repo.indexed_articles(article_ids)}
        changed = 0
        for article_id in sorted(article_ids):
            article = stored.get(article_id)
            entry = self._ix.articles.get(article_id)
            current = tuple(c.id for c in article.chunks) if article is not None else ()
            if (entry.chunk_ids if entry else ()) == current:
                continue
            vectors = None
            if article is not None and article.chunks:
                vectors = article.vectors
                if vectors is None or vectors.encoder != self.encoder.name:  # saved by a differently set up process
                    vectors = self._encode(article.title, article.tags, article.chunks)
            with self._write_lock:
                _remove(self._ix, article_id)
                if article is not None and vectors is not None:
                    _add(self._ix, article, vectors)
            changed += 1
        return changed

    def upsert(self, article: Article) -> UpsertResult:
        """Add or replace one article; only its own chunks are encoded, and only here."""
        digest = self._hash(article)
        previous = self.repo.content_hash(article.id)
        if previous == digest:
            return UpsertResult(article.id, UpsertStatus.UNCHANGED, 0)
        drafts = chunk_article(article, self.chunk_max_words)
        # Encode before touching storage: an encoder failure leaves everything as it was.
        vectors = self._encode_drafts(article.title, article.tags, drafts)
        saved = self.repo.save_article(article, drafts, digest, vectors)
        with self._write_lock:
            _remove(self._ix, article.id)
            if saved.chunks:
                _add(self._ix, IndexedArticle(article.id, article.title, article.tags, saved.chunks, vectors), vectors)
        status = UpsertStatus.CREATED if previous is None else UpsertStatus.UPDATED
        return UpsertResult(article.id, status, len(saved.chunks))

    def delete(self, article_id: str) -> bool:
        """Remove an article and its vectors; False when it did not exist."""
        if self.repo.delete_article(article_id) is None:
            return False
        with self._write_lock:
            _remove(self._ix, article_id)
        return True

    def _encode(self, title: str, tags: tuple[str, ...], chunks: tuple[Chunk, ...]) -> ArticleVectors:
        drafts = [ChunkDraft(c.ordinal, c.heading, c.text) for c in chunks]
        return self._encode_drafts(title, tags, drafts)

    def _encode_drafts(self, title: str, tags: tuple[str, ...], drafts: list[ChunkDraft]) -> ArticleVectors:
        """The chunks' vectors and, last in the same call, the title vector."""
        texts = [d.embedding_text(title) for d in drafts]
        vectors = self.encoder.encode([*texts, _title_text(title, tags)])
        return ArticleVectors(self.encoder.name, vectors[:-1], vectors[-1])

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
        ix, w = self._ix, self.weights
        depth = max(w.depth, 4 * k)
        best: dict[str, tuple[Chunk, str, float]] = {}
        for chunk_id, score in ix.chunks.search(query, depth):
            entry = ix.passages.get(chunk_id)
            if entry is not None and entry[0].article_id not in best:
                best[entry[0].article_id] = (entry[0], entry[1], score)
        if not best:
            return []
        title_scores: dict[str, float] = {}
        floor: float | None = None
        if w.title > 0.0:
            for key, score in ix.titles.search(query, depth):
                owner = ix.title_owner.get(key)
                if owner is not None:
                    title_scores[owner] = score
                floor = score
        lexical = ix.lexical.coverage(text, best) if text is not None and w.lexical > 0.0 else None
        ranked = []
        for article_id, (chunk, title, passage) in best.items():
            title_score = title_scores.get(article_id, floor) if article_id in ix.articles else None
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
        """Number of chunks this process can search."""
        return len(self._ix.passages)

    def article_ids(self) -> set[str]:
        """The articles this process can search."""
        return set(self._ix.articles)

    def _hash(self, article: Article) -> str:
        material = f"{self.encoder.name}|{self.chunk_max_words}|{render_article(article)}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _add(ix: _Indexes, article: IndexedArticle, vectors: ArticleVectors) -> None:
    """Put an article (not in the indexes) into them."""
    if not article.chunks:
        return
    entry = _remember(ix, article)
    ix.chunks.add(entry.chunk_ids, vectors.chunks)
    ix.titles.add([entry.title_key], vectors.title.reshape(1, -1))


def _remember(ix: _Indexes, article: IndexedArticle) -> _ArticleEntry:
    """Everything about an article (with chunks) except its vectors: passages, title owner, word stems."""
    entry = _ArticleEntry(article.title, tuple(article.tags), tuple(c.id for c in article.chunks))
    for chunk in article.chunks:
        ix.passages[chunk.id] = (chunk, article.title)
    ix.articles[article.id] = entry
    ix.title_owner[entry.title_key] = article.id
    ix.lexical.add(article.id, _lexical_text(entry, article.chunks))
    return entry


def _remove(ix: _Indexes, article_id: str) -> None:
    """Take an article out of the indexes (nothing when absent)."""
    entry = ix.articles.pop(article_id, None)
    if entry is None:
        return
    ix.chunks.remove(entry.chunk_ids)
    ix.titles.remove([entry.title_key])
    for chunk_id in entry.chunk_ids:
        ix.passages.pop(chunk_id, None)
    ix.title_owner.pop(entry.title_key, None)
    ix.lexical.remove([article_id])


def _title_text(title: str, tags: tuple[str, ...]) -> str:
    """What the title vector encodes: "Update your payment method (billing, payment, card)"."""
    return f"{title} ({', '.join(tags)})" if tags else title


def _lexical_text(entry: _ArticleEntry, chunks: tuple[Chunk, ...]) -> str:
    """The article's words as the lexical index sees them: title, tags, headings and text."""
    parts = [entry.title, " ".join(entry.tags)]
    for chunk in chunks:
        parts += [chunk.heading, chunk.text]
    return "\n".join(parts)
