"""Operators' view of the service: what this process serves and how the shared background jobs run."""

from __future__ import annotations

import os
from datetime import datetime

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminDep, ServicesDep

router = APIRouter(prefix="/api/admin", tags=["operations"])


class JobOut(BaseModel):
    """A background job of the service (shared by every process)."""

    name: str
    held_by: str | None = Field(description="the process holding an exclusive job's lease")
    lease_expires_at: datetime | None
    runs: int = Field(description="runs that did something (exclusive jobs: every run)")
    last_run_by: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_detail: str | None


class ProcessOut(BaseModel):
    """What the process that answered this request serves, and the service's jobs."""

    process: str = Field(description="host:pid:random, as in job leases")
    pid: int
    database: str
    model_version: str = Field(description="the intent model this process serves")
    articles: int
    chunks: int
    index_approximate: bool | None = Field(description="the chunk index searches an HNSW graph (kind auto, large)")
    change_feed_connected: bool
    change_feed_position: str = Field(description="how far this process has applied the change log (tx.id)")
    unprocessed_messages: int = Field(description="customer messages stored and not answered yet (all processes)")
    jobs: list[JobOut]


@router.get("/process", response_model=ProcessOut)
async def process(services: ServicesDep, _: AdminDep) -> ProcessOut:
    """This process's view of the shared state and every background job (admins only).

    Behind a load balancer each request may reach another process: compare ``process`` across calls.
    """

    def read() -> ProcessOut:
        jobs = [JobOut(name=j.name, held_by=j.owner, lease_expires_at=j.expires_at, runs=j.runs,
                       last_run_by=j.last_owner, last_started_at=j.last_started_at,
                       last_finished_at=j.last_finished_at, last_status=j.last_status, last_detail=j.last_detail)
                for j in services.leases.all()]
        return ProcessOut(process=services.owner, pid=os.getpid(), database=services.db.dialect,
                          model_version=services.serving.version, articles=len(services.knowledge.article_ids()),
                          chunks=services.knowledge.chunk_count(),
                          index_approximate=getattr(services.knowledge.index, "approximate", None),
                          change_feed_connected=services.feed.connected,
                          change_feed_position=str(services.feed.position),
                          unprocessed_messages=services.conversations.unprocessed_count(), jobs=jobs)

    return await anyio.to_thread.run_sync(read)
