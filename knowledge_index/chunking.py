"""Split an article into heading-delimited chunks small enough for the encoder."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.models import Article

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before the repository assigns it an id."""

    ordinal: int
    heading: str
    text: str

    def embedding_text(self, title: str) -> str:
        """What is encoded: the article title and heading give the passage its context."""
        head = title if not self.heading or self.heading == title else f"{title}: {self.heading}"
        return f"{head}\n{self.text}"


def chunk_article(article: Article, max_words: int = 180) -> list[ChunkDraft]:
    """Chunk by headings; sections longer than ``max_words`` are split at paragraph boundaries.

    The text before the first heading becomes a chunk headed by the article title. MiniLM truncates at
    256 tokens (about 220 words), so the default keeps each chunk whole inside the encoder's window.
    """
    sections: list[tuple[str, list[str]]] = [(article.title, [])]
    in_fence = False
    for line in article.body.splitlines():
        if _FENCE_RE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING_RE.match(line)
        if match:
            sections.append((match.group(2).strip(), []))
        else:
            sections[-1][1].append(line)
    drafts: list[ChunkDraft] = []
    for heading, body_lines in sections:
        for piece in _split_long("\n".join(body_lines).strip(), max_words):
            drafts.append(ChunkDraft(ordinal=len(drafts), heading=heading, text=piece))
    return drafts


def _split_long(text: str, max_words: int) -> list[str]:
    if not text:
        return []
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    current: list[str] = []
    count = 0
    for para in paragraphs:
        words = len(para.split())
        if current and count + words > max_words:
            pieces.append("\n\n".join(current))
            current, count = [], 0
        if words > max_words:
            # One enormous paragraph: cut it by words so nothing falls outside the encoder window.
            tokens = para.split()
            for start in range(0, len(tokens), max_words):
                pieces.append(" ".join(tokens[start : start + max_words]))
            continue
        current.append(para)
        count += words
    if current:
        pieces.append("\n\n".join(current))
    return pieces
