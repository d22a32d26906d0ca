"""Recovery: run again the turns of customer messages that were stored but never answered (their process died)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.pipeline import TurnPipeline
from domain.models import PendingInbound

log = logging.getLogger(__name__)


class PendingStore(Protocol):
    """``storage.conversations.ConversationRepository``: unprocessed messages whose lease expired."""

    def claim_unprocessed(self, now: datetime, limit: int = 100) -> list[PendingInbound]: ...


@dataclass(frozen=True)
class RecoveryReport:
    """How many stuck messages were processed."""

    processed: int
    failed: int


def recover_unprocessed(pipeline: TurnPipeline, store: PendingStore, now: datetime | None = None,
                        limit: int = 100) -> RecoveryReport:
    """Process the messages whose turn never finished and whose lease expired (one batch).

    Every process runs this as a background job; each message is leased to one of them. The pipeline turns its
    own failures into handoffs, so a message is only left behind when storing the outcome fails (e.g. the
    database is down); its lease then expires again and a later run retries it. Should the original process
    still be alive and finish after all, the turn is stored once (``record_turn`` is idempotent).
    """
    processed = failed = 0
    for pending in store.claim_unprocessed(now or datetime.now(UTC), limit):
        try:
            pipeline.process(pending.message_id, pending.inbound)
            processed += 1
        except Exception as e:  # keep going: one stuck message must not block the others
            failed += 1
            log.error("recovery of message %s (attempt %d) failed: %s", pending.message_id, pending.attempts,
                      type(e).__name__)
    if processed or failed:
        log.info("recovered %d unanswered message(s) (%d failed)", processed, failed)
    return RecoveryReport(processed, failed)
