"""The FastAPI app factory: ``create_app(settings)`` builds the services once in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import articles, canned, customers, handoffs, kpis, pages, staff, stream, trainer
from api.errors import install_error_handlers
from api.pages import WEB_DIR
from connectors import webchat
from connectors.channels import PlatformChannels
from connectors.delivery import DeliveryWorker
from handoff.monitor import watch_sla
from knowledge_index.encoder import Encoder
from server_logging import quiet_third_party_loggers
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
    quiet_third_party_loggers()  # also when run as `uvicorn --factory server:create_app`, bypassing the CLI
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
        report = await anyio.to_thread.run_sync(services.recover)
        if report.processed or report.failed:
            log.info("startup recovery: %d processed, %d failed", report.processed, report.failed)
        channels.attach(services)  # registers their senders in services.senders before the worker starts
        delivery = settings.delivery
        worker = DeliveryWorker(services.conversations, services.senders, services.notifier, delivery.poll_seconds,
                                delivery.retry_base_seconds, delivery.retry_max_seconds, delivery.batch_size)
        tasks = [
            asyncio.create_task(watch_sla(services.desk_store, services.notifier, settings.handoff.sla_check_seconds),
                                name="sla-monitor"),
            asyncio.create_task(worker.run(), name="delivery-worker"),
        ]
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await channels.stop()
            services.close()

    app = FastAPI(title="Frontdesk support bot", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.ready = False
    install_error_handlers(app)
    for module in (webchat, staff, handoffs, customers, canned, stream, trainer, articles, kpis, pages):
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
        }
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks},
                            status_code=200 if ok else 503)

    return app
