"""The FastAPI app factory: ``create_app(settings)`` builds the services once in the lifespan."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import articles, canned, customers, handoffs, kpis, operations, pages, staff, stream, trainer
from api.errors import install_error_handlers
from api.pages import WEB_DIR
from cluster.jobs import Job, JobOutcome, JobRunner
from connectors import webchat
from connectors.channels import PlatformChannels
from connectors.delivery import ChannelSender, DeliveryWorker
from domain.enums import Channel, Topic
from handoff.notify import ChangeNotifier
from knowledge_index.encoder import Encoder
from nlu.retrain_runner import RetrainRunner
from server_logging import configure_logging
from settings import Settings
from wiring import Services, build_services

log = logging.getLogger(__name__)

DESCRIPTION = """
Self-hosted customer-support bot and triage service.

* **Customers** create a conversation (`POST /api/conversations`), then post messages with the returned
  `customer_token` as `Authorization: Bearer <token>`. Replies cite the help-center article they came from.
* **Staff** log in at `POST /api/auth/login` and use the returned token the same way; roles decide what
  they may reach (agents: handoffs; editors: articles; admins: everything).
* Errors always have the shape `{"error": {"code": ..., "message": ...}}`.
"""


def create_app(settings: Settings | None = None, encoder: Encoder | None = None) -> FastAPI:
    """Build the application.

    Args:
        settings: the configuration; read from the environment when omitted.
        encoder: an already loaded encoder to share (tests), else the configured one is loaded at startup.
    """
    settings = settings or Settings()
    configure_logging(settings.log_level)  # also when run as `uvicorn --factory server:create_app`
    channels = PlatformChannels(settings)  # Slack / Telegram, when enabled

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await channels.connect()  # a rejected Slack/Telegram token stops startup before the models load
        try:
            services: Services = await anyio.to_thread.run_sync(lambda: build_services(settings, encoder))
        except BaseException:
            await channels.stop()
            raise
        app.state.services = services
        services.start()
        channels.attach(services)
        with retrain_runner(services) as retrain:
            runner = JobRunner(background_jobs(services, channels.senders(), retrain), services.leases,
                               services.owner)
            runner.start()
            app.state.ready = True
            try:
                yield
            finally:
                app.state.ready = False
                retrain.stop()
                await runner.stop()
                await channels.stop()
                services.close()

    app = FastAPI(title="Frontdesk support bot", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.ready = False
    app.state.channels = channels
    install_error_handlers(app)
    for module in (webchat, staff, handoffs, customers, canned, stream, trainer, articles, kpis, operations, pages):
        app.include_router(module.router)
    for router in channels.routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Readiness: models loaded, index synced and the database reachable."""
        services: Services | None = getattr(app.state, "services", None)
        checks = {
            "started": bool(app.state.ready),
            "database": bool(services and services.db.ping()),
            "knowledge_base": bool(services and services.knowledge.chunk_count() > 0),
            "change_feed": bool(services and services.feed.connected),
        }
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks},
                            status_code=200 if ok else 503)

    return app


def background_jobs(services: Services, senders: Mapping[Channel, ChannelSender], retrain: RetrainRunner) -> list[Job]:
    """The service's background work, as named jobs (see ``cluster.jobs``); ``senders`` deliver on each platform."""
    settings = services.settings
    notifier = services.notifier
    d = settings.delivery
    worker = DeliveryWorker(services.conversations, senders, notifier, services.owner,
                            retry_base_seconds=d.retry_base_seconds, retry_max_seconds=d.retry_max_seconds,
                            batch_size=d.batch_size, lease_seconds=d.lease_seconds)

    async def deliver() -> JobOutcome:
        return JobOutcome(*await worker.run_once())

    async def flag_sla() -> JobOutcome:
        flagged = await anyio.to_thread.run_sync(services.desk_store.flag_sla_breaches, datetime.now(UTC))
        if flagged:
            log.info("SLA breached for %d handoff target(s)", len(flagged))
            notifier.notify()
        return JobOutcome(len(flagged))

    async def recover() -> JobOutcome:
        report = await anyio.to_thread.run_sync(services.recover)
        if report.processed:
            notifier.notify()
        return JobOutcome(report.processed, report.failed)

    async def run_retrain() -> JobOutcome:
        job_id = await anyio.to_thread.run_sync(retrain.run_next)
        return JobOutcome(0 if job_id is None else 1, detail="" if job_id is None else f"retrain job {job_id}")

    async def prune_changes() -> JobOutcome:
        before = datetime.now(UTC) - timedelta(days=settings.cluster.change_log_days)
        return JobOutcome(await anyio.to_thread.run_sync(services.changes.prune, before))

    retrain_queued = ChangeNotifier()
    services.feed.subscribe(Topic.JOBS, lambda _keys: retrain_queued.notify())
    return [
        Job("delivery", deliver, d.poll_seconds, wait=notifier.wait),
        Job("sla-monitor", flag_sla, settings.handoff.sla_check_seconds, exclusive=True),
        Job("recovery", recover, settings.cluster.recovery_check_seconds),
        Job("retrain", run_retrain, 10.0, wait=retrain_queued.wait),
        Job("prune-change-log", prune_changes, 3600.0, exclusive=True),
    ]


@contextlib.contextmanager
def retrain_runner(services: Services) -> Iterator[RetrainRunner]:
    """How this process runs retrain jobs: a child process (the settings handed over in a private file), or a
    thread (``trainer.run_in = thread``)."""
    settings = services.settings
    t = settings.trainer
    if t.run_in == "thread":
        yield RetrainRunner(services.trainer_store, services.owner, mode="thread",
                            run_inline=services.trainer.run_job, lease_seconds=t.lease_seconds)
        return
    # What a training process needs; no channel secrets. The file is readable by this user only.
    handed = settings.model_dump(mode="json", include={"data_dir", "database_url", "database", "log_level",
                                                       "encoder", "nlu", "trainer"})
    fd, path = tempfile.mkstemp(prefix="frontdesk-retrain-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(handed, fh)
        command = [sys.executable, "-m", "cli", "retrain-job", "--settings-file", path]
        yield RetrainRunner(services.trainer_store, services.owner, mode="process", command=command,
                            lease_seconds=t.lease_seconds)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)

