"""Inbox reasons and clustering: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from domain.trainer import InboxCandidate
from knowledge_index.encoder import HashEncoder
from nlu.review import cluster, reasons_for

pytestmark = pytest.mark.unit


def Item(message_id: int, text: str, *, intent: str | None = "refund_request",
         top_intent: str | None = "refund_request", confidence: float = 0.9, margin: float = 0.8,
         out_of_scope: bool = False, corrected_intent: str | None = None, unhelpful: bool = False) -> InboxCandidate:
    """An inbox candidate with the fields the inbox looks at (the others do not matter here)."""
    return InboxCandidate(message_id, "c1", text, datetime.now(UTC), intent, top_intent, confidence, margin,
                          out_of_scope, "v1", corrected_intent, unhelpful)


@pytest.mark.parametrize(
    ("item", "reasons"),
    [
        (Item(1, "x"), []),
        (Item(1, "x", confidence=0.3), ["low confidence"]),
        (Item(1, "x", margin=0.05), ["ambiguous"]),
        (Item(1, "x", intent=None, out_of_scope=True, confidence=0.2, margin=0.01), ["out of scope", "low confidence"]),
        (Item(1, "x", corrected_intent="refund_request", unhelpful=True),
         ["corrected by an agent", "answer marked unhelpful"]),
    ],
)
def test_reasons(item: InboxCandidate, reasons: list[str]) -> None:
    assert reasons_for(item, low_confidence=0.5, ambiguous_margin=0.15) == reasons


def test_similar_messages_cluster_together() -> None:
    texts = ["my refund never arrived", "refund never arrived yet", "where is my refund",
             "bluetooth speaker will not pair", "speaker bluetooth pairing fails", "what is the meaning of life"]
    items = [Item(10 + i, t, corrected_intent="refund_request" if i == 1 else None) for i, t in enumerate(texts)]
    vectors = HashEncoder(256).encode(texts)
    clusters = cluster(items, vectors, threshold=0.3, reasons=[["low confidence"]] * len(items))
    assert [c.message_ids for c in clusters] == [(10, 11, 12), (13, 14), (15,)]  # biggest first
    assert [c.key for c in clusters] == [12, 14, 15]
    assert clusters[0].reasons == {"low confidence": 3}
    assert clusters[0].suggested_intent == "refund_request" and clusters[0].label in texts[:3]
    with pytest.raises(ValueError, match="one vector per item"):
        cluster(items, vectors[:2])
    assert cluster([], np.zeros((0, 256))) == []
