"""The trainer loop: inbox actions and their undo, background retraining, evaluation, activation, rollback,
pruning of old model files, and export."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.ports import Encoder
from domain.trainer import JobStatus, ReviewAction, VersionStatus
from nlu.heldout import HELDOUT_RULE, HeldOutSplit, heldout_scores, split_heldout
from nlu.intent import check_training_data
from nlu.rasa_yaml import NluData, dump_nlu, from_pairs, read_nlu
from nlu.review import Cluster, cluster, reasons_for
from nlu.trainer_ports import ModelFactory, Progress, TrainedModel, TrainerStorePort

log = logging.getLogger(__name__)

STARTUP = "startup"  # who registers the model trained from nlu.yml at startup (wiring)
ENCODE_BATCH = 64


@dataclass(frozen=True)
class TrainingSet:
    """nlu.yml plus the trainers' additions: what the next model learns from."""

    pairs: tuple[tuple[str, str], ...]
    oos_texts: tuple[str, ...]
    base: NluData
    corrections: frozenset[str] = frozenset()  # texts of trainers' in-scope examples (never held out)


@dataclass(frozen=True)
class InboxView:
    """The inbox: clusters of similar messages with the messages themselves."""

    clusters: list[Cluster]
    items: dict[int, Any]
    reasons: dict[int, list[str]]


@dataclass(frozen=True)
class RegressionFailure:
    """A regression case a model gets wrong (intent None: out of scope)."""

    text: str
    expected: str | None
    predicted: str | None

    def describe(self) -> str:
        """``'text' (expected x, got y)``."""
        return f"{self.text!r} (expected {self.expected or 'out of scope'}, got {self.predicted or 'out of scope'})"


class RegressionCasesFailed(ConflictError):
    """Activation refused: the version gets regression cases wrong (listed in the message and ``failures``)."""

    SHOWN = 10

    def __init__(self, version: str, failures: Sequence[RegressionFailure], total: int) -> None:
        self.version = version
        self.failures = tuple(failures)
        listed = "; ".join(f.describe() for f in self.failures[: self.SHOWN])
        more = f"; and {len(self.failures) - self.SHOWN} more" if len(self.failures) > self.SHOWN else ""
        super().__init__(f"version {version} fails {len(self.failures)} of {total} regression case(s): "
                         f"{listed}{more}. Fix the data and retrain, or activate with force")


# How the active model is scored on the held-out slice (recorded with each comparison, shown on the page):
# "served": the serving model itself (it was trained without the slice); "refit": the startup model learnt from
# all of nlu.yml, so its recipe (nlu.yml, same method) is fitted again without the slice; "served_unsure": the
# serving model itself, trained under another held-out rule or unknown, so it may have seen part of the slice.
BASES = ("served", "refit", "served_unsure")


