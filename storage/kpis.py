"""Operators' KPIs as a handful of SQL aggregates that run unchanged on SQLite and PostgreSQL.

Six queries per report, none per row: conversations by day and channel; handoffs by day, reason, team and
urgency with SLA and CSAT sums; handoff timestamps and the first bot reply per conversation (percentiles
are computed in Python, where both backends agree); predictions by intent and by day. Definitions are in
``domain.kpis``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal_column, not_, or_, select, type_coerce
from sqlalchemy.orm import Session

from domain.enums import Channel, DecisionKind, EventKind, Sender, Urgency
from domain.kpis import (
    AnswerFeedback,
    ConversationVolume,
    Count,
    CsatSummary,
    DailyPoint,
    DurationStats,
    HandoffVolume,
    IntentVolume,
    KpiQuery,
    KpiReport,
    SlaLine,
)
from storage.db import Database
from storage.tables import ConversationRow, CsatRow, EventRow, HandoffRow, MessageRow, PredictionRow, UTCDateTime

ANSWER_KINDS = (DecisionKind.ANSWER.value, DecisionKind.SUGGEST.value)
# Per creation day: handoffs, resolved, with a missed SLA target, rated, sum of the scores.
_HandoffDay = tuple[int, int, int, int, int]


def _n(value: Any) -> int:
    return int(value or 0)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 when the condition holds, else 0 (NULL counts as false), ready to SUM."""
    return case((condition, 1), else_=0)


