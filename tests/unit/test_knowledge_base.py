"""Knowledge base service: incremental upsert/delete, vectors kept in the repository, a second process's view
following the first one's changes, folder import with problem reports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from domain.models import Article
from knowledge_index.encoder import HashEncoder
from knowledge_index.fusion import RetrievalWeights
from knowledge_index.importer import import_folder
from knowledge_index.knowledge_base import KnowledgeBase, UpsertStatus
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


def _kb(repo: SqlArticleRepository, kind: str = "faiss", encoder: HashEncoder | None = None,
        weights: RetrievalWeights | None = None) -> KnowledgeBase:
    return KnowledgeBase(repo, encoder or HashEncoder(64), kind, weights=weights)


def _chunk_ids(repo: SqlArticleRepository, article_id: str | None = None) -> set[int]:
    return {c.id for a in repo.indexed_articles() for c in a.chunks if article_id in (None, a.id)}


def _article(article_id: str, title: str, *sections: str) -> Article:
    body = "Intro sentence.\n\n" + "\n\n".join(f"## Part {i}\n{s}" for i, s in enumerate(sections))
    return Article(id=article_id, title=title, body=body, tags=("t",))


@pytest.mark.parametrize("kind", ["faiss", "exact"])
def test_upsert_update_delete_touch_only_that_article(repo: SqlArticleRepository, kind: str) -> None:
    kb = _kb(repo, kind)
    kb.load()
    assert kb.upsert(_article("pay", "Payment methods", "add a credit card", "remove paypal")).status == \
        UpsertStatus.CREATED
    kb.upsert(_article("speaker", "Smart speakers", "pair a bluetooth speaker"))
    speaker_ids = _chunk_ids(repo, "speaker")
    assert kb.search_text("bluetooth speaker", 1)[0].article_id == "speaker"

    updated = kb.upsert(_article("pay", "Payment methods", "add a gift card balance"))
    assert updated.status == UpsertStatus.UPDATED
    assert kb.upsert(_article("pay", "Payment methods", "add a gift card balance")).status == UpsertStatus.UNCHANGED
    # The other article kept its chunk ids (no rebuild) and the index holds exactly the repository's chunks.
    assert _chunk_ids(repo, "speaker") == speaker_ids
    assert kb.index.ids() == _chunk_ids(repo)
    hit = kb.search_text("gift card balance", 1)[0]
    assert (hit.article_id, hit.heading) == ("pay", "Part 0")
    assert all("paypal" not in h.text for h in kb.search_text("remove paypal", 5))

    assert kb.delete("pay") is True
    assert kb.delete("pay") is False
    assert {h.article_id for h in kb.search_text("gift card", 5)} == {"speaker"}
    assert kb.index.ids() == speaker_ids


def test_chunk_ids_are_never_reused(repo: SqlArticleRepository) -> None:
    kb = _kb(repo)
    kb.upsert(_article("a", "A", "one", "two"))
    first = _chunk_ids(repo)
    kb.delete("a")
    kb.upsert(_article("a", "A", "one", "two"))
    assert not first & _chunk_ids(repo)


def test_search_returns_best_chunk_per_article(repo: SqlArticleRepository) -> None:
    kb = _kb(repo)
    kb.upsert(_article("a", "Refunds", "refund refund window", "refund by card"))
    kb.upsert(_article("b", "Other", "refund policy elsewhere"))
    hits = kb.search_text("refund", 5)
    assert sorted(h.article_id for h in hits) == ["a", "b"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_vectors_are_stored_so_another_process_searches_without_encoding(repo: SqlArticleRepository) -> None:
    writer = _kb(repo)
    writer.upsert(_article("a", "Alpha", "alpha text"))
    stored = repo.indexed_articles(["a"])[0]
    assert stored.vectors is not None and stored.vectors.encoder == "hash-64"
    assert stored.vectors.chunks.shape == (len(stored.chunks), 64)

    class Refusing(HashEncoder):
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            raise AssertionError("a reader must not encode what the writer stored")

    reader = KnowledgeBase(repo, Refusing(64))
    assert reader.load().encoded == 0
    assert reader.index.ids() == writer.index.ids()
    vector = writer.encoder.encode(["alpha text"])[0]
    assert [h.article_id for h in reader.search(vector, 1)] == ["a"]


def test_refresh_applies_another_process_s_changes_once(repo: SqlArticleRepository) -> None:
    a, b = _kb(repo), _kb(repo)
    a.load()
    b.load()
    a.upsert(_article("pay", "Payment methods", "add a credit card"))
    a.upsert(_article("gift", "Gift cards", "redeem a gift card code"))
    assert b.refresh({"pay", "gift"}) == 2
    assert b.index.ids() == a.index.ids() and b.lexical.keys() == {"pay", "gift"}
    assert b.refresh({"pay", "gift"}) == 0  # already as stored: nothing to do
    a.upsert(_article("pay", "Payment methods", "add a gift card balance"))
    a.delete("gift")
    assert b.refresh({"pay", "gift"}) == 2
    assert b.index.ids() == a.index.ids() == _chunk_ids(repo)
    assert b.article_ids() == {"pay"} and b.lexical.document_frequency("credit") == 0
    assert [h.article_id for h in b.search_text("gift card balance", 5)] == ["pay"]
    assert b.refresh(None) == 1  # "anything may have changed": a full reload


def test_changing_the_encoder_encodes_and_stores_again(repo: SqlArticleRepository) -> None:
    _kb(repo).upsert(_article("a", "A", "alpha"))
    other = _kb(repo, encoder=HashEncoder(48))
    assert repo.articles_without_vectors("hash-48") == ["a"]
    assert other.ensure_vectors() == len(_chunk_ids(repo))
    assert repo.articles_without_vectors("hash-48") == []
    report = other.load()
    assert report.encoded == 0 and other.index.dim == 48 and len(other.index) == len(_chunk_ids(repo))


def test_import_folder_loads_good_files_and_reports_bad_ones(repo: SqlArticleRepository, tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.md").write_text("---\nid: good\ntitle: Good\n---\nFine body.\n")
    (folder / "sub" / "also-good.md").write_text("---\nid: also-good\ntitle: Also\n---\nMore.\n")
    (folder / "broken.md").write_text("---\nid: broken\ntitle: [oops\n---\nBody\n")
    (folder / "zz-dupe.md").write_text("---\nid: good\ntitle: Dupe\n---\nBody\n")
    (folder / "binary.md").write_bytes(b"\xff\xfe\x00bad")
    (folder / "README.md").write_text("not an article")
    kb = _kb(repo)
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


def test_the_demo_help_center_imports_cleanly(repo: SqlArticleRepository) -> None:
    report = import_folder(_kb(repo), DEMO_DIR / "articles")
    assert report.ok, report.problems
    sections = {a.id.split("-")[0] for a in repo.list_articles()}
    assert {"billing", "account", "playback", "devices", "privacy", "safety"} <= sections
    assert repo.count_articles() >= 40


def _hit_table(kb: KnowledgeBase, queries: list[str]) -> list[list[tuple[str, int, float]]]:
    return [[(h.article_id, h.chunk_id, round(h.score, 5)) for h in kb.search_text(q, 5)] for q in queries]


@pytest.mark.parametrize("kind", ["faiss", "exact"])
def test_all_indexes_follow_add_update_delete_and_agree_with_a_rebuild(repo: SqlArticleRepository,
                                                                       kind: str) -> None:
    kb = _kb(repo, kind)
    kb.load()
    kb.upsert(_article("pay", "Payment methods", "add a credit card", "remove paypal"))
    kb.upsert(_article("speaker", "Smart speakers", "pair a sonos speaker"))
    kb.upsert(_article("gift", "Gift cards", "redeem a gift card code"))
    kb.upsert(_article("pay", "Payment methods", "add a gift card balance"))  # update: new chunks, new words
    kb.upsert(Article(id="speaker", title="Speakers and TVs", body="Cast to a TV.", tags=("devices", "tv")))
    kb.delete("gift")

    first_chunk = {a.id: a.chunks[0].id for a in repo.indexed_articles()}
    assert kb.index.ids() == _chunk_ids(repo)
    assert kb.title_index.ids() == set(first_chunk.values())
    assert kb.lexical.keys() == {"pay", "speaker"}
    # Stale words are gone and new ones are in: "paypal" and "sonos" only lived in replaced versions.
    assert kb.lexical.document_frequency("paypal") == 0 and kb.lexical.document_frequency("sonos") == 0
    assert kb.lexical.document_frequency("tv") == 1

    rebuilt = _kb(repo, kind)
    report = rebuilt.load()
    assert (report.articles, report.encoded) == (2, 0)
    queries = ["gift card balance", "remove paypal", "cast to a tv", "sonos speaker", "credit card"]
    assert _hit_table(kb, queries) == _hit_table(rebuilt, queries)


def test_lexical_evidence_decides_between_close_articles(repo: SqlArticleRepository) -> None:
    kb = _kb(repo)
    kb.upsert(Article(id="connect", title="Play on other devices", body="Pick a speaker from the list of devices."))
    kb.upsert(Article(id="os", title="Supported devices", body="The list of devices and systems we support. Sonos "
                                                                 "speakers need the latest firmware."))
    words_only = _kb(repo, weights=RetrievalWeights(0.0, 1.0))
    words_only.load()
    hits = words_only.search_text("sonos", 2)
    assert [h.article_id for h in hits] == ["os", "connect"]
    assert [h.score for h in hits] == [pytest.approx(1.0), pytest.approx(0.0)]
    # Without the query text there is no lexical evidence: the score is the dense one alone.
    vector = words_only.encoder.encode(["sonos"])[0]
    no_text = words_only.search(vector, 2)
    dense = _kb(repo, weights=RetrievalWeights(0.0, 0.0))
    dense.load()
    assert [(h.article_id, h.score) for h in no_text] == [(h.article_id, h.score) for h in dense.search(vector, 2)]


def test_the_title_vector_carries_title_and_tags(repo: SqlArticleRepository) -> None:
    titles_only = _kb(repo, weights=RetrievalWeights(1.0, 0.0))
    titles_only.upsert(Article(id="refund", title="Refunds", body="Money back within 14 days.", tags=("billing",)))
    titles_only.upsert(Article(id="cancel", title="Cancel", body="Refunds are not given for part months."))
    top = titles_only.search_text("refunds billing", 2)
    assert top[0].article_id == "refund"
    expected = float(HashEncoder(64).encode(["Refunds (billing)"])[0] @ HashEncoder(64).encode(["refunds billing"])[0])
    assert top[0].score == pytest.approx(expected, abs=1e-5)
