"""The SLA monitor: flags breached handoffs (once each) and wakes the live views."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

import anyio

from handoff.notify import ChangeNotifier

log = logging.getLogger(__name__)


class BreachFlagger(Protocol):
    """``storage.desk.DeskStore``."""

    def flag_sla_breaches(self, now: datetime) -> list[tuple[int, str]]: ...


async def watch_sla(store: BreachFlagger, notifier: ChangeNotifier, every_seconds: float) -> None:
    """Run until cancelled; a failing check is logged and retried at the next tick."""
    while True:
        try:
            flagged = await anyio.to_thread.run_sync(store.flag_sla_breaches, datetime.now(UTC))
            if flagged:
                log.info("SLA breached for %d handoff target(s)", len(flagged))
                notifier.notify()
        except Exception as e:  # keep watching; the database may be back next time
            log.error("SLA check failed: %s", type(e).__name__)
        await anyio.sleep(every_seconds)
