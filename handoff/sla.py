"""SLA targets per urgency: due times and breach status, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.enums import Urgency


@dataclass(frozen=True)
class SlaTarget:
    """Minutes allowed until the first agent response and until resolution."""

    first_response_minutes: float
    resolution_minutes: float


@dataclass(frozen=True)
class SlaStatus:
    """Where one handoff stands against its targets."""

    first_response_due: datetime
    resolution_due: datetime
    first_response_breached: bool
    resolution_breached: bool

    @property
    def breached(self) -> bool:
        """Either target missed."""
        return self.first_response_breached or self.resolution_breached


def due_times(target: SlaTarget, queued_at: datetime) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a handoff queued at ``queued_at``."""
    return (queued_at + timedelta(minutes=target.first_response_minutes),
            queued_at + timedelta(minutes=target.resolution_minutes))


def sla_status(target: SlaTarget, queued_at: datetime, now: datetime, first_response_at: datetime | None,
               resolved_at: datetime | None) -> SlaStatus:
    """A target is breached when its moment passed (or came) after the due time."""
    first_due, resolution_due = due_times(target, queued_at)
    responded = first_response_at or resolved_at
    return SlaStatus(
        first_response_due=first_due,
        resolution_due=resolution_due,
        first_response_breached=(responded or now) > first_due,
        resolution_breached=(resolved_at or now) > resolution_due,
    )


DEFAULT_TARGETS: dict[Urgency, SlaTarget] = {
    Urgency.CRITICAL: SlaTarget(5, 60),
    Urgency.HIGH: SlaTarget(15, 4 * 60),
    Urgency.NORMAL: SlaTarget(60, 24 * 60),
    Urgency.LOW: SlaTarget(4 * 60, 72 * 60),
}
