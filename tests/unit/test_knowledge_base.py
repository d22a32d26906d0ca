"""Knowledge base service: incremental upsert/delete, index repair, folder import with problem reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.models import Article
from knowledge_index.encoder import HashEncoder
from knowledge_index.importer import import_folder
from knowledge_index.knowledge_base import KnowledgeBase, UpsertStatus
from knowledge_index.vector_index import load_index
from settings import DEMO_DIR
from storage.articles import SqlArticleRepository
from storage.db import Database

pytestmark = pytest.mark.unit


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[SqlArticleRepository]:
    db = Database(f"sqlite:///{tmp_path / 'kb.db'}")
    db.migrate()
    yield SqlArticleRepository(db)
    db.dispose()


def _kb(repo: SqlArticleRepository, tmp_path: Path, kind: str = "faiss", encoder: HashEncoder | None = None
        ) -> KnowledgeBase:
    return KnowledgeBase(repo, encoder or HashEncoder(64), tmp_path / "index", kind)


def _article(article_id: str, title: str, *sections: str) -> Article:
    body = "Intro sentence.\n\n" + "\n\n".join(f"## Part {i}\n{s}" for i, s in enumerate(sections))
    return Article(id=article_id, title=title, body=body, tags=("t",))


@pytest.mark.parametrize("kind", ["faiss", "exact"])
def test_upsert_update_delete_touch_only_that_article(repo: SqlArticleRepository, tmp_path: Path,
                                                      kind: str) -> None:
    kb = _kb(repo, tmp_path, kind)
    kb.sync()
    assert kb.upsert(_article("pay", "Payment methods", "add a credit card", "remove paypal")).status == \
        UpsertStatus.CREATED
    kb.upsert(_article("speaker", "Smart speakers", "pair a bluetooth speaker"))
    speaker_ids = {c.id for c, _ in repo.all_chunks() if c.article_id == "speaker"}
    assert kb.search_text("bluetooth speaker", 1)[0].article_id == "speaker"

    updated = kb.upsert(_article("pay", "Payment methods", "add a gift card balance"))
    assert updated.status == UpsertStatus.UPDATED
    assert kb.upsert(_article("pay", "Payment methods", "add a gift card balance")).status == UpsertStatus.UNCHANGED
    # The other article kept its chunk ids (no rebuild) and the index holds exactly the repository's chunks.
    assert {c.id for c, _ in repo.all_chunks() if c.article_id == "speaker"} == speaker_ids
    assert kb.index.ids() == {c.id for c, _ in repo.all_chunks()}
    hit = kb.search_text("gift card balance", 1)[0]
    assert (hit.article_id, hit.heading) == ("pay", "Part 0")
    assert all("paypal" not in h.text for h in kb.search_text("remove paypal", 5))

    assert kb.delete("pay") is True
    assert kb.delete("pay") is False
    assert {h.article_id for h in kb.search_text("gift card", 5)} == {"speaker"}
    assert kb.index.ids() == speaker_ids


def test_chunk_ids_are_never_reused(repo: SqlArticleRepository, tmp_path: Path) -> None:
    kb = _kb(repo, tmp_path)
    kb.upsert(_article("a", "A", "one", "two"))
    first = {c.id for c, _ in repo.all_chunks()}
    kb.delete("a")
    kb.upsert(_article("a", "A", "one", "two"))
    assert not first & {c.id for c, _ in repo.all_chunks()}


def test_search_returns_best_chunk_per_article(repo: SqlArticleRepository, tmp_path: Path) -> None:
    kb = _kb(repo, tmp_path)
    kb.upsert(_article("a", "Refunds", "refund refund window", "refund by card"))
    kb.upsert(_article("b", "Other", "refund policy elsewhere"))
    hits = kb.search_text("refund", 5)
    assert sorted(h.article_id for h in hits) == ["a", "b"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_sync_repairs_an_index_left_behind_by_a_crash(repo: SqlArticleRepository, tmp_path: Path) -> None:
    kb = _kb(repo, tmp_path)
    kb.upsert(_article("a", "A", "alpha text"))
    kb.upsert(_article("b", "B", "beta text"), save=False)  # crash before the index was saved
    reopened = _kb(repo, tmp_path)
    assert reopened.index.ids() != {c.id for c, _ in repo.all_chunks()}
    report = reopened.sync()
    assert report.encoded == 2 and report.removed == 0
    assert reopened.index.ids() == {c.id for c, _ in repo.all_chunks()}
    assert reopened.search_text("beta text", 1)[0].article_id == "b"
    # And the repaired index was persisted.
    persisted = load_index("faiss", tmp_path / "index", 64, "hash-64")
    assert persisted is not None and persisted.ids() == reopened.index.ids()


def test_changing_the_encoder_rebuilds_the_index(repo: SqlArticleRepository, tmp_path: Path) -> None:
    _kb(repo, tmp_path).upsert(_article("a", "A", "alpha"))
    other = _kb(repo, tmp_path, encoder=HashEncoder(48))
    report = other.sync()
    assert report.rebuilt and report.encoded == len(repo.all_chunks())
    assert other.index.dim == 48


def test_import_folder_loads_good_files_and_reports_bad_ones(repo: SqlArticleRepository, tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.md").write_text("---\nid: good\ntitle: Good\n---\nFine body.\n")
    (folder / "sub" / "also-good.md").write_text("---\nid: also-good\ntitle: Also\n---\nMore.\n")
    (folder / "broken.md").write_text("---\nid: broken\ntitle: [oops\n---\nBody\n")
    (folder / "zz-dupe.md").write_text("---\nid: good\ntitle: Dupe\n---\nBody\n")
    (folder / "binary.md").write_bytes(b"\xff\xfe\x00bad")
    (folder / "README.md").write_text("not an article")
    kb = _kb(repo, tmp_path)
    report = import_folder(kb, folder)
    assert sorted(report.created) == ["also-good", "good"]
    problems = {Path(p.path).name: p for p in report.problems}
    assert set(problems) == {"broken.md", "zz-dupe.md", "binary.md"}
    assert problems["broken.md"].line == 3 and "YAML" in problems["broken.md"].reason
    assert "already used by" in problems["zz-dupe.md"].reason
    assert "UTF-8" in problems["binary.md"].reason
    assert not report.ok

    again = import_folder(kb, folder)
    assert sorted(again.unchanged) == ["also-good", "good"]
    (folder / "sub" / "also-good.md").unlink()
    pruned = import_folder(kb, folder, prune=True)
    assert pruned.deleted == ["also-good"]
    assert [a.id for a in repo.list_articles()] == ["good"]


def test_the_demo_help_center_imports_cleanly(repo: SqlArticleRepository, tmp_path: Path) -> None:
    report = import_folder(_kb(repo, tmp_path), DEMO_DIR / "articles")
    assert report.ok, report.problems
    sections = {a.id.split("-")[0] for a in repo.list_articles()}
    assert {"billing", "account", "playback", "devices", "privacy", "safety"} <= sections
    assert repo.count_articles() >= 40
