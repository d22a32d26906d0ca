"""The operators' KPIs for supervisors and admins: ``GET /api/kpis`` and the daily series as ``/api/kpis.csv``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServicesDep, require_roles
from domain.enums import Channel, Role
from domain.errors import ValidationError
from domain.kpis import KpiQuery, KpiReport
from domain.models import StaffUser

router = APIRouter(prefix="/api", tags=["operations"])

SupervisorDep = Annotated[StaffUser, Depends(require_roles(Role.SUPERVISOR))]
DEFAULT_DAYS = 30
MAX_DAYS = 366
FromParam = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD (UTC day) or ISO 8601 date-time; "
                                        f"default: {DEFAULT_DAYS} days before `to`")]
ToParam = Annotated[str | None, Query(description="YYYY-MM-DD (that whole UTC day is included) or ISO 8601 "
                                      "date-time (excluded); default: the end of today (UTC)")]
TeamParam = Annotated[str | None, Query(description="only this team (see /api/desk for the keys)")]
ChannelParam = Annotated[str | None, Query(description="web, slack, telegram or api")]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight from the domain dataclasses


class WindowOut(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    days: int
    team: str | None
    channel: str | None


class CountOut(_Out):
    key: str
    count: int


class DurationOut(_Out):
    count: int
    p50_seconds: float | None
    p90_seconds: float | None
    mean_seconds: float | None


class ConversationsOut(_Out):
    total: int
    deflected: int
    handed_off: int
    deflection_rate: float | None
    handoff_rate: float | None
    by_channel: list[CountOut]


class HandoffsOut(_Out):
    total: int
    resolved: int
    by_reason: list[CountOut]


class FirstResponseOut(BaseModel):
    bot: DurationOut
    agent: DurationOut


class CsatOut(_Out):
    resolved: int
    responses: int
    response_rate: float | None
    average: float | None
    distribution: dict[str, int] = Field(description="how many times each score 1-5 was given")


class SlaTargetOut(BaseModel):
    urgency: str
    first_response_minutes: float
    resolution_minutes: float


class SlaLineOut(_Out):
    team: str | None = Field(description="null: every team")
    urgency: str
    handoffs: int
    first_response_met: int
    first_response_breached: int
    first_response_attainment: float | None
    resolution_met: int
    resolution_breached: int
    resolution_attainment: float | None
    breaches: int


class SlaOut(BaseModel):
    targets: list[SlaTargetOut]
    lines: list[SlaLineOut]


class IntentOut(_Out):
    intent: str | None = Field(description="null: out of scope")
    messages: int
    conversations: int
    unhelpful: int


class AnswersOut(_Out):
    answered: int
    helpful: int
    unhelpful: int
    unhelpful_rate: float | None


class DailyOut(_Out):
    day: date
    conversations: int
    deflected: int
    handed_off: int
    deflection_rate: float | None
    handoffs: int
    resolved: int
    sla_breaches: int
    csat_responses: int
    csat_average: float | None
    unhelpful: int


class TeamOut(BaseModel):
    key: str
    name: str


class KpisOut(BaseModel):
    window: WindowOut
    conversations: ConversationsOut
    handoffs: HandoffsOut
    first_response: FirstResponseOut
    resolution: DurationOut
    csat: CsatOut
    sla: SlaOut
    intents: list[IntentOut]
    answers: AnswersOut
    daily: list[DailyOut]
    teams: list[TeamOut] = Field(description="every team, for filters")


@router.get("/kpis", response_model=KpisOut, response_model_by_alias=True)
def kpis(services: ServicesDep, _: SupervisorDep, start: FromParam = None, to: ToParam = None,
         team: TeamParam = None, channel: ChannelParam = None) -> KpisOut:
    """Deflection, handoffs, response and resolution times, CSAT, SLA attainment, volumes (supervisors, admins).

    Conversations count by the day they started, handoffs by the day they were created; both are followed
    to their current state. Days are UTC.
    """
    query = _query(services, start, to, team, channel)
    report = services.kpis.report(query)
    return _out(services, report)


@router.get("/kpis.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "one line per UTC day"}})
def kpis_csv(services: ServicesDep, _: SupervisorDep, start: FromParam = None, to: ToParam = None,
             team: TeamParam = None, channel: ChannelParam = None) -> Response:
    """The daily series as CSV (same parameters and access as ``/api/kpis``)."""
    query = _query(services, start, to, team, channel)
    report = services.kpis.report(query)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["date", "conversations", "deflected", "handed_off", "deflection_rate", "handoffs", "resolved",
                     "sla_breaches", "csat_responses", "csat_average", "unhelpful_answers"])
    for p in report.daily:
        writer.writerow([p.day.isoformat(), p.conversations, p.deflected, p.handed_off, _decimal(p.deflection_rate),
                         p.handoffs, p.resolved, p.sla_breaches, p.csat_responses, _decimal(p.csat_average),
                         p.unhelpful])
    first, last = report.daily[0].day, report.daily[-1].day
    filename = f"frontdesk-kpis-{first.isoformat()}-to-{last.isoformat()}.csv"
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --- input ---------------------------------------------------------------------------------------------

def _query(services: ServicesDep, start: str | None, to: str | None, team: str | None,
           channel: str | None) -> KpiQuery:
    """Validate the parameters into a query; every problem is a 422 naming the parameter."""
    end = _instant("to", to, end_of_day=True) if to else _end_of_today()
    begin = _instant("from", start, end_of_day=False) if start else end - timedelta(days=DEFAULT_DAYS)
    if begin >= end:
        raise ValidationError(f"from ({begin.isoformat()}) must be before to ({end.isoformat()})")
    if end - begin > timedelta(days=MAX_DAYS):
        raise ValidationError(f"the window from {begin.date()} to {end.date()} is longer than {MAX_DAYS} days")
    if team is not None and team not in services.teams.teams:
        raise ValidationError(f"unknown team '{team}' (teams: {', '.join(sorted(services.teams.teams))})")
    try:
        chosen = Channel(channel) if channel is not None else None
    except ValueError as e:
        raise ValidationError(f"channel must be one of: {', '.join(sorted(c.value for c in Channel))}") from e
    return KpiQuery(begin, end, team, chosen)


def _instant(name: str, raw: str, *, end_of_day: bool) -> datetime:
    """``YYYY-MM-DD`` is a UTC day (``to`` includes it); a date-time without a zone is UTC."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValidationError(f"{name}: '{raw[:40]}' is not a date; use YYYY-MM-DD or an ISO 8601 date-time "
                              "such as 2026-11-01T08:00:00Z") from e
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _end_of_today() -> datetime:
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(), UTC)


