"""What the customer is told at handoff: place in the queue and expected wait, or the team's hours."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.models import BusinessHours


@dataclass(frozen=True)
class WaitInfo:
    """The queue as a customer sees it."""

    position: int
    expected_minutes: float | None
    on_duty: bool
    hours_text: str | None = None
    next_opening: datetime | None = None


def expected_wait(position: int, median_first_response: float | None, agents_on_duty: int,
                  default_minutes: float) -> float:
    """Minutes until a first reply: the recent median, once per round of the agents on duty ahead of you."""
    per_round = median_first_response if median_first_response is not None else default_minutes
    rounds = math.ceil(position / max(1, agents_on_duty))
    return max(1.0, per_round * rounds)


def describe_wait(info: WaitInfo) -> str:
    """One or two sentences for the handoff reply."""
    if not info.on_duty:
        when = ""
        if info.next_opening is not None and info.hours_text:
            local = info.next_opening
            when = f" The next opening is {local.strftime('%a %H:%M')}."
        hours = f" Our hours are {info.hours_text}." if info.hours_text else ""
        return f"Nobody from the team is on duty right now.{hours}{when} A person will reply here then."
    place = "You are next in line." if info.position <= 1 else f"You are number {info.position} in the queue."
    if info.expected_minutes is None:
        return place
    return f"{place} The expected wait is about {_minutes(info.expected_minutes)}."


def local_opening(hours: BusinessHours | None, opening: datetime | None) -> datetime | None:
    """The next opening in the team's own time zone (as shown to customers)."""
    if hours is None or opening is None:
        return opening
    return opening.astimezone(ZoneInfo(hours.timezone))


def _minutes(value: float) -> str:
    if value < 90:
        rounded = max(1, round(value))
        return f"{rounded} minute" + ("s" if rounded != 1 else "")
    hours = round(value / 60)
    return f"{hours} hour" + ("s" if hours != 1 else "")
