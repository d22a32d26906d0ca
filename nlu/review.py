"""The trainers' inbox: why a message is there, and similar messages grouped into clusters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from domain.trainer import InboxCandidate


@dataclass(frozen=True)
class Cluster:
    """Similar inbox messages: reviewed together."""

    key: int  # the newest message id in the cluster (stable while the cluster exists)
    message_ids: tuple[int, ...]
    label: str  # the most central message
    suggested_intent: str | None
    reasons: dict[str, int]


def reasons_for(item: InboxCandidate, low_confidence: float, ambiguous_margin: float) -> list[str]:
    """Why a message is in the inbox, most telling first."""
    reasons = []
    if item.corrected_intent:
        reasons.append("corrected by an agent")
    if item.unhelpful:
        reasons.append("answer marked unhelpful")
    if item.out_of_scope:
        reasons.append("out of scope")
    if item.confidence < low_confidence:
        reasons.append("low confidence")
    if item.margin < ambiguous_margin and not item.out_of_scope:
        reasons.append("ambiguous")
    return reasons


def cluster(items: Sequence[InboxCandidate], vectors: np.ndarray, threshold: float = 0.75,
            reasons: Sequence[Sequence[str]] | None = None) -> list[Cluster]:
    """Greedy leader clustering on cosine similarity of unit vectors, biggest clusters first.

    Each message joins the first cluster whose centroid is at least ``threshold`` similar, else starts
    one. Deterministic for a given order (newest first).
    """
    if len(items) != len(vectors):
        raise ValueError("one vector per item is needed")
    members: list[list[int]] = []
    centroids: list[np.ndarray] = []
    for index, vector in enumerate(np.asarray(vectors, dtype=np.float32)):
        best, best_score = -1, threshold
        for c, centroid in enumerate(centroids):
            score = float(centroid @ vector)
            if score >= best_score:
                best, best_score = c, score
        if best < 0:
            members.append([index])
            centroids.append(vector.copy())
            continue
        members[best].append(index)
        mean = np.mean([vectors[i] for i in members[best]], axis=0)
        centroids[best] = mean / (np.linalg.norm(mean) or 1.0)
    clusters = []
    for group, centroid in zip(members, centroids, strict=True):
        central = max(group, key=lambda i: float(vectors[i] @ centroid))
        votes = Counter(items[i].corrected_intent or items[i].top_intent for i in group)
        suggested = votes.most_common(1)[0][0] if votes else None
        counted: Counter[str] = Counter()
        for i in group:
            counted.update(reasons[i] if reasons is not None else ())
        clusters.append(Cluster(
            key=max(items[i].message_id for i in group),
            message_ids=tuple(items[i].message_id for i in group),
            label=items[central].text,
            suggested_intent=suggested,
            reasons=dict(counted),
        ))
    clusters.sort(key=lambda c: (-len(c.message_ids), -c.key))
    return clusters
