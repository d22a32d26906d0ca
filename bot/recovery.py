"""Re-process inbound messages left ``received`` by a crash mid-turn."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.pipeline import TurnPipeline
from domain.models import InboundMessage

log = logging.getLogger(__name__)


class PendingStore(Protocol):
    """The store queries recovery needs."""

    def unprocessed(self, older_than: datetime, limit: int = 1000) -> list[tuple[int, InboundMessage]]: ...

    def record_attempt(self, message_id: int) -> int: ...


@dataclass(frozen=True)
class RecoveryReport:
    """How many stuck messages were processed."""

    processed: int
    failed: int


def recover_unprocessed(pipeline: TurnPipeline, store: PendingStore, older_than_seconds: float,
                        now: datetime | None = None) -> RecoveryReport:
    """Process every message stored more than ``older_than_seconds`` ago but never processed.

    The pipeline turns its own failures into handoffs, so a message is only left behind when storing
    the outcome fails (e.g. the database is down); it is then retried at the next start.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_seconds)
    processed = failed = 0
    for message_id, inbound in store.unprocessed(cutoff):
        store.record_attempt(message_id)
        try:
            pipeline.process(message_id, inbound)
            processed += 1
        except Exception as e:  # keep going: one stuck message must not block the others
            failed += 1
            log.error("recovery of message %s failed: %s", message_id, type(e).__name__)
    if processed or failed:
        log.info("recovered %d unprocessed messages (%d failed)", processed, failed)
    return RecoveryReport(processed, failed)
