"""The operators' KPIs on SQLite and PostgreSQL, from a scenario built through the repositories.

Each conversation is made by the real repositories (turns, agent replies, resolve, CSAT, feedback, the SLA
monitor); only the clock is moved afterwards, by rewriting the timestamps, so every figure is exact.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from domain.enums import Channel, DecisionKind, HandoffReason, Urgency
from domain.errors import ValidationError
from domain.kpis import Count, DurationStats, IntentVolume, KpiQuery, SlaLine, percentile
from domain.models import (
    BotReply,
    Decision,
    HandoffContext,
    HandoffDraft,
    InboundMessage,
    IntentPrediction,
    Triage,
    TurnRecord,
    UrgencyAssessment,
)
from storage.conversations import ConversationRepository
from storage.db import Database
from storage.desk import DeskStore
from storage.kpis import KpiRepository
from storage.tables import ConversationRow, HandoffRow, MessageRow, PredictionRow

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 2, tzinfo=UTC)  # the scenario's first day; the window is Nov 1 to Nov 3 (inclusive)
WINDOW = KpiQuery(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))


@dataclass
class Turn:
    message_id: int
    reply_id: int
    handoff_id: int | None


class Scenario:
    """Builds conversations with the repositories, then sets their timestamps."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.repo = ConversationRepository(db)
        self.desk = DeskStore(db)

    def conversation(self, channel: Channel, at: datetime) -> str:
        cid = self.repo.create_conversation(channel, "h").id
        self._set(ConversationRow, ConversationRow.id == cid, created_at=at)
        return cid

    def turn(self, cid: str, at: datetime, bot_after: timedelta, intent: str | None, team: str,
             decision: DecisionKind = DecisionKind.ANSWER, handoff: tuple[HandoffReason, Urgency] | None = None,
             ) -> Turn:
        channel = self.repo.get_conversation(cid).channel
        inbound, _ = self.repo.record_inbound(InboundMessage(cid, "a question", channel))
        triage = Triage(IntentPrediction(intent, 0.8, ((intent or "greet", 0.8),), intent is None, "v1"),
                        UrgencyAssessment(handoff[1] if handoff else Urgency.NORMAL, 0.3), team)
        draft = None
        if handoff is not None:
            reason, urgency = handoff
            ctx = HandoffContext(channel.value, reason.value, "", "s", urgency.value, 0.3, (), (), (), (), None)
            draft = HandoffDraft(reason, "", team, urgency, intent, 0.8, "s", ctx)
        kind = DecisionKind.HANDOFF if handoff else decision
        record = TurnRecord(inbound.id, cid, triage, Decision(kind, handoff[0] if handoff else None),
                            (BotReply(kind, "reply"),), draft)
        (reply,), handoff_id, _ = self.repo.record_turn(record)
        replied = at + bot_after
        self._set(MessageRow, MessageRow.id == inbound.id, created_at=at)
        self._set(MessageRow, MessageRow.id == reply.id, created_at=replied)
        self._set(PredictionRow, PredictionRow.message_id == inbound.id, created_at=at)
        if handoff_id is not None:
            self._set(HandoffRow, HandoffRow.id == handoff_id, created_at=replied, queued_at=replied)
        return Turn(inbound.id, reply.id, handoff_id)

    def handoff_times(self, handoff_id: int, **values: Any) -> None:
        self._set(HandoffRow, HandoffRow.id == handoff_id, **values)

    def _set(self, table: Any, where: Any, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(table).where(where).values(**values))