class TrainerLoop:
    """What trainers do; the serving model only changes on :meth:`activate`.

    Comparison: every candidate is trained without the held-out slice of ``nlu.heldout`` (by text hash, so the
    slice does not move when the data changes) and scored on it; the active model is scored on the same slice
    as it serves when it was trained under the same rule, else (the startup model) by fitting its recipe again
    without the slice. Activation runs today's regression cases through the very model being activated.
    """

    def __init__(self, store: TrainerStorePort, factory: ModelFactory[Any], encoder: Encoder, training_data: Path,
                 active_model: Callable[[], TrainedModel], on_activate: Callable[[TrainedModel], None],
                 low_confidence: float = 0.5, ambiguous_margin: float | None = None, heldout_fraction: float = 0.1,
                 cluster_threshold: float = 0.75, keep_versions: int = 10) -> None:
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
        self.keep_versions = keep_versions
        self._vectors: dict[int, np.ndarray] = {}
        # Activation and pruning: a version being activated is never deleted under it.
        self._versions_lock = threading.Lock()
        # The startup model's recipe fitted without the slice, by its data: one fit per slice, not per retrain.
        self._stand_in: tuple[str, TrainedModel] | None = None

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
        try:
            action = ReviewAction(action)
        except ValueError as e:
            raise ValidationError(f"unknown action '{action}'; use one of {', '.join(ReviewAction)}") from e
        if action in (ReviewAction.RELABEL, ReviewAction.ADD_EXAMPLE):
            if not intent:
                raise ValidationError(f"'{action}' needs an intent")
            if known_intents and intent not in known_intents:
                raise ValidationError(f"unknown intent '{intent}'; add it to nlu.yml first")
        if not message_ids:
            raise ValidationError("no messages given")
        for message_id in message_ids:
            text = self.store.message_text(message_id)
            label = None if action == ReviewAction.MARK_OOS else intent
            if action != ReviewAction.IGNORE:
                self.store.add_example(text, label, actor, message_id)
                if keep_as_regression:
                    self.store.add_regression_case(text, label, actor, message_id)
            self.store.review(message_id, action, label, actor)
            self._vectors.pop(message_id, None)
        return len(message_ids)

    def undo_review(self, message_id: int) -> Any:
        """Take a decision back: the message returns to the inbox with what the decision added removed."""
        return self.store.undo_review(message_id)

    # --- data ----------------------------------------------------------------------------------

    def training_set(self) -> TrainingSet:
        """nlu.yml, with trainer-added examples relabelling or extending it (the trainer's label wins)."""
        base = read_nlu(self.training_data)
        labels: dict[str, str | None] = dict(base.training_examples())
        added = self.store.examples()
        for example in added:
            labels[example.text] = example.intent
        pairs = tuple((text, intent) for text, intent in labels.items() if intent is not None)
        oos = tuple(text for text, intent in labels.items() if intent is None)
        corrections = frozenset(e.text for e in added if e.intent is not None)
        return TrainingSet(pairs, oos, base, corrections)

    def export_yaml(self) -> str:
        """The corrected training data as Rasa ``nlu.yml`` (synonyms, regexes and lookups kept)."""
        data = self.training_set()
        return dump_nlu(from_pairs(data.pairs, keep=data.base))

    # --- retraining ----------------------------------------------------------------------------

    def start_retrain(self, actor: str) -> int:
        """Queue a retrain; returns the job id. A process's retrain runner (``nlu.retrain_runner``) takes it and
        runs :meth:`run_job`; the active model keeps serving meanwhile.

        Raises:
            ValidationError: the training data cannot make a model (checked before queueing).
            ConflictError: another retrain is queued or running.
        """
        check_training_data(list(self.training_set().pairs))
        return int(self.store.start_job(actor).id)

    def run_job(self, job_id: int) -> None:
        """Run a claimed job to its end (in the calling thread); any failure is recorded on the job."""
        job = self.store.job(job_id)
        try:
            data = self.training_set()
        except Exception as e:  # the training file became unreadable since the job was queued
            self.store.update_job(job_id, status=JobStatus.FAILED, step="failed", stage="failed",
                                  error=f"{type(e).__name__}: {e}"[:2000])
            return
        self._retrain(job_id, job.created_by, data)

    def _retrain(self, job_id: int, actor: str, data: TrainingSet) -> None:
        """The job: preparing, encoding, fitting (the candidate, and the active model's stand-in if needed),
        evaluating, saving (and pruning). Any failure leaves the active model serving."""
        report = JobReporter(self.store, job_id)
        try:
            self.store.update_job(job_id, status=JobStatus.RUNNING)
            report("preparing", 0.0, "choosing the held-out slice")
            cases = self.store.regression_cases()
            split = split_heldout(data.pairs, data.oos_texts, self.heldout_fraction,
                                  keep_in_training=data.corrections | {c.text for c in cases})
            active = self.active_model()
            basis = self.active_basis(active.version)
            refit_pairs = ([p for p in data.base.training_examples() if p[0] not in split.heldout_texts]
                           if basis == "refit" and split.heldout else None)
            texts = unique([t for t, _ in split.train_pairs], split.train_oos, [t for t, _ in split.heldout],
                           [c.text for c in cases], [t for t, _ in refit_pairs or ()])
            vectors = self._encode(texts, report.part("encoding", 0.02, 0.3))
            # The active model's recipe without the slice: no fit when it is the candidate's data (no corrections
            # yet) or was fitted for this slice before.
            refit_key = _data_key(refit_pairs, ()) if refit_pairs else ""
            same_as_candidate = refit_key == _data_key(split.train_pairs, split.train_oos)
            stand_in = self._stand_in[1] if self._stand_in and self._stand_in[0] == refit_key else None
            fit_end = 0.6 if refit_pairs and not same_as_candidate and stand_in is None else 0.85
            model = self.factory.fit(split.train_pairs, _stack(vectors, [t for t, _ in split.train_pairs]),
                                     split.train_oos, _stack(vectors, split.train_oos),
                                     report.part("fitting", 0.3, fit_end))
            if refit_pairs and same_as_candidate:
                stand_in = model
            elif refit_pairs and stand_in is None:
                stand_in = self.factory.fit(refit_pairs, _stack(vectors, [t for t, _ in refit_pairs]), (),
                                            _stack(vectors, ()),
                                            report.part("fitting", fit_end, 0.85, "refitting the active model: "))
                self._stand_in = (refit_key, stand_in)
            report("evaluating", 0.88, "scoring the held-out slice and the regression cases")
            metrics = self.evaluate(model, split, cases, vectors, active, stand_in, basis)
            report("saving", 0.95, "saving the candidate")
            self.factory.save(model)
            self.store.register_version(model.version, self.factory.method, VersionStatus.CANDIDATE,
                                        len(split.train_pairs) + len(split.train_oos), metrics, actor)
            pruned = self.prune()
            if pruned:
                log.info("retrain job %s: pruned the model files of %d old version(s)", job_id, len(pruned))
            self.store.update_job(job_id, status=JobStatus.SUCCEEDED, step="done", progress=1.0, stage="done",
                                  candidate_version=model.version)
        except Exception as e:  # a failed retrain must leave the active model serving
            log.error("retrain job %s failed: %s\n%s", job_id, type(e).__name__,
                      "".join(traceback.format_tb(e.__traceback__)))
            self.store.update_job(job_id, status=JobStatus.FAILED, step="failed", stage="failed",
                                  error=f"{type(e).__name__}: {e}"[:2000])

    def _encode(self, texts: Sequence[str], progress: Progress) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        progress(0.0, f"encoding {len(texts)} texts")
        for start in range(0, len(texts), ENCODE_BATCH):
            batch = list(texts[start : start + ENCODE_BATCH])
            out.update(zip(batch, self.encoder.encode(batch), strict=True))
            progress(len(out) / len(texts), f"encoding the examples ({len(out)} of {len(texts)})")
        return out

    def active_basis(self, version: str) -> str:
        """How the active version is scored on the held-out slice (one of ``BASES``).

        "refit" fits nlu.yml as it is now: the startup model's data, unless the file changed without a restart.
        """
        try:
            record = self.store.version(version)
        except NotFoundError:
            return "served_unsure"
        rule = record.metrics.get("heldout") or {}
        if rule.get("rule") == HELDOUT_RULE and rule.get("fraction") == self.heldout_fraction:
            return "served"
        return "refit" if record.created_by == STARTUP else "served_unsure"

    def evaluate(self, candidate: TrainedModel, split: HeldOutSplit, cases: Sequence[Any],
                 vectors: Mapping[str, np.ndarray], active: TrainedModel | None = None,
                 stand_in: TrainedModel | None = None, basis: str = "served") -> dict[str, Any]:
        """The comparison stored with a candidate: held-out scores and regression failures of both models.

        Args:
            stand_in: scored on the slice in place of ``active`` (basis "refit"); regression cases always run
                through the serving model itself.
        """
        gold = [intent for _, intent in split.heldout]

        def on_slice(model: TrainedModel) -> dict[str, Any]:
            predicted = [model.predict(text, vectors[text]).intent for text, _ in split.heldout]
            return heldout_scores(gold, predicted)

        def failures(model: TrainedModel) -> list[dict[str, Any]]:
            return [f.__dict__ for f in self.regression_failures(model, cases, vectors)]

        n_oos = sum(intent is None for intent in gold)
        result: dict[str, Any] = {
            "heldout": {"rule": HELDOUT_RULE, "fraction": self.heldout_fraction, "in_scope": len(gold) - n_oos,
                        "out_of_scope": n_oos},
            "heldout_size": len(gold), "regression_cases": len(cases),
            "candidate": {"version": candidate.version, **on_slice(candidate),
                          "regression_failures": failures(candidate)},
        }
        if active is not None:
            result["active"] = {"version": active.version, "basis": basis, **on_slice(stand_in or active),
                                "regression_failures": failures(active)}
        return result

    def regression_failures(self, model: TrainedModel, cases: Sequence[Any] | None = None,
                            vectors: Mapping[str, np.ndarray] | None = None) -> list[RegressionFailure]:
        """Today's regression cases this model gets wrong (encoded here unless ``vectors`` has them)."""
        cases = self.store.regression_cases() if cases is None else cases
        if vectors is None:
            texts = [c.text for c in cases]
            vectors = dict(zip(texts, self.encoder.encode(texts), strict=True)) if texts else {}
        out = []
        for case in cases:
            predicted = model.predict(case.text, vectors[case.text]).intent
            if predicted != case.expected_intent:
                out.append(RegressionFailure(case.text, case.expected_intent, predicted))
        return out

    # --- versions ------------------------------------------------------------------------------

    def activate(self, version: str, actor: str, force: bool = False) -> Any:
        """Serve a version (a candidate, or an earlier one: rollback).

        Raises:
            NotFoundError: no such version.
            ConflictError: its model file was pruned or is missing.
            RegressionCasesFailed: it gets today's regression cases wrong and ``force`` is not set.
        """
        with self._versions_lock:
            record = self.store.version(version)
            if record.pruned_at is not None:
                raise ConflictError(
                    f"version {version} is no longer available: its model file was deleted on "
                    f"{record.pruned_at:%Y-%m-%d} to save space (the service keeps the active version, the "
                    f"{self.keep_versions} newest and candidates waiting for a decision); retrain instead")
            model = self.factory.load(version)
            if model is None:
                raise ConflictError(f"the files of version {version} are missing; retrain instead")
            cases = self.store.regression_cases()
            failed = self.regression_failures(model, cases)
            if failed and not force:
                raise RegressionCasesFailed(version, failed, len(cases))
            if failed:
                log.warning("version %s activated by %s despite %d failing regression case(s)", version, actor,
                            len(failed))
            self.on_activate(model)
            return self.store.activate(version, actor)

    def reject(self, version: str, actor: str) -> Any:
        """Keep the active model: the candidate is marked rejected (who and when)."""
        return self.store.reject(version, actor)

    def prune(self) -> list[str]:
        """Delete the model files nobody will serve; returns their versions.

        Kept: the active version (and the one serving now), the ``keep_versions`` newest, candidates waiting for
        a decision, and the newest startup version (the next start loads it instead of training).
        """
        with self._versions_lock:
            versions = self.store.versions()  # newest first
            keep = {v.version for v in versions[: self.keep_versions]}
            keep |= {v.version for v in versions if v.status in (VersionStatus.ACTIVE, VersionStatus.CANDIDATE)}
            startup = next((v.version for v in versions if v.created_by == STARTUP), None)
            keep |= {self.active_model().version} | ({startup} if startup else set())
            pruned = []
            for record in versions:
                if record.version in keep or record.pruned_at is not None:
                    continue
                try:
                    self.factory.remove(record.version)
                except OSError as e:
                    log.warning("could not delete the model file of %s: %s", record.version, type(e).__name__)
                    continue
                pruned.append(record.version)
            self.store.mark_pruned(pruned)
            return pruned


