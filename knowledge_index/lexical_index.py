"""Lexical evidence for retrieval: word stems per article and the IDF-weighted share of a query they cover."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import snowballstemmer

from knowledge_index.rwlock import ReadWriteLock

_WORD_RE = re.compile(r"[a-z0-9]+")
# Function words and chat filler: they carry no topic, and in a query they would only dilute the coverage.
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "don", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have",
    "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into",
    "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of",
    "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she",
    "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was",
    "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your", "yours", "yourself", "yourselves", "s", "t", "d", "ll", "m", "re", "ve", "didn", "doesn", "isn",
    "wasn", "aren", "cant", "im", "ive", "get", "got", "want", "wanted", "need", "please", "pls", "hi", "hello",
    "thanks", "thank", "also", "still", "even", "really"
])
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def terms(text: str) -> list[str]:
    """Lower-cased word stems of ``text`` without stopwords, in order ("Downloads" -> "download")."""
    return [_stem(w) for w in _WORD_RE.findall(text.lower()) if w not in STOPWORDS]


class LexicalIndex:
    """The set of word stems of each document, and how many documents hold each stem.

    Scoring is BM25 with ``k1 = 0`` (a term counts once, whatever its frequency and the document's length)
    normalized by the query's total IDF: ``coverage(q, d) = sum(idf(t) for t in q if t in d) / sum(idf(t) for
    t in q)`` over the distinct query terms, with ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``. It lies in
    [0, 1]: the share of the query's informative words that the document contains. A query word no document
    has gets the highest IDF and lowers every document's coverage, which is what an off-topic question should
    do. IDFs are computed at query time, so adding, replacing and removing documents needs no rebuild.
    (Measured against full BM25 with k1 = 1.2, b = 0.75 in docs/retrieval-evaluation.md: presence won.)

    Contract: ``add`` with a key already present replaces that document; ``remove`` ignores unknown keys;
    ``coverage`` returns a value for every requested key (0.0 for unknown keys). Safe to call from several
    threads.
    """

    def __init__(self) -> None:
        self._docs: dict[str, frozenset[str]] = {}
        self._df: Counter[str] = Counter()
        self._lock = ReadWriteLock()

    def add(self, key: str, text: str) -> None:
        """Index (or re-index) one document."""
        stems = frozenset(terms(text))
        with self._lock.write():
            self._drop(key)
            self._docs[key] = stems
            self._df.update(stems)

    def remove(self, keys: Iterable[str]) -> None:
        """Forget documents; unknown keys are ignored."""
        with self._lock.write():
            for key in keys:
                self._drop(key)

    def clear(self) -> None:
        """Forget every document."""
        with self._lock.write():
            self._docs.clear()
            self._df.clear()

    def coverage(self, text: str, keys: Iterable[str]) -> dict[str, float]:
        """IDF-weighted share of the query's terms found in each of ``keys`` (see the class docstring)."""
        query = list(dict.fromkeys(terms(text)))
        with self._lock.read():
            n = len(self._docs)
            idf = {t: math.log(1.0 + (n - self._df[t] + 0.5) / (self._df[t] + 0.5)) for t in query}
            total = sum(idf.values())
            out: dict[str, float] = {}
            for key in keys:
                doc = self._docs.get(key)
                if doc is None or total <= 0.0:
                    out[key] = 0.0
                else:
                    out[key] = sum(w for t, w in idf.items() if t in doc) / total
            return out

    def keys(self) -> set[str]:
        """Keys of the indexed documents."""
        with self._lock.read():
            return set(self._docs)

    def document_frequency(self, term: str) -> int:
        """Number of documents holding a stem (for tests and diagnostics)."""
        with self._lock.read():
            return self._df[term]

    def __len__(self) -> int:
        return len(self._docs)

    def _drop(self, key: str) -> None:
        old = self._docs.pop(key, None)
        if old is not None:
            self._df.subtract(old)
            for t in old:
                if self._df[t] <= 0:
                    del self._df[t]
