"""The lexical index: terms, IDF-weighted coverage with known answers, incremental edits equal a rebuild."""

from __future__ import annotations

import math
import random

import pytest

from knowledge_index.lexical_index import LexicalIndex, terms

pytestmark = pytest.mark.unit


def _idf(n: int, df: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def test_terms_lowercase_stem_and_drop_stopwords() -> None:
    assert terms("How do I get my Downloads back?") == ["download", "back"]
    assert terms("Payments, payment, PAYING") == ["payment", "payment", "pay"]
    assert terms("the and of") == []


def test_coverage_is_the_idf_weighted_share_of_query_terms() -> None:
    index = LexicalIndex()
    index.add("pay", "Update your card or PayPal payment")
    index.add("speaker", "Pair a Sonos speaker")
    index.add("refund", "Refund to your card")
    scores = index.coverage("sonos card", ["pay", "speaker", "refund", "missing"])
    sonos, card = _idf(3, 1), _idf(3, 2)  # "sonos" is in one document, "card" in two
    assert scores["speaker"] == pytest.approx(sonos / (sonos + card))
    assert scores["pay"] == pytest.approx(card / (sonos + card))
    assert scores["refund"] == pytest.approx(scores["pay"])
    assert scores["missing"] == 0.0


def test_words_no_document_has_lower_every_coverage() -> None:
    index = LexicalIndex()
    index.add("speaker", "Pair a Sonos speaker")
    index.add("pay", "Update your card")
    on_topic = index.coverage("sonos speaker", ["speaker"])["speaker"]
    off_topic = index.coverage("sonos speaker banana bread recipe", ["speaker"])["speaker"]
    assert on_topic == pytest.approx(1.0)
    assert 0.0 < off_topic < 0.5
    assert index.coverage("the of and", ["speaker"]) == {"speaker": 0.0}


def test_add_replaces_and_remove_forgets() -> None:
    index = LexicalIndex()
    index.add("a", "gift card balance")
    index.add("b", "gift voucher")
    assert index.document_frequency("gift") == 2
    index.add("a", "family plan")  # replaces the document, its old terms lose their count
    assert index.document_frequency("gift") == 1
    assert index.document_frequency("balanc") == 0
    assert index.coverage("family", ["a"])["a"] == pytest.approx(1.0)
    index.remove(["b", "unknown"])
    assert index.keys() == {"a"} and len(index) == 1
    assert index.document_frequency("gift") == 0
    index.clear()
    assert len(index) == 0 and index.coverage("family", ["a"]) == {"a": 0.0}


def test_incremental_edits_give_the_same_scores_as_a_rebuild() -> None:
    rng = random.Random(7)
    vocabulary = [
        "refund", "card", "paypal", "speaker", "sonos", "playlist", "offline", "download", "family", "plan",
        "student", "email"
    ]
    live = LexicalIndex()
    truth: dict[str, str] = {}
    for _ in range(300):
        key = f"doc-{rng.randrange(12)}"
        if rng.random() < 0.25:
            live.remove([key])
            truth.pop(key, None)
        else:
            text = " ".join(rng.choices(vocabulary, k=rng.randint(1, 6)))
            live.add(key, text)
            truth[key] = text
    rebuilt = LexicalIndex()
    for key, text in truth.items():
        rebuilt.add(key, text)
    assert live.keys() == rebuilt.keys() == set(truth)
    keys = [*sorted(truth), "doc-none"]
    for query in ("refund card", "sonos speaker offline", "family plan for students", "nothing matches"):
        assert live.coverage(query, keys) == pytest.approx(rebuilt.coverage(query, keys))
