"""The trainers' loop as the rest of the system sees it: model versions, added examples, regression cases,
reviews, retrain jobs and inbox candidates, with the states and actions they take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class VersionStatus(StrEnum):
    """Where a trained model stands; exactly one version is active."""

    CANDIDATE = "candidate"  # trained, waiting for a trainer's decision
    ACTIVE = "active"
    RETIRED = "retired"  # was active
    REJECTED = "rejected"  # a trainer kept the active model instead


class JobStatus(StrEnum):
    """A retrain job's life cycle."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ReviewAction(StrEnum):
    """What a trainer does with a message in the inbox."""

    RELABEL = "relabel"  # it becomes an example of another intent
    ADD_EXAMPLE = "add_example"  # the prediction was right: an example of that intent
    MARK_OOS = "mark_oos"  # an out-of-scope example
    IGNORE = "ignore"  # only leaves the inbox


JOB_STEPS = ("queued", "preparing", "encoding", "fitting", "evaluating", "saving", "done", "failed")


@dataclass(frozen=True)
class ModelVersion:
    """A trained model as the trainer sees it."""

    version: str
    method: str
    status: VersionStatus
    training_size: int
    metrics: dict[str, Any]
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    activated_by: str | None
    rejected_at: datetime | None = None
    rejected_by: str | None = None
    pruned_at: datetime | None = None  # the model file was deleted: it can no longer be activated


@dataclass(frozen=True)
class TrainingExample:
    """An example added in the trainer loop (intent None: out of scope)."""

    id: int
    text: str
    intent: str | None
    created_by: str
    created_at: datetime
    message_id: int | None = None  # the inbox message whose review added it (the latest one, if several)


@dataclass(frozen=True)
class RegressionCase:
    """A message every future model must classify as expected (None: out of scope)."""

    id: int
    text: str
    expected_intent: str | None
    created_by: str
    created_at: datetime
    message_id: int | None = None


@dataclass(frozen=True)
class Review:
    """A trainer's decision on an inbox message."""

    message_id: int
    text: str
    action: ReviewAction
    intent: str | None
    reviewed_by: str
    reviewed_at: datetime


@dataclass(frozen=True)
class UndoneReview:
    """What undoing a review took back: the message is in the inbox again."""

    message_id: int
    action: ReviewAction
    removed_example: bool  # the training example this review added
    removed_regression_case: bool


@dataclass(frozen=True)
class RetrainJob:
    """A background retrain; ``step`` is one of ``JOB_STEPS``, ``stage`` says what it does in words."""

    id: int
    status: JobStatus
    progress: float
    step: str
    stage: str
    error: str | None
    candidate_version: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class InboxCandidate:
    """A customer message that may have been misclassified, with why it is in the inbox."""

    message_id: int
    conversation_id: str
    text: str
    created_at: datetime
    intent: str | None
    top_intent: str | None
    confidence: float
    margin: float
    out_of_scope: bool
    model_version: str
    corrected_intent: str | None
    unhelpful: bool
