"""Run a retrain to its end in the test's thread, the way a server process's retrain runner does."""

from __future__ import annotations

from nlu.retrain import TrainerLoop
from nlu.retrain_runner import RetrainRunner
from storage.trainer import TrainerStore


def retrain_now(loop: TrainerLoop, store: TrainerStore, actor: str = "tess") -> int:
    """Queue a retrain, claim it like a runner would and run it; returns the job id."""
    job_id = loop.start_retrain(actor)
    ran = RetrainRunner(store, "test-process", mode="thread", run_inline=loop.run_job).run_next()
    assert ran == job_id
    return job_id
