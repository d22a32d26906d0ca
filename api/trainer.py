"""The trainers' API: the inbox of likely misclassifications, actions and their undo, added examples, retraining,
versions (activate, reject, roll back), regression cases, export."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field

from api.deps import ServicesDep, require_roles
from domain.enums import Role
from domain.errors import ConfigurationError, NotFoundError
from domain.models import StaffUser
from domain.trainer import RetrainJob
from nlu.retrain import TrainerLoop
from storage.trainer import TrainerStore
from wiring import Services

router = APIRouter(prefix="/api/trainer", tags=["trainers"])
TrainerDep = Annotated[StaffUser, Depends(require_roles(Role.TRAINER))]


class InboxMessageOut(BaseModel):
    """A message in the inbox."""

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
    reasons: list[str]


class ClusterOut(BaseModel):
    """Similar messages, reviewed together."""

    key: int
    size: int
    label: str
    suggested_intent: str | None
    reasons: dict[str, int]
    messages: list[InboxMessageOut]


class InboxOut(BaseModel):
    """The inbox and the intents a message can be relabelled to."""

    total: int
    clusters: list[ClusterOut]
    intents: list[str]


class ActionIn(BaseModel):
    """One action on one or more messages (e.g. a whole cluster)."""

    message_ids: list[int] = Field(min_length=1, max_length=500)
    action: str = Field(description="relabel, add_example, mark_oos or ignore")
    intent: str | None = Field(None, max_length=120)
    keep_as_regression: bool = Field(False, description="every future model must classify these the same way")


class ActionOut(BaseModel):
    """How many messages the action touched."""

    applied: int


class JobOut(BaseModel):
    """A retrain job."""

    id: int
    status: str
    progress: float
    step: str = Field(description="queued, preparing, encoding, fitting, evaluating, saving, done or failed")
    stage: str = Field(description="what the job is doing now, in words")
    error: str | None
    candidate_version: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class VersionOut(BaseModel):
    """A model version with its evaluation against the active one."""

    version: str
    method: str
    status: str
    training_size: int
    metrics: dict[str, Any]
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    activated_by: str | None
    rejected_at: datetime | None
    rejected_by: str | None
    pruned_at: datetime | None = Field(description="when its model file was deleted; it can no longer be activated")


class ActivateIn(BaseModel):
    """Activation options."""

    force: bool = Field(False, description="activate even if regression cases fail")


class CaseOut(BaseModel):
    """A regression case."""

    id: int
    text: str
    expected_intent: str | None
    created_by: str
    created_at: datetime
    message_id: int | None


class ExampleOut(BaseModel):
    """A training example a trainer added (intent None: out of scope)."""

    id: int
    text: str
    intent: str | None
    created_by: str
    created_at: datetime
    message_id: int | None


class ReviewOut(BaseModel):
    """A trainer's decision on an inbox message."""

    message_id: int
    text: str
    action: str
    intent: str | None
    reviewed_by: str
    reviewed_at: datetime


class UndoOut(BaseModel):
    """What undoing a decision took back; the message is in the inbox again."""

    message_id: int
    action: str
    removed_example: bool
    removed_regression_case: bool


def _loop(services: Services) -> tuple[TrainerLoop, TrainerStore]:
    if services.trainer is None or services.trainer_store is None:
        raise ConfigurationError("the trainer loop is not configured")
    return services.trainer, services.trainer_store


def _store(services: Services) -> TrainerStore:
    return _loop(services)[1]


@router.get("/inbox", response_model=InboxOut)
def inbox(services: ServicesDep, _: TrainerDep,
          limit: Annotated[int, Query(ge=1, le=1000)] = 300) -> InboxOut:
    """Unreviewed messages that look misclassified (low confidence, ambiguous, out of scope, corrected by
    agents, answers marked unhelpful), grouped into clusters of similar messages with counts."""
    loop, _store = _loop(services)
    view = loop.inbox(limit)

    def message(message_id: int) -> InboxMessageOut:
        item = view.items[message_id]
        return InboxMessageOut(**{k: getattr(item, k) for k in InboxMessageOut.model_fields if k != "reasons"},
                               reasons=view.reasons[message_id])

    clusters = [ClusterOut(key=c.key, size=len(c.message_ids), label=c.label, suggested_intent=c.suggested_intent,
                           reasons=c.reasons, messages=[message(m) for m in c.message_ids]) for c in view.clusters]
    return InboxOut(total=len(view.items), clusters=clusters, intents=sorted(services.serving.intents))


