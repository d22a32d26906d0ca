"""The trainer loop: inbox actions, background retraining, evaluation, activation, rollback and export."""

from __future__ import annotations

import logging
import random
import threading
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from domain.errors import ConflictError, ValidationError
from domain.models import IntentPrediction
from nlu.intent import check_training_data
from nlu.rasa_yaml import NluData, dump_nlu, from_pairs, read_nlu
from nlu.review import Cluster, cluster, reasons_for

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


class TrainedModel(Protocol):
    """An intent model the loop can evaluate, save and serve."""

    version: str
    intents: tuple[str, ...]

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction: ...


class ModelFactory(Protocol):
    """Trains and loads intent models (the configured method)."""

    method: str

    def train(self, pairs: Sequence[tuple[str, str]], oos_texts: Sequence[str], progress: Progress) -> TrainedModel:
        ...

    def load(self, version: str) -> TrainedModel | None: ...


class Encoder(Protocol):
    """The shared sentence encoder."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class TrainerStorePort(Protocol):
    """``storage.trainer.TrainerStore``."""

    def register_version(self, version: str, method: str, status: str, training_size: int,
                         metrics: dict[str, Any], created_by: str) -> Any: ...

    def version(self, version: str) -> Any: ...

    def active_version(self) -> Any: ...

    def activate(self, version: str, actor: str) -> Any: ...

    def add_example(self, text: str, intent: str | None, actor: str, message_id: int | None = None) -> Any: ...

    def examples(self) -> list[Any]: ...

    def add_regression_case(self, text: str, expected_intent: str | None, actor: str,
                            message_id: int | None = None) -> Any: ...

    def regression_cases(self) -> list[Any]: ...

    def review(self, message_id: int, action: str, intent: str | None, actor: str) -> None: ...

    def message_text(self, message_id: int) -> str: ...

    def inbox_candidates(self, low_confidence: float, ambiguous_margin: float, limit: int = 500) -> list[Any]: ...

    def start_job(self, actor: str) -> Any: ...

    def update_job(self, job_id: int, **changes: Any) -> None: ...


@dataclass(frozen=True)
class TrainingSet:
    """nlu.yml plus the trainers' additions: what the next model learns from."""

    pairs: tuple[tuple[str, str], ...]
    oos_texts: tuple[str, ...]
    base: NluData


@dataclass(frozen=True)
class InboxView:
    """The inbox: clusters of similar messages with the messages themselves."""

    clusters: list[Cluster]
    items: dict[int, Any]
    reasons: dict[int, list[str]]


ACTIONS = ("relabel", "add_example", "mark_oos", "ignore")