def build(db: Database) -> dict[str, Any]:
    """A: bot only. B: handoff answered, resolved, rated 4. C: nobody answers (SLA monitor breaches both
    targets). D: answered late without the monitor noticing, resolved in time, not rated. E: before the
    window. F: no customer message."""
    sc = Scenario(db)
    minute = timedelta(minutes=1)

    a = sc.conversation(Channel.WEB, DAY + timedelta(hours=10))
    a1 = sc.turn(a, DAY + timedelta(hours=10), timedelta(seconds=2), "cancel_premium", "billing")
    sc.repo.set_feedback(a, a1.reply_id, helpful=True)

    b = sc.conversation(Channel.TELEGRAM, DAY + timedelta(hours=11))
    b1 = sc.turn(b, DAY + timedelta(hours=11) - timedelta(seconds=4), timedelta(seconds=4), "refund_request",
                 "billing", handoff=(HandoffReason.CUSTOMER_REQUEST, Urgency.NORMAL))
    assert b1.handoff_id is not None
    sc.desk.reply(b1.handoff_id, "ann", "Ann", "Hi, Ann here", "pending")
    sc.desk.resolve(b1.handoff_id, "ann", "How would you rate us?", "pending")
    assert sc.desk.record_csat(b, 4) == b1.handoff_id
    queued = DAY + timedelta(hours=11)
    sc.handoff_times(b1.handoff_id, first_response_at=queued + 5 * minute, resolved_at=queued + 30 * minute,
                     first_response_due=queued + 60 * minute, resolution_due=queued + 24 * 60 * minute)

    c = sc.conversation(Channel.WEB, DAY + timedelta(days=1, hours=9))
    c1 = sc.turn(c, DAY + timedelta(days=1, hours=9), timedelta(seconds=1), "payment_failed", "billing")
    sc.repo.set_feedback(c, c1.reply_id, helpful=False)
    c2 = sc.turn(c, DAY + timedelta(days=1, hours=9, minutes=1), timedelta(seconds=1), None, "technical",
                 handoff=(HandoffReason.LOW_CONFIDENCE, Urgency.HIGH))
    assert c2.handoff_id is not None
    queued = DAY + timedelta(days=1, hours=9, minutes=1, seconds=1)
    sc.handoff_times(c2.handoff_id, first_response_due=queued + 15 * minute, resolution_due=queued + 240 * minute)
    flagged = sc.desk.flag_sla_breaches(datetime.now(UTC))
    assert sorted(flagged) == [(c2.handoff_id, "first_response"), (c2.handoff_id, "resolution")]

    d = sc.conversation(Channel.WEB, DAY + timedelta(days=1, hours=14))
    d1 = sc.turn(d, DAY + timedelta(days=1, hours=14) - timedelta(seconds=3), timedelta(seconds=3),
                 "refund_request", "billing", handoff=(HandoffReason.CUSTOMER_REQUEST, Urgency.HIGH))
    assert d1.handoff_id is not None
    sc.desk.reply(d1.handoff_id, "bob", "Bob", "Sorry for the wait", None)
    sc.desk.resolve(d1.handoff_id, "bob", None, None)
    queued = DAY + timedelta(days=1, hours=14)
    sc.handoff_times(d1.handoff_id, first_response_at=queued + 20 * minute, resolved_at=queued + 60 * minute,
                     first_response_due=queued + 15 * minute, resolution_due=queued + 240 * minute)

    e = sc.conversation(Channel.SLACK, DAY - timedelta(days=5))
    sc.turn(e, DAY - timedelta(days=5), timedelta(seconds=9), "greet", "billing", DecisionKind.RESPOND)
    sc.conversation(Channel.WEB, DAY + timedelta(hours=12))  # opened, never written to
    return {"b": b1.handoff_id, "c": c2.handoff_id, "d": d1.handoff_id}