class JobReporter:
    """Writes a retrain job's step, stage and progress; skips writes that change less than a percent."""

    def __init__(self, store: TrainerStorePort, job_id: int) -> None:
        self.store = store
        self.job_id = job_id
        self._last: tuple[str, str, float] | None = None

    def __call__(self, step: str, fraction: float, stage: str) -> None:
        fraction = round(max(0.0, min(1.0, fraction)), 3)
        if self._last is not None and self._last[:2] == (step, stage) and fraction - self._last[2] < 0.01:
            return
        self._last = (step, stage, fraction)
        self.store.update_job(self.job_id, step=step, progress=fraction, stage=stage)

    def part(self, step: str, start: float, end: float, prefix: str = "") -> Progress:
        """A progress callback (0..1 of one part) mapped onto [start, end] of the whole job."""
        return lambda f, s: self(step, start + (end - start) * max(0.0, min(1.0, f)), prefix + s)


def unique(*groups: Iterable[str]) -> list[str]:
    """Texts of several lists once each, in first-seen order."""
    return list(dict.fromkeys(text for group in groups for text in group))


def _data_key(pairs: Iterable[tuple[str, str]], oos_texts: Iterable[str]) -> str:
    """One string for a training set, whatever its order."""
    material = json.dumps([sorted(pairs), sorted(oos_texts)], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _stack(vectors: Mapping[str, np.ndarray], texts: Sequence[str]) -> np.ndarray:
    if not texts:
        width = len(next(iter(vectors.values()))) if vectors else 1
        return np.zeros((0, width), dtype=np.float32)
    return np.stack([vectors[t] for t in texts])