class TrainerLoop:
    """What trainers do; the serving model only changes on :meth:`activate`."""

    def __init__(self, store: TrainerStorePort, factory: ModelFactory, encoder: Encoder, training_data: Path,
                 active_model: Callable[[], TrainedModel], on_activate: Callable[[TrainedModel], None],
                 low_confidence: float = 0.5, ambiguous_margin: float | None = None, heldout_fraction: float = 0.1,
                 cluster_threshold: float = 0.75, seed: int = 13) -> None:
        self.store = store
        self.factory = factory
        self.encoder = encoder
        self.training_data = training_data
        self.active_model = active_model
        self.on_activate = on_activate
        self.low_confidence = low_confidence
        self.ambiguous_margin = ambiguous_margin
        self.heldout_fraction = heldout_fraction
        self.cluster_threshold = cluster_threshold
        self.seed = seed
        self._vectors: dict[int, np.ndarray] = {}
        self._threads: list[threading.Thread] = []

    # --- the inbox -----------------------------------------------------------------------------

    def inbox(self, limit: int = 300) -> InboxView:
        """Unreviewed likely misclassifications, grouped into clusters of similar messages."""
        margin = self.inbox_margin()
        items = self.store.inbox_candidates(self.low_confidence, margin, limit)
        missing = [i for i in items if i.message_id not in self._vectors]
        if missing:
            for item, vector in zip(missing, self.encoder.encode([i.text for i in missing]), strict=True):
                self._vectors[item.message_id] = vector
        reasons = {i.message_id: reasons_for(i, self.low_confidence, margin) for i in items}
        vectors = np.array([self._vectors[i.message_id] for i in items]) if items else np.zeros((0, 1))
        clusters = cluster(items, vectors, self.cluster_threshold, [reasons[i.message_id] for i in items])
        return InboxView(clusters, {i.message_id: i for i in items}, reasons)

    def inbox_margin(self) -> float:
        """The top-2 margin below which a prediction is ambiguous: configured, or the serving model's learned one."""
        if self.ambiguous_margin is not None:
            return self.ambiguous_margin
        learned = getattr(self.active_model(), "ambiguous_margin", None)
        return float(learned) if learned is not None else 0.0

    def act(self, message_ids: Sequence[int], action: str, actor: str, intent: str | None = None,
            keep_as_regression: bool = False, known_intents: frozenset[str] = frozenset()) -> int:
        """Apply one action to messages (a whole cluster at once if asked); returns how many.

        relabel: the message becomes an example of ``intent``; add_example: an example of ``intent`` (the
        prediction confirmed); mark_oos: an out-of-scope example; ignore: only leaves the inbox.
        """
        if action not in ACTIONS:
            raise ValidationError(f"unknown action '{action}'; use one of {', '.join(ACTIONS)}")
        if action in ("relabel", "add_example"):
            if not intent:
                raise ValidationError(f"'{action}' needs an intent")
            if known_intents and intent not in known_intents:
                raise ValidationError(f"unknown intent '{intent}'; add it to nlu.yml first")
        if not message_ids:
            raise ValidationError("no messages given")
        for message_id in message_ids:
            text = self.store.message_text(message_id)
            label = None if action == "mark_oos" else intent
            if action != "ignore":
                self.store.add_example(text, label, actor, message_id)
                if keep_as_regression:
                    self.store.add_regression_case(text, label, actor, message_id)
            self.store.review(message_id, action, label, actor)
            self._vectors.pop(message_id, None)
        return len(message_ids)

    # --- data ----------------------------------------------------------------------------------

    def training_set(self) -> TrainingSet:
        """nlu.yml, with trainer-added examples relabelling or extending it (the trainer's label wins)."""
        base = read_nlu(self.training_data)
        labels: dict[str, str | None] = dict(base.training_examples())
        for example in self.store.examples():
            labels[example.text] = example.intent
        pairs = tuple((text, intent) for text, intent in labels.items() if intent is not None)
        oos = tuple(text for text, intent in labels.items() if intent is None)
        return TrainingSet(pairs, oos, base)

    def export_yaml(self) -> str:
        """The corrected training data as Rasa ``nlu.yml`` (synonyms, regexes and lookups kept)."""
        data = self.training_set()
        return dump_nlu(from_pairs(data.pairs, keep=data.base))

    # --- retraining ----------------------------------------------------------------------------

    def start_retrain(self, actor: str, wait: bool = False) -> int:
        """Queue a retrain in the background; returns the job id. The active model keeps serving."""
        data = self.training_set()
        check_training_data(list(data.pairs))
        job = self.store.start_job(actor)
        thread = threading.Thread(target=self._retrain, args=(job.id, actor, data), name=f"retrain-{job.id}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        if wait:
            thread.join()
        return int(job.id)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for running retrains (tests, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _retrain(self, job_id: int, actor: str, data: TrainingSet) -> None:
        def progress(fraction: float, stage: str) -> None:
            self.store.update_job(job_id, progress=round(max(0.0, min(1.0, fraction)), 3), stage=stage)

        try:
            self.store.update_job(job_id, status="running", stage="splitting the data")
            train, heldout = split_heldout(data.pairs, self.heldout_fraction, self.seed)
            model = self.factory.train(train, data.oos_texts,
                                       lambda f, s: progress(0.05 + 0.75 * f, s))
            progress(0.85, "evaluating against the held-out slice, the regression cases and the active model")
            metrics = self.compare(model, heldout)
            self.store.register_version(model.version, self.factory.method, "candidate", len(train), metrics, actor)
            self.store.update_job(job_id, status="succeeded", progress=1.0, stage="done",
                                  candidate_version=model.version)
        except Exception as e:  # a failed retrain must leave the active model serving
            log.error("retrain job %s failed: %s\n%s", job_id, type(e).__name__,
                      "".join(traceback.format_tb(e.__traceback__)))
            self.store.update_job(job_id, status="failed", stage="failed", error=f"{type(e).__name__}: {e}"[:2000])

    def compare(self, candidate: TrainedModel, heldout: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Candidate and active model on the held-out slice and the regression cases."""
        cases = self.store.regression_cases()
        texts = [t for t, _ in heldout] + [c.text for c in cases]
        vectors = self.encoder.encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        held_vectors, case_vectors = vectors[: len(heldout)], vectors[len(heldout):]
        active = self.active_model()
        result: dict[str, Any] = {"heldout_size": len(heldout), "regression_cases": len(cases)}
        for name, model in (("candidate", candidate), ("active", active)):
            predictions = [model.predict(t, v) for (t, _), v in zip(heldout, held_vectors, strict=True)]
            scores = score([label for _, label in heldout], [p.intent for p in predictions])
            failures = [c.text for c, v in zip(cases, case_vectors, strict=True)
                        if model.predict(c.text, v).intent != c.expected_intent]
            result[name] = {"version": model.version, **scores, "regression_failures": failures}
        return result

    def activate(self, version: str, actor: str, force: bool = False) -> Any:
        """Serve a version (a candidate, or an earlier one: rollback); refuses one that fails regression cases."""
        record = self.store.version(version)
        failures = record.metrics.get("candidate", {}).get("regression_failures") or []
        if failures and not force:
            raise ConflictError(f"version {version} fails {len(failures)} regression case(s), e.g. "
                                f"{failures[0]!r}; fix the data or activate with force")
        model = self.factory.load(version)
        if model is None:
            raise ConflictError(f"the files of version {version} are missing; retrain instead")
        self.on_activate(model)
        return self.store.activate(version, actor)


def split_heldout(pairs: Sequence[tuple[str, str]], fraction: float, seed: int
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A stratified, seeded held-out slice; intents with fewer than 5 examples stay whole in training."""
    by_intent: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pair in pairs:
        by_intent[pair[1]].append(pair)
    rng = random.Random(seed)
    train: list[tuple[str, str]] = []
    heldout: list[tuple[str, str]] = []
    for intent in sorted(by_intent):
        group = sorted(by_intent[intent])
        rng.shuffle(group)
        take = round(len(group) * fraction) if len(group) >= 5 else 0
        heldout.extend(group[:take])
        train.extend(group[take:])
    return train, heldout


def score(gold: Sequence[str | None], predicted: Sequence[str | None]) -> dict[str, float]:
    """Accuracy and macro-F1 over the gold labels (None = out of scope is a label too)."""
    if not gold:
        return {"accuracy": 0.0, "macro_f1": 0.0}
    accuracy = sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)
    f1s = []
    for label in sorted(Counter(gold), key=str):
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": round(accuracy, 4), "macro_f1": round(sum(f1s) / len(f1s), 4)}