def test_the_whole_report(db: Database) -> None:
    build(db)
    report = KpiRepository(db).report(WINDOW)

    conv = report.conversations
    assert (conv.total, conv.handed_off, conv.deflected) == (4, 3, 1)
    assert (conv.deflection_rate, conv.handoff_rate) == (0.25, 0.75)
    assert conv.by_channel == (Count("web", 3), Count("telegram", 1), Count("api", 0), Count("slack", 0))

    assert astuple(report.bot_first_response) == pytest.approx((4, 2.5, 3.7, 2.5))  # 1, 2, 3 and 4 s
    assert astuple(report.agent_first_response) == pytest.approx((2, 750, 1110, 750))  # 5 and 20 min
    assert astuple(report.resolution) == pytest.approx((2, 2700, 3420, 2700))  # 30 and 60 min

    assert (report.handoffs.total, report.handoffs.resolved) == (3, 2)
    assert report.handoffs.by_reason == (Count("customer_request", 2), Count("low_confidence", 1))

    csat = report.csat
    assert (csat.resolved, csat.responses, csat.distribution) == (2, 1, (0, 0, 0, 1, 0))
    assert (csat.average, csat.response_rate) == (4.0, 0.5)

    assert report.sla == (
        SlaLine("billing", Urgency.HIGH, 1, 0, 1, 1, 0),  # D: answered late, resolved in time
        SlaLine("technical", Urgency.HIGH, 1, 0, 1, 0, 1),  # C: flagged by the monitor twice
        SlaLine("billing", Urgency.NORMAL, 1, 1, 0, 1, 0),  # B: all in time
        SlaLine(None, Urgency.HIGH, 2, 0, 2, 1, 1),
        SlaLine(None, Urgency.NORMAL, 1, 1, 0, 1, 0),
    )
    high = report.sla[3]
    assert (high.first_response_attainment, high.resolution_attainment, high.breaches) == (0.0, 0.5, 3)

    assert report.intents == (
        IntentVolume("refund_request", 2, 2, 0),
        IntentVolume("cancel_premium", 1, 1, 0),
        IntentVolume("payment_failed", 1, 1, 1),
        IntentVolume(None, 1, 1, 0),
    )
    answers = report.answers
    assert (answers.answered, answers.helpful, answers.unhelpful, answers.unhelpful_rate) == (2, 1, 1, 0.5)

    days = {p.day: p for p in report.daily}
    assert list(days) == [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    first, second, third = report.daily
    assert (first.conversations, first.handoffs, first.csat_average, first.deflection_rate) == (0, 0, None, None)
    assert (second.conversations, second.handed_off, second.deflected, second.handoffs, second.resolved,
            second.sla_breaches, second.csat_responses, second.csat_average, second.unhelpful) == (
        2, 1, 1, 1, 1, 0, 1, 4.0, 0)
    assert (third.conversations, third.handed_off, third.deflection_rate, third.handoffs, third.resolved,
            third.sla_breaches, third.csat_responses, third.unhelpful) == (2, 2, 0.0, 2, 1, 2, 0, 1)


def test_filters_by_team_and_channel(db: Database) -> None:
    build(db)
    kpis = KpiRepository(db)
    billing = kpis.report(KpiQuery(WINDOW.start, WINDOW.end, team="billing"))
    # A (triage routed it to billing), B and D (handed to billing); C ended with technical.
    assert (billing.conversations.total, billing.conversations.handed_off) == (3, 2)
    assert (billing.handoffs.total, billing.csat.responses) == (2, 1)
    assert [(line.team, line.urgency) for line in billing.sla] == [
        ("billing", Urgency.HIGH), ("billing", Urgency.NORMAL), (None, Urgency.HIGH), (None, Urgency.NORMAL)]
    assert [v.intent for v in billing.intents] == ["refund_request", "cancel_premium"]

    telegram = kpis.report(KpiQuery(WINDOW.start, WINDOW.end, channel=Channel.TELEGRAM))
    assert telegram.conversations.by_channel == (Count("telegram", 1),)
    assert (telegram.conversations.total, telegram.handoffs.total) == (1, 1)
    assert telegram.bot_first_response == DurationStats(1, 4.0, 4.0, 4.0)
    assert telegram.agent_first_response == DurationStats(1, 300.0, 300.0, 300.0)

    nobody = kpis.report(KpiQuery(WINDOW.start, WINDOW.end, team="no_such_team"))
    assert (nobody.conversations.total, nobody.handoffs.total, nobody.csat.average) == (0, 0, None)
    assert nobody.agent_first_response == DurationStats(0, None, None, None)


def test_window_edges_are_half_open(db: Database) -> None:
    build(db)
    kpis = KpiRepository(db)
    only_b = kpis.report(KpiQuery(DAY + timedelta(hours=11) - timedelta(seconds=1), DAY + timedelta(hours=11)))
    assert only_b.conversations.total == 0  # B started exactly at the end
    assert kpis.report(KpiQuery(DAY + timedelta(hours=11), DAY + timedelta(hours=12))).conversations.total == 1
    partial = kpis.report(KpiQuery(DAY + timedelta(hours=12), DAY + timedelta(days=1, hours=1)))
    assert [p.day for p in partial.daily] == [date(2026, 11, 2), date(2026, 11, 3)]


def test_sla_pending_reopened_and_rerated(db: Database) -> None:
    ids = build(db)
    kpis, desk = KpiRepository(db), DeskStore(db)
    # What the SLA monitor flagged stays breached, even judged at a moment before the due times.
    before_due = DAY + timedelta(days=1, hours=9, minutes=2)
    lines = {(line.team, line.urgency): line for line in kpis.report(WINDOW, now=before_due).sla}
    assert lines[("technical", Urgency.HIGH)] == SlaLine("technical", Urgency.HIGH, 1, 0, 1, 0, 1)

    # A reopened case: its old breach stays counted (the event log remembers it), its CSAT no longer counts.
    desk.resolve(ids["c"], "sue", None, None)
    desk.reopen(ids["b"], "sue", datetime.now(UTC) + timedelta(hours=1), datetime.now(UTC) + timedelta(hours=2))
    desk.reopen(ids["c"], "sue", datetime.now(UTC) + timedelta(hours=1), datetime.now(UTC) + timedelta(hours=2))
    report = kpis.report(WINDOW)
    lines = {(line.team, line.urgency): line for line in report.sla}
    assert lines[("technical", Urgency.HIGH)] == SlaLine("technical", Urgency.HIGH, 1, 0, 1, 0, 1)
    assert lines[("billing", Urgency.NORMAL)] == SlaLine("billing", Urgency.NORMAL, 1, 0, 0, 0, 0)  # pending again
    assert (report.csat.resolved, report.csat.responses, report.csat.average) == (1, 0, None)


def test_a_fixed_number_of_queries_whatever_the_data(db: Database) -> None:
    kpis = KpiRepository(db)
    team = KpiQuery(WINDOW.start, WINDOW.end, team="billing", channel=Channel.WEB)

    def statements(query: KpiQuery) -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            kpis.report(query)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    assert statements(WINDOW) == statements(team) == 6
    build(db)
    assert statements(WINDOW) == statements(team) == 6  # no query per conversation, handoff or day


def test_query_validation_and_percentiles() -> None:
    with pytest.raises(ValidationError, match="before its end"):
        KpiQuery(WINDOW.end, WINDOW.start)
    with pytest.raises(ValidationError, match="timezone-aware"):
        KpiQuery(datetime(2026, 11, 1), datetime(2026, 11, 2))
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([10.0, 0.0, 20.0], 0.5) == 10.0
    assert percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)
    assert astuple(DurationStats.of([-1.0, 3.0])) == pytest.approx((2, 1.5, 2.7, 1.5))
