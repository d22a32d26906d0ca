"""Typed KPI results for operators: the query window, volumes, timings, CSAT, SLA attainment, daily series.

Definitions (all times UTC; the window is half-open, ``start <= t < end``):

* A **conversation** counts when it started in the window and the customer wrote at least once. It is
  **handed off** when it has any handoff (even one made after the window), else **deflected**: the bot
  handled it alone.
* A **handoff** counts when it was created in the window; its timings, SLA outcome and CSAT are followed
  to its current state. Agent timings run from ``queued_at`` (reset by a reopen), like the SLA clocks.
* With a **team** filter, conversation figures cover conversations whose team is that team (the team of
  their latest handoff, else the team the bot's triage routed their latest message to); handoff figures
  cover the team's handoffs. A **channel** filter applies to both through the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from domain.enums import Channel, Urgency
from domain.errors import ValidationError


def ratio(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is nothing to divide."""
    return part / whole if whole else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class KpiQuery:
    """What to measure: the window ``[start, end)`` in UTC and optional filters."""

    start: datetime
    end: datetime
    team: str | None = None
    channel: Channel | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValidationError("the KPI window needs timezone-aware datetimes")
        if self.start >= self.end:
            raise ValidationError("the start of the KPI window must be before its end")


@dataclass(frozen=True)
class DurationStats:
    """Median, 90th percentile and mean of some durations, in seconds."""

    count: int
    p50_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> DurationStats:
        """Summarize raw durations (negative clock skew is clamped to 0)."""
        values = [max(0.0, s) for s in seconds]
        mean = sum(values) / len(values) if values else None
        return cls(len(values), percentile(values, 0.5), percentile(values, 0.9), mean)


@dataclass(frozen=True)
class Count:
    """How many of something had this key (a reason, a channel)."""

    key: str
    count: int


@dataclass(frozen=True)
class ConversationVolume:
    """Conversations started in the window and how many the bot handled alone."""

    total: int
    handed_off: int
    by_channel: tuple[Count, ...]

    @property
    def deflected(self) -> int:
        """Conversations with no handoff at all."""
        return self.total - self.handed_off

    @property
    def deflection_rate(self) -> float | None:
        """Share of conversations fully handled by the bot."""
        return ratio(self.deflected, self.total)

    @property
    def handoff_rate(self) -> float | None:
        """Share of conversations handed to a person."""
        return ratio(self.handed_off, self.total)


@dataclass(frozen=True)
class HandoffVolume:
    """Handoffs created in the window, how many are resolved by now, and why they were made."""

    total: int
    resolved: int
    by_reason: tuple[Count, ...]


@dataclass(frozen=True)
class CsatSummary:
    """Ratings given for the window's resolved handoffs (1 = poor ... 5 = excellent)."""

    resolved: int
    responses: int
    distribution: tuple[int, int, int, int, int]  # how many 1s, 2s, 3s, 4s and 5s

    @property
    def average(self) -> float | None:
        """Mean score."""
        total = sum(score * n for score, n in enumerate(self.distribution, start=1))
        return total / self.responses if self.responses else None

    @property
    def response_rate(self) -> float | None:
        """Share of resolved handoffs that were rated."""
        return ratio(self.responses, self.resolved)


@dataclass(frozen=True)
class SlaLine:
    """SLA outcome of one team's handoffs of one urgency (``team`` None: every team).

    A target is *breached* when the monitor flagged it (also before a reopen) or its moment came after the
    due time, or is still missing past it; *met* when it happened in time. Handoffs still within their due
    time count in neither, so attainment is ``met / (met + breached)``.
    """

    team: str | None
    urgency: Urgency
    handoffs: int
    first_response_met: int
    first_response_breached: int
    resolution_met: int
    resolution_breached: int

    @property
    def first_response_attainment(self) -> float | None:
        """Share of decided first-response targets that were met."""
        return ratio(self.first_response_met, self.first_response_met + self.first_response_breached)

    @property
    def resolution_attainment(self) -> float | None:
        """Share of decided resolution targets that were met."""
        return ratio(self.resolution_met, self.resolution_met + self.resolution_breached)

    @property
    def breaches(self) -> int:
        """Missed targets of both kinds."""
        return self.first_response_breached + self.resolution_breached


@dataclass(frozen=True)
class IntentVolume:
    """Customer messages the bot classified with one intent (None: out of scope)."""

    intent: str | None
    messages: int
    conversations: int
    unhelpful: int


@dataclass(frozen=True)
class AnswerFeedback:
    """Bot answers (cited answer or suggestions) given in the window and the customers' reactions."""

    answered: int
    helpful: int
    unhelpful: int

    @property
    def unhelpful_rate(self) -> float | None:
        """Share of answers marked unhelpful."""
        return ratio(self.unhelpful, self.answered)


@dataclass(frozen=True)
class DailyPoint:
    """One UTC day of the series: conversations by start day, handoffs by creation day."""

    day: date
    conversations: int
    handed_off: int
    handoffs: int
    resolved: int
    sla_breaches: int  # handoffs with at least one missed target
    csat_responses: int
    csat_total: int
    unhelpful: int

    @property
    def deflected(self) -> int:
        """Conversations of the day with no handoff."""
        return self.conversations - self.handed_off

    @property
    def deflection_rate(self) -> float | None:
        """Share of the day's conversations handled by the bot alone."""
        return ratio(self.deflected, self.conversations)

    @property
    def csat_average(self) -> float | None:
        """Mean score of the day's rated handoffs."""
        return self.csat_total / self.csat_responses if self.csat_responses else None


@dataclass(frozen=True)
class KpiReport:
    """Every KPI for one query."""

    query: KpiQuery
    conversations: ConversationVolume
    handoffs: HandoffVolume
    bot_first_response: DurationStats  # customer's first message -> the bot's first reply
    agent_first_response: DurationStats  # handoff queued -> first agent reply
    resolution: DurationStats  # handoff queued -> resolved
    csat: CsatSummary
    sla: tuple[SlaLine, ...]  # per team and urgency, then one line per urgency for all teams
    intents: tuple[IntentVolume, ...]  # most messages first
    answers: AnswerFeedback
    daily: tuple[DailyPoint, ...]
