"""Read help-center articles from markdown files with YAML front matter."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from domain.errors import SourceFileError, SourceProblem
from domain.models import Article

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
_REQUIRED = ("id", "title")
_KNOWN = {"id", "title", "tags", "locale", "team"}
MAX_ARTICLE_BYTES = 1_000_000


def parse_article(text: str, source: str = "<string>") -> Article:
    """Parse one article.

    Args:
        text: the whole file: ``---`` front matter, ``---``, markdown body.
        source: path shown in error messages.

    Raises:
        SourceFileError: with the path, the line and a readable reason.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise _problem(source, 1, "missing front matter: the file must start with a '---' line")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise _problem(source, 1, "front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(e, "problem", None) or str(e)
        raise _problem(source, line, f"front matter is not valid YAML: {reason}") from e
    if not isinstance(meta, dict):
        raise _problem(source, 2, "front matter must be a mapping of keys to values")
    for key in _REQUIRED:
        if not str(meta.get(key) or "").strip():
            raise _problem(source, 2, f"front matter has no '{key}'")
    unknown = sorted(set(meta) - _KNOWN)
    if unknown:
        raise _problem(source, 2, f"unknown front matter keys: {', '.join(unknown)}")
    article_id = str(meta["id"]).strip()
    if not _ID_RE.match(article_id):
        raise _problem(source, 2, f"id {article_id!r} must be lowercase letters, digits, '-' or '_'")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
        raise _problem(source, 2, "tags must be a list of words")
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise _problem(source, end + 2, "the article has no body")
    team = meta.get("team")
    return Article(
        id=article_id,
        title=str(meta["title"]).strip(),
        body=body,
        tags=tuple(str(t).strip().lower() for t in tags if str(t).strip()),
        locale=str(meta.get("locale") or "en").strip(),
        team=str(team).strip() if team else None,
        source_path=source,
    )


def read_article(path: Path) -> Article:
    """Read and parse one markdown file; raises SourceFileError on any problem."""
    try:
        size = path.stat().st_size
        if size > MAX_ARTICLE_BYTES:
            raise _problem(str(path), None, f"file is {size} bytes, more than {MAX_ARTICLE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise _problem(str(path), None, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise _problem(str(path), None, f"cannot read file: {e.strerror or e}") from e
    return parse_article(text, str(path))


def find_article_files(folder: Path) -> list[Path]:
    """All ``*.md`` files below a folder (README.md excluded), sorted for a stable order."""
    return sorted(p for p in folder.rglob("*.md") if p.is_file() and p.name.lower() != "readme.md")


def render_article(article: Article) -> str:
    """Serialize an article back to markdown with front matter (the import format)."""
    meta: dict[str, object] = {"id": article.id, "title": article.title, "tags": list(article.tags)}
    meta["locale"] = article.locale
    if article.team:
        meta["team"] = article.team
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()
    return f"---\n{head}\n---\n{article.body.strip()}\n"


def _problem(path: str, line: int | None, reason: str) -> SourceFileError:
    return SourceFileError(SourceProblem(path=path, line=line, reason=reason))
