"""The candidate and the active model are compared on a held-out slice neither learnt from; the job reports its
steps with progress (real intent models on the hash encoder, SQLite)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.trainer import VersionStatus
from knowledge_index.encoder import HashEncoder
from nlu.fitting import FitConfig
from nlu.heldout import heldout_position, heldout_scores
from nlu.intent import IntentModel, load_model
from nlu.model_factory import IntentModelFactory
from nlu.rasa_yaml import read_nlu
from nlu.retrain import STARTUP, TrainerLoop
from nlu.training import load_or_train
from storage.db import Database
from storage.trainer import TrainerStore
from tests.fakes.model_files import MemoryModelFiles
from tests.trainer.run_now import retrain_now
from tests.trainer.slice_texts import texts_at

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORDS = {
    "refund": ["refund", "money back", "reimburse", "charged twice", "return payment"],
    "password": ["password", "log in", "locked out", "reset", "sign in"],
    "cancel": ["cancel", "stop subscription", "end my plan", "unsubscribe", "quit"],
    "playback": ["song skips", "audio stutters", "music stops", "playback", "no sound"],
}
FILLER = ["please", "help", "my", "account", "today", "now", "again", "the app", "i need", "can you", "why"]
FRACTION = 0.2


class RecordingStore(TrainerStore):
    """The real store, remembering every job update (what the page polls)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.updates: list[dict[str, Any]] = []

    def update_job(self, job_id: int, **changes: Any) -> None:
        self.updates.append(changes)
        super().update_job(job_id, **changes)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'fair.db'}")
    db.migrate()
    yield db
    db.dispose()


def write_nlu(path: Path) -> None:
    rng = random.Random(5)
    lines = ['version: "3.1"', "nlu:"]
    for intent, words in WORDS.items():
        lines += [f"- intent: {intent}", "  examples: |"]
        for i in range(24):
            other = rng.choice([w for ws in WORDS.values() for w in ws])  # some overlap: not trivially separable
            text = " ".join([rng.choice(FILLER), rng.choice(words), *([other] if i % 3 == 0 else []),
                             rng.choice(FILLER), str(i)])
            lines.append(f"    - {text}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_fair_comparison_and_job_steps(database: Database, tmp_path: Path) -> None:
    nlu, models = tmp_path / "nlu.yml", MemoryModelFiles()
    write_nlu(nlu)
    encoder, config = HashEncoder(128), FitConfig(folds=3)
    # What wiring does at startup: train on all of nlu.yml, register the model and serve it.
    startup = load_or_train(nlu, encoder, models, config)
    store = RecordingStore(database)
    store.register_version(startup.version, config.method, VersionStatus.CANDIDATE, 0, {}, STARTUP)
    store.activate(startup.version, STARTUP)
    serving: list[Any] = [startup]
    loop = TrainerLoop(store, IntentModelFactory(encoder.name, models, config), encoder, nlu,
                       active_model=lambda: serving[0], on_activate=lambda m: serving.__setitem__(0, m),
                       heldout_fraction=FRACTION)

    first = store.job(retrain_now(loop, store))
    assert first.status == "succeeded", first.error
    metrics = store.version(str(first.candidate_version)).metrics
    assert metrics["heldout"]["rule"] == "text-sha256" and metrics["heldout"]["in_scope"] >= 10
    # The startup model learnt from the slice: scored as it serves, it would look better than it is.
    slice_ = [(t, i) for t, i in read_nlu(nlu).training_examples() if heldout_position(t) < FRACTION]
    vectors = encoder.encode([t for t, _ in slice_])
    served = heldout_scores([i for _, i in slice_], [startup.predict(t, v).intent for (t, _), v in
                                                      zip(slice_, vectors, strict=True)])
    assert served["accuracy"] == 1.0
    # Fair: its recipe is fitted again without the slice; with no corrections yet, that is the candidate.
    assert metrics["active"]["version"] == startup.version and metrics["active"]["basis"] == "refit"
    for key in ("accuracy", "macro_f1", "false_oos"):
        assert metrics["active"][key] == metrics["candidate"][key]
    assert metrics["candidate"]["accuracy"] < 1.0
    assert "oos_recall" not in metrics["candidate"]  # no out-of-scope examples yet

    # The job went through its steps, and the fitting step moved forward fold by fold.
    steps = [u["step"] for u in store.updates if "step" in u]
    assert [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s] == [
        "preparing", "encoding", "fitting", "evaluating", "saving", "done"]
    progress = [u["progress"] for u in store.updates if "progress" in u]
    assert progress == sorted(progress) and progress[-1] == 1.0
    fitting = [u for u in store.updates if u.get("step") == "fitting"]
    assert len({u["progress"] for u in fitting}) >= 8
    assert any("fold 2 of 3" in u["stage"] for u in fitting)

    # Trainers mark messages out of scope (some fall in the slice) and correct one nlu.yml example that is in it.
    gibberish = "blorf quazzle wimwam"
    for text in texts_at(8, gibberish, False, FRACTION) + texts_at(3, gibberish, True, FRACTION):
        store.add_example(text, None, "tess")
    corrected = slice_[0][0]
    store.add_example(corrected, "cancel" if slice_[0][1] != "cancel" else "refund", "tess")
    store.updates.clear()
    second = store.job(retrain_now(loop, store))
    assert second.status == "succeeded", second.error
    metrics = store.version(str(second.candidate_version)).metrics
    assert metrics["heldout"]["out_of_scope"] == 3 and "oos_recall" in metrics["candidate"]
    assert "oos_recall" in metrics["active"] and metrics["active"]["basis"] == "refit"
    assert metrics["heldout"]["in_scope"] == len(slice_) - 1  # the corrected example is learnt, not held out
    assert any(u.get("stage", "").startswith("refitting the active model: fitting folds") for u in store.updates)
    # The recipe fitted for this slice is kept: the next retrain does not fit it again.
    store.updates.clear()
    again = store.job(retrain_now(loop, store))
    assert again.candidate_version == second.candidate_version
    assert not any(u.get("stage", "").startswith("refitting") for u in store.updates)
    assert store.version(str(again.candidate_version)).metrics["active"] == metrics["active"]

    # Once a candidate serves, the next comparison scores the serving model itself (it never saw the slice).
    loop.activate(str(second.candidate_version), "tess", force=True)
    third = store.job(retrain_now(loop, store))
    metrics = store.version(str(third.candidate_version)).metrics
    assert metrics["active"]["basis"] == "served" and metrics["active"]["version"] == second.candidate_version
    assert third.candidate_version == second.candidate_version  # same data, same model
    assert metrics["active"]["accuracy"] == metrics["candidate"]["accuracy"]
    assert isinstance(load_model(models, str(third.candidate_version)), IntentModel)
