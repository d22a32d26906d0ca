"""The trainers' data: model versions, added examples, regression cases, reviews, retrain jobs, the inbox query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from domain.enums import Sender, Topic
from domain.errors import ConflictError, NotFoundError
from domain.trainer import (
    InboxCandidate,
    JobStatus,
    ModelVersion,
    RegressionCase,
    RetrainJob,
    Review,
    ReviewAction,
    TrainingExample,
    UndoneReview,
    VersionStatus,
)
from storage.changes import publish
from storage.db import Database, rowcount
from storage.tables import (
    IntentCorrectionRow,
    MessageRow,
    ModelVersionRow,
    PredictionRow,
    RegressionCaseRow,
    RetrainJobRow,
    ReviewRow,
    TrainingExampleRow,
    utcnow,
)

ACTIVE_JOB_STATES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class TrainerStore:
    """Persistence of the trainer loop."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- model versions ----------------------------------------------------------------------

    def register_version(self, version: str, method: str, status: VersionStatus, training_size: int,
                         metrics: dict[str, Any], created_by: str) -> ModelVersion:
        """Record a trained model whose file was just written.

        Idempotent per version: metrics are refreshed and a pruned file counts as there again; the status stays
        (a version trained again keeps its history: retired, rejected).
        """
        with self.db.session() as s:
            row = s.scalars(select(ModelVersionRow).where(ModelVersionRow.version == version)).first()
            if row is None:
                row = ModelVersionRow(version=version, method=method, status=status, training_size=training_size,
                                      metrics=metrics, created_by=created_by)
                s.add(row)
            else:
                row.metrics, row.training_size, row.pruned_at = metrics, training_size, None
            s.flush()
            return _version(row)

    def versions(self) -> list[ModelVersion]:
        """Every version, newest first."""
        with self.db.read() as s:
            rows = s.scalars(select(ModelVersionRow).order_by(ModelVersionRow.id.desc())).all()
            return [_version(r) for r in rows]

    def version(self, version: str) -> ModelVersion:
        """One version; raises NotFoundError."""
        with self.db.read() as s:
            row = s.scalars(select(ModelVersionRow).where(ModelVersionRow.version == version)).first()
            if row is None:
                raise NotFoundError(f"model version {version} does not exist")
            return _version(row)

    def active_version_name(self) -> str | None:
        """The version serving now (one indexed column: the change feed asks it after every activation)."""
        with self.db.read() as s:
            return s.scalar(select(ModelVersionRow.version).where(ModelVersionRow.status == VersionStatus.ACTIVE.value))

    def active_version(self) -> ModelVersion | None:
        """The version serving now."""
        with self.db.read() as s:
            row = s.scalars(select(ModelVersionRow).where(ModelVersionRow.status == VersionStatus.ACTIVE.value)).first()
            return _version(row) if row else None

    def activate(self, version: str, actor: str) -> ModelVersion:
        """Make a version the active one (the previous active becomes retired)."""
        with self.db.session() as s:
            row = s.scalars(select(ModelVersionRow).where(ModelVersionRow.version == version)).first()
            if row is None:
                raise NotFoundError(f"model version {version} does not exist")
            s.execute(update(ModelVersionRow)
                      .where(ModelVersionRow.status == VersionStatus.ACTIVE.value, ModelVersionRow.id != row.id)
                      .values(status=VersionStatus.RETIRED.value))
            row.status, row.activated_at, row.activated_by = VersionStatus.ACTIVE.value, utcnow(), actor
            publish(s, Topic.MODEL, version)  # every process serves it within a second
            return _version(row)

    def reject(self, version: str, actor: str) -> ModelVersion:
        """A trainer keeps the active model instead of this candidate; raises ConflictError if not a candidate."""
        with self.db.session() as s:
            row = s.scalars(select(ModelVersionRow).where(ModelVersionRow.version == version)).first()
            if row is None:
                raise NotFoundError(f"model version {version} does not exist")
            if row.status != VersionStatus.CANDIDATE.value:
                raise ConflictError(f"version {version} is {row.status}, not a candidate waiting for a decision")
            row.status, row.rejected_at, row.rejected_by = VersionStatus.REJECTED.value, utcnow(), actor
            return _version(row)

    def mark_pruned(self, versions: Sequence[str]) -> int:
        """Record that these versions' model files were deleted."""
        if not versions:
            return 0
        with self.db.session() as s:
            return rowcount(s.execute(update(ModelVersionRow)
                                      .where(ModelVersionRow.version.in_(list(versions)),
                                             ModelVersionRow.pruned_at.is_(None))
                                      .values(pruned_at=utcnow())))

    # --- examples, regression cases, reviews ------------------------------------------------

    def add_example(self, text: str, intent: str | None, actor: str, message_id: int | None = None
                    ) -> TrainingExample:
        """Add (or relabel) an example; the same text keeps one label."""
        with self.db.session() as s:
            row = s.scalars(select(TrainingExampleRow).where(TrainingExampleRow.text == text)).first()
            if row is None:
                row = TrainingExampleRow(text=text, intent=intent, message_id=message_id, created_by=actor)
                s.add(row)
            else:  # the latest decision owns the example (undoing it removes the example)
                row.intent, row.created_by, row.created_at = intent, actor, utcnow()
                row.message_id = message_id
            s.flush()
            return _example(row)

    def examples(self) -> list[TrainingExample]:
        """Trainer-added examples, oldest first."""
        with self.db.read() as s:
            rows = s.scalars(select(TrainingExampleRow).order_by(TrainingExampleRow.id)).all()
            return [_example(r) for r in rows]

    def remove_example(self, example_id: int) -> None:
        """Delete a trainer-added example."""
        with self.db.session() as s:
            if not rowcount(s.execute(delete(TrainingExampleRow).where(TrainingExampleRow.id == example_id))):
                raise NotFoundError(f"training example {example_id} does not exist")

    def add_regression_case(self, text: str, expected_intent: str | None, actor: str,
                            message_id: int | None = None) -> RegressionCase:
        """Keep a message as a case every future model must pass."""
        with self.db.session() as s:
            row = s.scalars(select(RegressionCaseRow).where(RegressionCaseRow.text == text)).first()
            if row is None:
                row = RegressionCaseRow(text=text, expected_intent=expected_intent, message_id=message_id,
                                        created_by=actor)
                s.add(row)
            else:
                row.expected_intent, row.created_by, row.message_id = expected_intent, actor, message_id
            s.flush()
            return _case(row)

    def regression_cases(self) -> list[RegressionCase]:
        """All regression cases."""
        with self.db.read() as s:
            rows = s.scalars(select(RegressionCaseRow).order_by(RegressionCaseRow.id)).all()
            return [_case(r) for r in rows]

    def remove_regression_case(self, case_id: int) -> None:
        """Drop a regression case."""
        with self.db.session() as s:
            if not rowcount(s.execute(delete(RegressionCaseRow).where(RegressionCaseRow.id == case_id))):
                raise NotFoundError(f"regression case {case_id} does not exist")

    def review(self, message_id: int, action: ReviewAction, intent: str | None, actor: str) -> None:
        """Record the trainer's decision on an inbox message (the latest decision counts)."""
        with self.db.session() as s:
            if s.get(MessageRow, message_id) is None:
                raise NotFoundError(f"message {message_id} does not exist")
            row = s.scalars(select(ReviewRow).where(ReviewRow.message_id == message_id)).first()
            if row is None:
                s.add(ReviewRow(message_id=message_id, action=action, intent=intent, reviewed_by=actor))
            else:
                row.action, row.intent, row.reviewed_by, row.reviewed_at = action, intent, actor, utcnow()

    def reviews(self, limit: int = 50) -> list[Review]:
        """The latest decisions, newest first."""
        with self.db.read() as s:
            rows = s.execute(select(ReviewRow, MessageRow.text).join(MessageRow, MessageRow.id == ReviewRow.message_id)
                             .order_by(ReviewRow.reviewed_at.desc(), ReviewRow.id.desc()).limit(limit)).all()
            return [Review(r.message_id, text, ReviewAction(r.action), r.intent, r.reviewed_by, r.reviewed_at)
                    for r, text in rows]

    def undo_review(self, message_id: int) -> UndoneReview:
        """Take a decision back: the message returns to the inbox, and the training example and regression case
        the decision added go (unless a later decision on the same text owns them now). Raises NotFoundError."""
        with self.db.session() as s:
            row = s.scalars(select(ReviewRow).where(ReviewRow.message_id == message_id)).first()
            if row is None:
                raise NotFoundError(f"message {message_id} has no review to undo")
            action = row.action
            s.delete(row)
            example = rowcount(s.execute(delete(TrainingExampleRow)
                                         .where(TrainingExampleRow.message_id == message_id)))
            case = rowcount(s.execute(delete(RegressionCaseRow).where(RegressionCaseRow.message_id == message_id)))
            return UndoneReview(message_id, ReviewAction(action), bool(example), bool(case))

    def message_text(self, message_id: int) -> str:
        """The text of a customer message; raises NotFoundError."""
        with self.db.read() as s:
            row = s.get(MessageRow, message_id)
            if row is None or row.sender != Sender.CUSTOMER.value:
                raise NotFoundError(f"customer message {message_id} does not exist")
            return row.text

    # --- the inbox -----------------------------------------------------------------------------

    def inbox_candidates(self, low_confidence: float, ambiguous_margin: float, limit: int = 500
                         ) -> list[InboxCandidate]:
        """Unreviewed customer messages that look misclassified, newest first."""
        corrected = (select(IntentCorrectionRow.corrected_intent)
                     .where(IntentCorrectionRow.message_id == PredictionRow.message_id)
                     .order_by(IntentCorrectionRow.id.desc()).limit(1).scalar_subquery())
        has_correction = exists().where(IntentCorrectionRow.message_id == PredictionRow.message_id)
        reviewed = exists().where(ReviewRow.message_id == PredictionRow.message_id)
        with self.db.read() as s:
            rows = s.execute(
                select(PredictionRow, MessageRow.text, MessageRow.created_at, corrected)
                .join(MessageRow, MessageRow.id == PredictionRow.message_id)
                .where(~reviewed, or_(PredictionRow.confidence < low_confidence,
                                      PredictionRow.margin < ambiguous_margin,
                                      PredictionRow.out_of_scope.is_(True),
                                      PredictionRow.customer_feedback == "unhelpful",
                                      has_correction))
                .order_by(PredictionRow.message_id.desc()).limit(limit)
            ).all()
        return [InboxCandidate(p.message_id, p.conversation_id, text, created, p.intent, p.top_intent,
                               p.confidence, p.margin, p.out_of_scope, p.model_version, fix,
                               p.customer_feedback == "unhelpful")
                for p, text, created, fix in rows]

    # --- retrain jobs --------------------------------------------------------------------------

    def start_job(self, actor: str) -> RetrainJob:
        """Queue a retrain; refuses while another one is queued or running."""
        try:
            with self.db.session() as s:
                row = RetrainJobRow(status=JobStatus.QUEUED.value, active=True, created_by=actor, stage="queued")
                s.add(row)
                s.flush()
                publish(s, Topic.JOBS, str(row.id))  # wakes the processes that run retrains
                return _job(row)
        except IntegrityError as e:  # the unique 'active' flag: another job is queued or running
            running = next((j for j in self.jobs(5) if j.status in ACTIVE_JOB_STATES), None)
            which = f"retrain job {running.id} is still {running.status}" if running else "a retrain is running"
            raise ConflictError(which) from e

    def update_job(self, job_id: int, **changes: Any) -> None:
        """Progress, stage, status, error, candidate version."""
        with self.db.session() as s:
            row = s.get(RetrainJobRow, job_id)
            if row is None:
                return
            for key, value in changes.items():
                setattr(row, key, value)
            if changes.get("status") == JobStatus.RUNNING and row.started_at is None:
                row.started_at = utcnow()
            if changes.get("status") in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                row.finished_at, row.active, row.lease_owner, row.lease_until = utcnow(), None, None, None

    def job(self, job_id: int) -> RetrainJob:
        """One job; raises NotFoundError."""
        with self.db.read() as s:
            row = s.get(RetrainJobRow, job_id)
            if row is None:
                raise NotFoundError(f"retrain job {job_id} does not exist")
            return _job(row)

    def jobs(self, limit: int = 20) -> list[RetrainJob]:
        """Recent jobs, newest first."""
        with self.db.read() as s:
            rows = s.scalars(select(RetrainJobRow).order_by(RetrainJobRow.id.desc()).limit(limit)).all()
            return [_job(r) for r in rows]

    def claim_job(self, owner: str, now: datetime, lease: timedelta, max_attempts: int = 2) -> RetrainJob | None:
        """Lease the oldest queued job to ``owner``, or a running one whose process stopped renewing its lease.

        A job already started ``max_attempts`` times is failed instead (it keeps killing whoever runs it).
        Of several processes asking at once, at most one gets a given job.
        """
        lapsed = or_(RetrainJobRow.status == JobStatus.QUEUED.value, RetrainJobRow.lease_until.is_(None),
                     RetrainJobRow.lease_until < now)
        with self.db.session() as s:
            row = s.scalars(select(RetrainJobRow)
                            .where(RetrainJobRow.status.in_(ACTIVE_JOB_STATES), lapsed)
                            .order_by(RetrainJobRow.id).limit(1).with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            if row.attempts >= max_attempts:
                row.status, row.step, row.stage = JobStatus.FAILED.value, "failed", "failed"
                row.active, row.finished_at = None, now
                row.error = f"interrupted: the process running it stopped ({row.attempts} attempts)"
                row.lease_owner = row.lease_until = None
                return None
            if row.status == JobStatus.RUNNING.value:
                row.step, row.stage, row.progress = "queued", "started again: the process running it stopped", 0.0
            row.status, row.lease_owner, row.lease_until = JobStatus.RUNNING.value, owner, now + lease
            row.attempts += 1
            if row.started_at is None:
                row.started_at = now
            s.flush()
            return _job(row)

    def renew_job(self, job_id: int, owner: str, until: datetime) -> bool:
        """Extend the lease of a running job; False when ``owner`` lost it (another process restarted the job)."""
        with self.db.session() as s:
            return rowcount(s.execute(
                update(RetrainJobRow).where(RetrainJobRow.id == job_id, RetrainJobRow.lease_owner == owner,
                                            RetrainJobRow.status == JobStatus.RUNNING.value)
                .values(lease_until=until))) == 1


def _version(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(row.version, row.method, VersionStatus(row.status), row.training_size, dict(row.metrics or {}),
                        row.created_by, row.created_at, row.activated_at, row.activated_by, row.rejected_at,
                        row.rejected_by, row.pruned_at)


def _example(row: TrainingExampleRow) -> TrainingExample:
    return TrainingExample(row.id, row.text, row.intent, row.created_by, row.created_at, row.message_id)


def _case(row: RegressionCaseRow) -> RegressionCase:
    return RegressionCase(row.id, row.text, row.expected_intent, row.created_by, row.created_at, row.message_id)


def _job(row: RetrainJobRow) -> RetrainJob:
    return RetrainJob(row.id, JobStatus(row.status), row.progress, row.step, row.stage, row.error,
                      row.candidate_version, row.created_by, row.created_at, row.finished_at)
