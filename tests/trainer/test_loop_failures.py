"""A failed or interrupted retrain leaves the active model serving; one retrain at a time (both databases)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from domain.errors import ConflictError
from domain.models import IntentPrediction
from domain.trainer import VersionStatus
from knowledge_index.encoder import HashEncoder
from nlu.retrain import TrainerLoop
from nlu.trainer_ports import Progress
from settings import DEMO_DIR
from storage.db import Database
from storage.trainer import TrainerStore
from tests.trainer.run_now import retrain_now

pytestmark = pytest.mark.integration


class FixedModel:
    """A model of our own for tests: always the same answer."""

    def __init__(self, version: str, intent: str = "greet") -> None:
        self.version = version
        self.intents: tuple[str, ...] = ("greet", "goodbye")
        self._intent = intent

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        return IntentPrediction(self._intent, 0.9, ((self._intent, 0.9), ("goodbye", 0.1)), False, self.version)


class BrokenFactory:
    """Training blows up half way."""

    method = "broken"

    def fit(self, pairs: Sequence[tuple[str, str]], vectors: np.ndarray, oos_texts: Sequence[str],
            oos_vectors: np.ndarray, progress: Progress) -> FixedModel:
        progress(0.5, "fitting folds")
        raise MemoryError("out of memory while training")

    def save(self, model: FixedModel) -> None:
        raise AssertionError("nothing to save")

    def load(self, version: str) -> FixedModel | None:
        return None

    def remove(self, version: str) -> bool:
        return False


def test_a_failed_retrain_keeps_the_active_model(db: Database, tmp_path: Path) -> None:
    store = TrainerStore(db)
    serving = FixedModel("v-active")
    activated: list[str] = []
    loop = TrainerLoop(store, BrokenFactory(), HashEncoder(64), DEMO_DIR / "nlu" / "nlu.yml",
                       active_model=lambda: serving, on_activate=lambda m: activated.append(m.version))
    job_id = retrain_now(loop, store)
    job = store.job(job_id)
    assert job.status == "failed" and job.error == "MemoryError: out of memory while training"
    assert job.step == "failed"
    assert job.finished_at is not None and activated == []
    # The failed job no longer blocks a new one.
    assert retrain_now(loop, store) != job_id


def test_one_retrain_at_a_time_and_interrupted_jobs_are_restarted_then_failed(db: Database) -> None:
    store = TrainerStore(db)
    first = store.start_job("a")
    with pytest.raises(ConflictError, match=f"retrain job {first.id} is still queued"):
        store.start_job("b")
    now, lease = datetime.now(UTC), timedelta(seconds=60)
    claimed = store.claim_job("p1", now, lease)
    assert claimed is not None and claimed.id == first.id and claimed.status == "running"
    with pytest.raises(ConflictError, match="still running"):
        store.start_job("b")
    assert store.claim_job("p2", now, lease) is None  # p1 holds it
    assert store.renew_job(first.id, "p1", now + lease)
    # p1 died: once its lease has passed another process starts the job again, once; then it is failed.
    later = now + 2 * lease + timedelta(seconds=1)
    again = store.claim_job("p2", later, lease)
    assert again is not None and again.id == first.id
    assert not store.renew_job(first.id, "p1", later + lease)  # p1's lease is gone
    assert store.claim_job("p3", later + 2 * lease, lease) is None
    assert store.job(first.id).status == "failed" and "interrupted" in (store.job(first.id).error or "")
    second = store.start_job("b")
    store.update_job(second.id, status="succeeded", progress=1.0, candidate_version="v2")
    assert store.start_job("c").id > second.id


def test_versions_activate_and_roll_back(db: Database) -> None:
    store = TrainerStore(db)
    store.register_version("v1", "linear", VersionStatus.CANDIDATE, 10, {}, "startup")
    store.register_version("v2", "linear", VersionStatus.CANDIDATE, 12, {"candidate": {"accuracy": 0.9}}, "tess")
    store.activate("v1", "startup")
    assert store.active_version().version == "v1"  # type: ignore[union-attr]
    store.activate("v2", "tess")
    assert [(v.version, v.status) for v in store.versions()] == [("v2", "active"), ("v1", "retired")]
    store.activate("v1", "tess")
    assert store.active_version().activated_by == "tess"  # type: ignore[union-attr]
    assert store.version("v2").metrics == {"candidate": {"accuracy": 0.9}}