class KpiRepository:
    """Computes :class:`domain.kpis.KpiReport` for a window and filters."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def report(self, query: KpiQuery, now: datetime | None = None) -> KpiReport:
        """All KPIs for ``query``; SLA targets still open are judged against ``now`` (default: the clock)."""
        now = now or datetime.now(UTC)
        with self.db.read() as s:
            conversations, conv_days = self._conversations(s, query)
            handoffs, csat, sla, handoff_days = self._handoffs(s, query, now)
            agent_first, resolution = self._handoff_durations(s, query)
            bot_first = self._bot_first_response(s, query)
            intents, answers = self._intents(s, query)
            feedback_days = self._feedback_days(s, query)
        daily = []
        for day in _days(query):
            conversations_of_day, handed_off = conv_days.get(day, (0, 0))
            created, resolved, breached, rated, score_total = handoff_days.get(day, (0, 0, 0, 0, 0))
            daily.append(DailyPoint(day, conversations_of_day, handed_off, created, resolved, breached, rated,
                                    score_total, feedback_days.get(day, 0)))
        return KpiReport(query, conversations, handoffs, bot_first, agent_first, resolution, csat, sla, intents,
                         answers, tuple(daily))

    # --- building blocks ------------------------------------------------------------------------

    def _day(self, column: Any) -> ColumnElement[Any]:
        """The UTC calendar day of a timestamp column (SQLite stores UTC text; PostgreSQL needs the zone)."""
        if self.db.dialect == "postgresql":
            # A literal, not a bound parameter: GROUP BY must repeat the select expression exactly.
            return func.date(func.timezone(literal_column("'UTC'"), column))
        return func.date(column)

    def _conversation_filters(self, query: KpiQuery) -> list[ColumnElement[bool]]:
        """Channel and team conditions on ``ConversationRow`` (joined or selected by the caller)."""
        conditions: list[ColumnElement[bool]] = []
        if query.channel is not None:
            conditions.append(ConversationRow.channel == query.channel.value)
        if query.team is not None:
            conditions.append(_conversation_team() == query.team)
        return conditions

    def _handoff_filters(self, query: KpiQuery) -> list[ColumnElement[bool]]:
        conditions = [HandoffRow.created_at >= query.start, HandoffRow.created_at < query.end]
        if query.team is not None:
            conditions.append(HandoffRow.team == query.team)
        if query.channel is not None:
            conditions.append(ConversationRow.channel == query.channel.value)
        return conditions

    def _cohort(self, query: KpiQuery) -> list[ColumnElement[bool]]:
        """Conversations that started in the window, with a customer message, matching the filters."""
        engaged = exists().where(MessageRow.conversation_id == ConversationRow.id,
                                 MessageRow.sender == Sender.CUSTOMER.value)
        return [ConversationRow.created_at >= query.start, ConversationRow.created_at < query.end, engaged,
                *self._conversation_filters(query)]

    # --- the queries ----------------------------------------------------------------------------

    def _conversations(self, s: Session, query: KpiQuery) -> tuple[ConversationVolume, dict[date, tuple[int, int]]]:
        day = self._day(ConversationRow.created_at)
        handed_off = exists().where(HandoffRow.conversation_id == ConversationRow.id)
        rows = s.execute(
            select(day, ConversationRow.channel, func.count(), func.sum(_flag(handed_off)))
            .where(*self._cohort(query)).group_by(day, ConversationRow.channel)
        ).all()
        channels: dict[str, int] = {query.channel.value: 0} if query.channel else {c.value: 0 for c in Channel}
        days: dict[date, tuple[int, int]] = {}
        total = total_handed_off = 0
        for raw_day, channel, count, handed in rows:
            key = _as_date(raw_day)
            before = days.get(key, (0, 0))
            days[key] = (before[0] + _n(count), before[1] + _n(handed))
            channels[channel] = channels.get(channel, 0) + _n(count)
            total += _n(count)
            total_handed_off += _n(handed)
        by_channel = tuple(Count(k, v) for k, v in sorted(channels.items(), key=lambda kv: (-kv[1], kv[0])))
        return ConversationVolume(total, total_handed_off, by_channel), days

    def _handoffs(self, s: Session, query: KpiQuery, now: datetime
                  ) -> tuple[HandoffVolume, CsatSummary, tuple[SlaLine, ...], dict[date, _HandoffDay]]:
        h = HandoffRow
        breach_events = _breach_events()
        responded = func.coalesce(h.first_response_at, h.resolved_at)
        first_breached = or_(
            h.first_response_breached.is_(True),
            func.coalesce(breach_events.c.first_response, 0) == 1,
            and_(h.first_response_due.is_not(None), responded.is_not(None), responded > h.first_response_due),
            and_(h.first_response_due.is_not(None), responded.is_(None), h.first_response_due < now),
        )
        resolution_breached = or_(
            h.resolution_breached.is_(True),
            func.coalesce(breach_events.c.resolution, 0) == 1,
            and_(h.resolution_due.is_not(None), h.resolved_at.is_not(None), h.resolved_at > h.resolution_due),
            and_(h.resolution_due.is_not(None), h.resolved_at.is_(None), h.resolution_due < now),
        )
        day = self._day(h.created_at)
        is_resolved = h.resolved_at.is_not(None)
        rows = s.execute(
            select(day, h.reason, h.team, h.urgency, func.count(h.id),
                   func.sum(_flag(is_resolved)),
                   func.sum(_flag(and_(responded.is_not(None), not_(first_breached)))),
                   func.sum(_flag(first_breached)),
                   func.sum(_flag(and_(h.resolved_at.is_not(None), not_(resolution_breached)))),
                   func.sum(_flag(resolution_breached)),
                   func.sum(_flag(or_(first_breached, resolution_breached))),
                   # A score counts only while its handoff is resolved (a reopen puts the case back in play).
                   func.count(case((is_resolved, CsatRow.id))),
                   func.sum(case((is_resolved, CsatRow.score), else_=0)),
                   *[func.sum(_flag(and_(is_resolved, CsatRow.score == score))) for score in range(1, 6)])
            .join(ConversationRow, ConversationRow.id == h.conversation_id)
            .outerjoin(breach_events, breach_events.c.handoff_id == h.id)
            .outerjoin(CsatRow, CsatRow.handoff_id == h.id)
            .where(*self._handoff_filters(query))
            .group_by(day, h.reason, h.team, h.urgency)
        ).all()
        total = resolved = responses = 0
        distribution = [0] * 5
        reasons: dict[str, int] = defaultdict(int)
        sla: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 5)
        days: dict[date, list[int]] = defaultdict(lambda: [0] * 5)
        for raw_day, reason, team, urgency, count, done, fr_met, fr_late, res_met, res_late, late, rated, \
                score_sum, *per_score in rows:
            total += _n(count)
            resolved += _n(done)
            responses += _n(rated)
            reasons[reason] += _n(count)
            for i, n in enumerate(per_score):
                distribution[i] += _n(n)
            line = sla[(team, urgency)]
            for i, n in enumerate((count, fr_met, fr_late, res_met, res_late)):
                line[i] += _n(n)
            point = days[_as_date(raw_day)]
            for i, n in enumerate((count, done, late, rated, score_sum)):
                point[i] += _n(n)
        by_reason = tuple(Count(k, v) for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        csat = CsatSummary(resolved, responses, (distribution[0], distribution[1], distribution[2], distribution[3],
                                                 distribution[4]))
        return (HandoffVolume(total, resolved, by_reason), csat, _sla_lines(sla),
                {d: (v[0], v[1], v[2], v[3], v[4]) for d, v in days.items()})

    def _handoff_durations(self, s: Session, query: KpiQuery) -> tuple[DurationStats, DurationStats]:
        rows = s.execute(
            select(HandoffRow.queued_at, HandoffRow.first_response_at, HandoffRow.resolved_at)
            .join(ConversationRow, ConversationRow.id == HandoffRow.conversation_id)
            .where(*self._handoff_filters(query),
                   or_(HandoffRow.first_response_at.is_not(None), HandoffRow.resolved_at.is_not(None)))
        ).all()
        first = [(f - q).total_seconds() for q, f, _ in rows if f is not None]
        resolution = [(r - q).total_seconds() for q, _, r in rows if r is not None]
        return DurationStats.of(first), DurationStats.of(resolution)

    def _bot_first_response(self, s: Session, query: KpiQuery) -> DurationStats:
        """From the customer's first message to the bot's first reply, per conversation (one pass)."""
        m = MessageRow
        asked = type_coerce(func.min(case((m.sender == Sender.CUSTOMER.value, m.created_at))), UTCDateTime())
        replied = type_coerce(func.min(case((and_(m.sender == Sender.BOT.value, m.reply_to.is_not(None)),
                                              m.created_at))), UTCDateTime())
        rows = s.execute(
            select(asked, replied)
            .where(m.conversation_id.in_(select(ConversationRow.id).where(*self._cohort(query))),
                   m.sender.in_((Sender.CUSTOMER.value, Sender.BOT.value)))
            .group_by(m.conversation_id)
        ).all()
        return DurationStats.of([(r - a).total_seconds() for a, r in rows if a is not None and r is not None])

    def _prediction_filters(self, query: KpiQuery) -> list[ColumnElement[bool]]:
        return [PredictionRow.created_at >= query.start, PredictionRow.created_at < query.end,
                *self._conversation_filters(query)]

    def _intents(self, s: Session, query: KpiQuery) -> tuple[tuple[IntentVolume, ...], AnswerFeedback]:
        p = PredictionRow
        answered = p.decision.in_(ANSWER_KINDS)
        rows = s.execute(
            select(p.intent, func.count(p.id), func.count(func.distinct(p.conversation_id)),
                   func.sum(_flag(answered)), func.sum(_flag(p.customer_feedback == "helpful")),
                   func.sum(_flag(p.customer_feedback == "unhelpful")))
            .join(ConversationRow, ConversationRow.id == p.conversation_id)
            .where(*self._prediction_filters(query)).group_by(p.intent)
        ).all()
        intents = tuple(sorted(
            (IntentVolume(intent, _n(messages), _n(conversations), _n(unhelpful))
             for intent, messages, conversations, _, _, unhelpful in rows),
            key=lambda v: (-v.messages, v.intent is None, v.intent or "")))
        answers = AnswerFeedback(sum(_n(r[3]) for r in rows), sum(_n(r[4]) for r in rows),
                                 sum(_n(r[5]) for r in rows))
        return intents, answers

    def _feedback_days(self, s: Session, query: KpiQuery) -> dict[date, int]:
        day = self._day(PredictionRow.created_at)
        rows = s.execute(
            select(day, func.count(PredictionRow.id))
            .join(ConversationRow, ConversationRow.id == PredictionRow.conversation_id)
            .where(*self._prediction_filters(query), PredictionRow.customer_feedback == "unhelpful")
            .group_by(day)
        ).all()
        return {_as_date(d): _n(n) for d, n in rows}


def _conversation_team() -> ColumnElement[Any]:
    """A conversation's team: its latest handoff's, else the team triage routed its latest message to."""
    handoff_team = (select(HandoffRow.team).where(HandoffRow.conversation_id == ConversationRow.id)
                    .order_by(HandoffRow.id.desc()).limit(1).correlate(ConversationRow).scalar_subquery())
    routed_team = (select(PredictionRow.team)
                   .where(PredictionRow.conversation_id == ConversationRow.id, PredictionRow.team.is_not(None))
                   .order_by(PredictionRow.id.desc()).limit(1).correlate(ConversationRow).scalar_subquery())
    return func.coalesce(handoff_team, routed_team)


def _breach_events() -> Any:
    """Per handoff: whether the SLA monitor ever reported a first-response or resolution breach."""
    target = EventRow.payload["target"].as_string()
    return (select(EventRow.handoff_id.label("handoff_id"),
                   func.max(_flag(target == "first_response")).label("first_response"),
                   func.max(_flag(target == "resolution")).label("resolution"))
            .where(EventRow.kind == EventKind.SLA_BREACHED.value, EventRow.handoff_id.is_not(None))
            .group_by(EventRow.handoff_id).subquery())


def _sla_lines(counts: dict[tuple[str, str], list[int]]) -> tuple[SlaLine, ...]:
    """Team x urgency lines (most urgent first, then by team), then one all-teams line per urgency."""
    def rank(urgency: str) -> int:
        return -Urgency(urgency).rank

    lines = [SlaLine(team, Urgency(urgency), *values)
             for (team, urgency), values in sorted(counts.items(), key=lambda kv: (rank(kv[0][1]), kv[0][0]))]
    totals: dict[str, list[int]] = defaultdict(lambda: [0] * 5)
    for (_, urgency), values in counts.items():
        totals[urgency] = [a + b for a, b in zip(totals[urgency], values, strict=True)]
    lines += [SlaLine(None, Urgency(u), *values) for u, values in sorted(totals.items(), key=lambda kv: rank(kv[0]))]
    return tuple(lines)


def _as_date(value: Any) -> date:
    """SQLite's date() gives text, PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _days(query: KpiQuery) -> Iterable[date]:
    """Every UTC day the window touches."""
    day, last = query.start.astimezone(UTC).date(), (query.end.astimezone(UTC) - timedelta(microseconds=1)).date()
    while day <= last:
        yield day
        day += timedelta(days=1)
