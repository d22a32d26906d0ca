"""The trainer loop's contracts: the models it serves, the factory that fits them, the encoder and the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from domain.models import IntentPrediction
from domain.trainer import (
    InboxCandidate,
    ModelVersion,
    RegressionCase,
    RetrainJob,
    ReviewAction,
    TrainingExample,
    UndoneReview,
    VersionStatus,
)

Progress = Callable[[float, str], None]


class TrainedModel(Protocol):
    """An intent model the loop can evaluate, save and serve."""

    version: str
    intents: tuple[str, ...]

    def predict(self, text: str, vector: np.ndarray) -> IntentPrediction: ...


M = TypeVar("M", bound=TrainedModel)


class ModelFactory(Protocol[M]):
    """Fits, saves, loads and deletes intent models of the configured method (models of type ``M``)."""

    method: str

    def fit(self, pairs: Sequence[tuple[str, str]], vectors: np.ndarray, oos_texts: Sequence[str],
            oos_vectors: np.ndarray, progress: Progress) -> M:
        """A model of these examples; nothing is written until :meth:`save`."""
        ...

    def save(self, model: M) -> None: ...

    def load(self, version: str) -> M | None:
        """The saved model, or None when its file is gone or unreadable."""
        ...

    def remove(self, version: str) -> bool:
        """Delete the model file; False when there was none."""
        ...


class TrainerStorePort(Protocol):
    """``storage.trainer.TrainerStore``."""

    def register_version(self, version: str, method: str, status: VersionStatus, training_size: int,
                         metrics: dict[str, Any], created_by: str) -> ModelVersion: ...

    def versions(self) -> list[ModelVersion]: ...

    def version(self, version: str) -> ModelVersion: ...

    def activate(self, version: str, actor: str) -> ModelVersion: ...

    def reject(self, version: str, actor: str) -> ModelVersion: ...

    def mark_pruned(self, versions: Sequence[str]) -> int: ...

    def add_example(self, text: str, intent: str | None, actor: str,
                    message_id: int | None = None) -> TrainingExample: ...

    def examples(self) -> list[TrainingExample]: ...

    def add_regression_case(self, text: str, expected_intent: str | None, actor: str,
                            message_id: int | None = None) -> RegressionCase: ...

    def regression_cases(self) -> list[RegressionCase]: ...

    def review(self, message_id: int, action: ReviewAction, intent: str | None, actor: str) -> None: ...

    def undo_review(self, message_id: int) -> UndoneReview: ...

    def message_text(self, message_id: int) -> str: ...

    def inbox_candidates(self, low_confidence: float, ambiguous_margin: float,
                         limit: int = 500) -> list[InboxCandidate]: ...

    def start_job(self, actor: str) -> RetrainJob: ...

    def update_job(self, job_id: int, **changes: Any) -> None:
        """Progress, step, stage, status (a ``JobStatus``), error, candidate version."""
        ...

    def job(self, job_id: int) -> RetrainJob: ...