# --- output --------------------------------------------------------------------------------------------

def _out(services: ServicesDep, report: KpiReport) -> KpisOut:
    q = report.query
    csat = report.csat
    return KpisOut(
        window=WindowOut(start=q.start, end=q.end, days=len(report.daily), team=q.team,
                         channel=q.channel.value if q.channel else None),
        conversations=ConversationsOut.model_validate(report.conversations),
        handoffs=HandoffsOut.model_validate(report.handoffs),
        first_response=FirstResponseOut(bot=DurationOut.model_validate(report.bot_first_response),
                                        agent=DurationOut.model_validate(report.agent_first_response)),
        resolution=DurationOut.model_validate(report.resolution),
        csat=CsatOut(resolved=csat.resolved, responses=csat.responses, response_rate=csat.response_rate,
                     average=csat.average,
                     distribution={str(score): n for score, n in enumerate(csat.distribution, start=1)}),
        sla=SlaOut(targets=[SlaTargetOut(urgency=u, first_response_minutes=t.first_response_minutes,
                                         resolution_minutes=t.resolution_minutes)
                            for u, t in sorted(services.settings.handoff.sla.items(), key=_most_urgent)],
                   lines=[SlaLineOut.model_validate(line) for line in report.sla]),
        intents=[IntentOut.model_validate(i) for i in report.intents],
        answers=AnswersOut.model_validate(report.answers),
        daily=[DailyOut.model_validate(p) for p in report.daily],
        teams=[TeamOut(key=t.key, name=t.name) for t in services.teams.teams.values()],
    )


def _most_urgent(item: tuple[str, object]) -> int:
    return ("critical", "high", "normal", "low").index(item[0])


def _decimal(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
