"""Activation checks today's regression cases, rejection, pruning of old model files, rollback to a pruned
version (SQLite and PostgreSQL; an in-memory model factory)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from domain.errors import ConflictError
from domain.models import IntentPrediction
from domain.trainer import VersionStatus
from knowledge_index.encoder import HashEncoder
from nlu.retrain import STARTUP, RegressionCasesFailed, TrainerLoop
from nlu.trainer_ports import Progress, TrainedModel
from settings import DEMO_DIR
from storage.db import Database
from storage.trainer import TrainerStore
from tests.trainer.run_now import retrain_now

pytestmark = pytest.mark.integration


class LookupModel:
    """Knows its training texts by heart; anything else is its first intent (alphabetically)."""

    def __init__(self, version: str, labels: dict[str, str]) -> None:
        self.version = version
        self.labels = labels
        self.intents: tuple[str, ...] = tuple(sorted(set(labels.values()))) or ("greet",)

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction:
        intent = self.labels.get(text, self.intents[0])
        return IntentPrediction(intent, 0.9, ((intent, 0.9),), False, self.version)


class MemoryFactory:
    """Model "files" in a dict."""

    method = "lookup"

    def __init__(self) -> None:
        self.files: dict[str, LookupModel] = {}
        self.fitted = 0

    def fit(self, pairs: Sequence[tuple[str, str]], vectors: np.ndarray, oos_texts: Sequence[str],
            oos_vectors: np.ndarray, progress: Progress) -> LookupModel:
        self.fitted += 1
        progress(1.0, "fitted")
        return LookupModel(f"lk-{len(pairs)}-{self.fitted}", dict(pairs))

    def save(self, model: LookupModel) -> None:
        self.files[model.version] = model

    def load(self, version: str) -> LookupModel | None:
        return self.files.get(version)

    def remove(self, version: str) -> bool:
        return self.files.pop(version, None) is not None


class Serving:
    def __init__(self, model: LookupModel) -> None:
        self.model = model

    def set(self, model: TrainedModel) -> None:
        assert isinstance(model, LookupModel)
        self.model = model


def make_loop(db: Database, keep_versions: int = 10) -> tuple[TrainerLoop, TrainerStore, MemoryFactory, Serving]:
    """A loop whose startup model (registered and activated as wiring does) says "greet" to everything."""
    store, factory = TrainerStore(db), MemoryFactory()
    startup = LookupModel("v-startup", {"hello": "greet", "bye": "goodbye"})
    factory.save(startup)
    store.register_version(startup.version, factory.method, VersionStatus.CANDIDATE, 0, {}, STARTUP)
    store.activate(startup.version, STARTUP)
    serving = Serving(startup)
    loop = TrainerLoop(store, factory, HashEncoder(32), DEMO_DIR / "nlu" / "nlu.yml",
                       active_model=lambda: serving.model, on_activate=serving.set, keep_versions=keep_versions)
    return loop, store, factory, serving


def test_activation_runs_todays_regression_cases_through_the_version(db: Database) -> None:
    loop, store, factory, serving = make_loop(db)
    learnt = LookupModel("v-learnt", {"hello": "greet", "my zorblax broke": "refund_request"})
    factory.save(learnt)
    # Recorded when nothing was required yet: no failures on record.
    store.register_version("v-learnt", "lookup", VersionStatus.CANDIDATE, 3,
                           {"candidate": {"regression_failures": []}}, "tess")
    store.add_regression_case("my zorblax broke", "refund_request", "tess")
    store.add_regression_case("what a glorp", None, "tess")  # out of scope

    with pytest.raises(RegressionCasesFailed) as refused:
        loop.activate("v-learnt", "tess")
    assert [f.text for f in refused.value.failures] == ["what a glorp"]
    assert "fails 1 of 2 regression case(s): 'what a glorp' (expected out of scope, got greet)" in str(
        refused.value)
    assert isinstance(refused.value, ConflictError) and serving.model.version == "v-startup"

    # Rolling back to the startup version is checked the same way (it is not exempt).
    store.activate("v-learnt", "tess")  # as if served (e.g. activated before the cases existed)
    with pytest.raises(RegressionCasesFailed, match="'my zorblax broke' \\(expected refund_request, got goodbye\\)"):
        loop.activate("v-startup", "tess")
    assert store.active_version().version == "v-learnt"  # type: ignore[union-attr]

    forced = loop.activate("v-startup", "tess", force=True)
    assert forced.status == "active" and serving.model.version == "v-startup"
    store.remove_regression_case(store.regression_cases()[1].id)
    assert loop.activate("v-learnt", "tess").status == "active" and serving.model.version == "v-learnt"


def test_reject_keeps_the_active_model(db: Database) -> None:
    loop, store, _factory, serving = make_loop(db)
    job = store.job(retrain_now(loop, store))
    assert job.status == "succeeded", job.error
    rejected = loop.reject(str(job.candidate_version), "tess")
    assert rejected.status == "rejected" and rejected.rejected_by == "tess"
    assert serving.model.version == "v-startup" and store.active_version().version == "v-startup"  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="not a candidate"):
        loop.reject("v-startup", "tess")


def test_pruning_keeps_the_active_the_newest_candidates_and_startup(db: Database) -> None:
    loop, store, factory, serving = make_loop(db, keep_versions=3)
    for i in range(6):
        model = LookupModel(f"v{i}", {"hello": "greet"})
        factory.save(model)
        store.register_version(model.version, "lookup", VersionStatus.CANDIDATE, 1, {}, "tess")
        if i == 1:
            loop.activate("v1", "tess")
        elif i < 4:
            store.reject(model.version, "tess")
    # newest first: v5 v4 (candidates), v3 v2 (rejected), v1 (active), v0 (rejected), v-startup (retired)
    pruned = loop.prune()
    assert sorted(pruned) == ["v0", "v2"]
    assert set(factory.files) == {"v-startup", "v1", "v3", "v4", "v5"}
    assert store.version("v0").pruned_at is not None and store.version("v3").pruned_at is None
    assert loop.prune() == []

    # A rollback to a pruned version says so; the serving model does not change.
    with pytest.raises(ConflictError, match="version v2 is no longer available: its model file was deleted on "):
        loop.activate("v2", "tess", force=True)
    assert serving.model.version == "v1"
    # A successful retrain prunes too.
    job = store.job(retrain_now(loop, store))
    assert job.status == "succeeded", job.error
    assert "v3" not in factory.files and store.version("v3").pruned_at is not None
    assert {"v-startup", "v1", str(job.candidate_version)} <= set(factory.files)


def test_a_missing_file_is_not_a_pruned_one(db: Database) -> None:
    loop, store, _factory, _serving = make_loop(db)
    store.register_version("v-gone", "lookup", VersionStatus.CANDIDATE, 1, {}, "tess")
    with pytest.raises(ConflictError, match="the files of version v-gone are missing"):
        loop.activate("v-gone", "tess")
