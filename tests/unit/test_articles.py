"""Markdown articles with front matter, and heading chunking."""

from __future__ import annotations

import pytest

from domain.errors import SourceFileError
from domain.models import Article
from knowledge_index.articles import parse_article, render_article
from knowledge_index.chunking import chunk_article

pytestmark = pytest.mark.unit

GOOD = """---
id: billing-refunds
title: Refunds
tags: [billing, refund]
team: billing
---
Refunds are possible within 14 days.

## On the web
Open **Account** and choose Refund.

## In the app
Tap Settings, then Refund.
"""


def test_parse_reads_front_matter_and_body() -> None:
    article = parse_article(GOOD, "refunds.md")
    assert article.id == "billing-refunds"
    assert article.title == "Refunds"
    assert article.tags == ("billing", "refund")
    assert article.team == "billing"
    assert article.locale == "en"
    assert article.body.startswith("Refunds are possible")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("no front matter\n", 1, "missing front matter"),
        ("---\nid: a\ntitle: b\n", 1, "not closed"),
        ("---\nid: a\ntitle: [unclosed\n---\nbody\n", 3, "not valid YAML"),
        ("---\ntitle: b\n---\nbody\n", 2, "no 'id'"),
        ("---\nid: a\n---\nbody\n", 2, "no 'title'"),
        ("---\nid: Bad Id!\ntitle: t\n---\nbody\n", 2, "must be lowercase"),
        ("---\nid: a\ntitle: t\ncolour: red\n---\nbody\n", 2, "unknown front matter keys: colour"),
        ("---\nid: a\ntitle: t\n---\n\n", 5, "no body"),
        ("---\n- just\n- a list\n---\nbody\n", 2, "must be a mapping"),
    ],
)
def test_bad_articles_report_path_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(SourceFileError) as err:
        parse_article(text, "kb/bad.md")
    assert err.value.problem.path == "kb/bad.md"
    assert err.value.problem.line == line
    assert reason in err.value.problem.reason
    assert str(err.value).startswith(f"kb/bad.md:{line}: ")


def test_render_round_trips() -> None:
    article = parse_article(GOOD, "refunds.md")
    again = parse_article(render_article(article), "refunds.md")
    assert again == article


def test_chunks_follow_headings_and_intro_gets_title() -> None:
    chunks = chunk_article(parse_article(GOOD))
    assert [(c.ordinal, c.heading) for c in chunks] == [(0, "Refunds"), (1, "On the web"), (2, "In the app")]
    assert chunks[1].text == "Open **Account** and choose Refund."
    assert chunks[1].embedding_text("Refunds") == "Refunds: On the web\nOpen **Account** and choose Refund."


def test_long_sections_split_at_paragraphs_and_words() -> None:
    para = " ".join(["word"] * 60)
    body = f"## Long\n{para}\n\n{para}\n\n{para}\n\n## Huge\n" + " ".join(["w"] * 450)
    chunks = chunk_article(Article(id="a", title="T", body=body), max_words=130)
    long_parts = [c for c in chunks if c.heading == "Long"]
    huge_parts = [c for c in chunks if c.heading == "Huge"]
    assert [len(c.text.split()) for c in long_parts] == [120, 60]
    assert [len(c.text.split()) for c in huge_parts] == [130, 130, 130, 60]
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_headings_inside_code_fences_do_not_split() -> None:
    body = "Intro.\n\n```\n# not a heading\n```\n\n## Real\nText."
    chunks = chunk_article(Article(id="a", title="T", body=body))
    assert [c.heading for c in chunks] == ["T", "Real"]
    assert "# not a heading" in chunks[0].text