@router.post("/actions", response_model=ActionOut)
def act(services: ServicesDep, trainer: TrainerDep, body: ActionIn) -> ActionOut:
    """Relabel, add as a training example, mark out of scope, or ignore; optionally keep as regression cases."""
    loop, _store = _loop(services)
    applied = loop.act(body.message_ids, body.action, trainer.username, body.intent, body.keep_as_regression,
                       frozenset(services.serving.intents))
    return ActionOut(applied=applied)


@router.get("/reviews", response_model=list[ReviewOut])
def reviews(services: ServicesDep, _: TrainerDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
            ) -> list[ReviewOut]:
    """The latest decisions on inbox messages, newest first."""
    store = _store(services)
    return [ReviewOut(**r.__dict__) for r in store.reviews(limit)]


@router.delete("/reviews/{message_id}", response_model=UndoOut)
def undo_review(services: ServicesDep, _: TrainerDep, message_id: int) -> UndoOut:
    """Undo a decision: the message returns to the inbox; the training example and regression case it added
    are removed."""
    loop, _store = _loop(services)
    return UndoOut(**loop.undo_review(message_id).__dict__)


@router.get("/examples", response_model=list[ExampleOut])
def examples(services: ServicesDep, _: TrainerDep) -> list[ExampleOut]:
    """The training examples trainers added on top of nlu.yml, newest first."""
    store = _store(services)
    return [ExampleOut(**e.__dict__) for e in reversed(store.examples())]


@router.delete("/examples/{example_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_example(services: ServicesDep, _: TrainerDep, example_id: int) -> None:
    """Remove an added example: the next retrain no longer learns it (nlu.yml's own label, if any, returns)."""
    store = _store(services)
    store.remove_example(example_id)


@router.post("/retrain", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def retrain(services: ServicesDep, trainer: TrainerDep) -> JobOut:
    """Train a candidate in the background; 409 while another retrain runs. The active model keeps serving."""
    loop, store = _loop(services)
    return _job(store.job(loop.start_retrain(trainer.username)))


@router.get("/jobs", response_model=list[JobOut])
def jobs(services: ServicesDep, _: TrainerDep) -> list[JobOut]:
    """Recent retrain jobs, newest first."""
    store = _store(services)
    return [_job(j) for j in store.jobs()]


@router.get("/jobs/{job_id}", response_model=JobOut)
def job(services: ServicesDep, _: TrainerDep, job_id: int) -> JobOut:
    """One job with its progress."""
    store = _store(services)
    return _job(store.job(job_id))


@router.get("/versions", response_model=list[VersionOut])
def versions(services: ServicesDep, _: TrainerDep) -> list[VersionOut]:
    """Every model version, newest first; candidates carry their comparison with the active model."""
    store = _store(services)
    return [VersionOut(**v.__dict__) for v in store.versions()]


@router.post("/versions/{version}/activate", response_model=VersionOut)
def activate(services: ServicesDep, trainer: TrainerDep, version: str, body: ActivateIn | None = None
             ) -> VersionOut:
    """Serve this version (a new candidate, or any earlier one to roll back).

    409 when its model file was pruned, or when it gets one of today's regression cases wrong (the message lists
    them) unless ``force`` is set.
    """
    loop, _store = _loop(services)
    record = loop.activate(version, trainer.username, force=bool(body and body.force))
    return VersionOut(**record.__dict__)


@router.post("/versions/{version}/reject", response_model=VersionOut)
def reject(services: ServicesDep, trainer: TrainerDep, version: str) -> VersionOut:
    """Keep the active model: the candidate is marked rejected (who and when); 409 if it is not a candidate."""
    loop, _store = _loop(services)
    return VersionOut(**loop.reject(version, trainer.username).__dict__)


@router.get("/regression-cases", response_model=list[CaseOut])
def regression_cases(services: ServicesDep, _: TrainerDep) -> list[CaseOut]:
    """Messages every future model must classify as expected."""
    store = _store(services)
    return [CaseOut(**c.__dict__) for c in store.regression_cases()]


@router.delete("/regression-cases/{case_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_regression_case(services: ServicesDep, _: TrainerDep, case_id: int) -> None:
    """Stop requiring a case."""
    store = _store(services)
    store.remove_regression_case(case_id)


@router.get("/export", response_class=Response, responses={200: {"content": {"application/x-yaml": {}}}})
def export(services: ServicesDep, _: TrainerDep) -> Response:
    """The corrected training data as Rasa nlu.yml (download)."""
    loop, _store = _loop(services)
    return Response(loop.export_yaml(), media_type="application/x-yaml",
                    headers={"Content-Disposition": 'attachment; filename="nlu.yml"'})


def _job(j: RetrainJob | None) -> JobOut:
    if j is None:
        raise NotFoundError("no such job")
    return JobOut(**j.__dict__)
