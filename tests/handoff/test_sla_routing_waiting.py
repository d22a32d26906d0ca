"""SLA status, routing eligibility, wait estimates and canned-response rendering, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.models import StaffUser
from handoff.canned import render, unknown_placeholders
from handoff.routing import can_take, parse_teams
from handoff.sla import SlaTarget, sla_status
from handoff.waiting import WaitInfo, describe_wait, expected_wait

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TARGET = SlaTarget(first_response_minutes=15, resolution_minutes=60)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("now", "first_response", "resolved", "first_breached", "resolution_breached"),
    [
        (at(5), None, None, False, False),
        (at(15), None, None, False, False),  # exactly on time is not late
        (at(16), None, None, True, False),
        (at(30), at(10), None, False, False),  # answered in time, still open
        (at(30), at(20), None, True, False),  # answered late
        (at(61), at(10), None, False, True),  # open past the resolution target
        (at(90), at(10), at(50), False, False),  # resolved in time, checked later
        (at(90), None, at(12), False, False),  # resolved without a reply, in time
        (at(90), at(10), at(70), False, True),
    ],
)
def test_sla_status(now: datetime, first_response: datetime | None, resolved: datetime | None,
                    first_breached: bool, resolution_breached: bool) -> None:
    status = sla_status(TARGET, T0, now, first_response, resolved)
    assert (status.first_response_breached, status.resolution_breached) == (first_breached, resolution_breached)
    assert status.first_response_due == at(15) and status.resolution_due == at(60)
    assert status.breached is (first_breached or resolution_breached)


def agent(roles: set[str] | None = None, teams: set[str] | None = None, skills: set[str] | None = None,
          tier: int = 1) -> StaffUser:
    return StaffUser(1, "ann", "Ann", frozenset(roles or {"agent"}), True, frozenset(teams or ()),
                     frozenset(skills or ()), tier)


@pytest.mark.parametrize(
    ("who", "team", "tier", "skills", "allowed", "why"),
    [
        (agent(), "billing", 1, (), True, ""),
        (agent(teams={"billing"}), "billing", 1, (), True, ""),
        (agent(teams={"billing"}), "technical", 1, (), False, "belongs to the technical team"),
        (agent(tier=1), "billing", 2, (), False, "needs a tier 2 agent"),
        (agent(tier=3), "billing", 2, (), True, ""),
        (agent(skills={"refunds"}), "billing", 1, ("refunds",), True, ""),
        (agent(skills={"refunds"}), "billing", 1, ("refunds", "german"), False, "skills: german"),
        (agent(roles={"supervisor"}, teams={"billing"}), "technical", 3, ("german",), True, ""),
    ],
)
def test_can_take(who: StaffUser, team: str, tier: int, skills: tuple[str, ...], allowed: bool, why: str) -> None:
    ok, reason = can_take(who, team, tier, skills)
    assert ok is allowed and why in reason


def test_routes_carry_skills_tiers_and_hours() -> None:
    teams = parse_teams("""
teams:
  billing: {name: Billing, tiers: 2, hours: {timezone: Europe/London, mon-fri: "09:00-17:00"}}
  technical: {name: Tech}
default_team: technical
intents:
  refund_request: {team: billing, urgency: normal, skills: [refunds]}
""")
    route = teams.route("refund_request")
    assert (route.team, route.skills) == ("billing", ("refunds",))
    assert teams.route("unknown").team == "technical" and teams.route(None).skills == ()
    assert teams.teams["billing"].tiers == 2 and teams.teams["technical"].tiers == 3
    billing_hours = teams.teams["billing"].hours
    assert billing_hours is not None and billing_hours.timezone == "Europe/London"
    assert teams.teams["technical"].hours is None


@pytest.mark.parametrize(
    ("position", "median", "agents", "expected"),
    [
        (1, 4.0, 1, 4.0),
        (3, 4.0, 1, 12.0),
        (3, 4.0, 2, 8.0),
        (3, 4.0, 0, 12.0),  # nobody seen recently: count one agent
        (1, None, 1, 10.0),  # no history: the default
        (1, 0.2, 5, 1.0),  # never promise less than a minute
    ],
)
def test_expected_wait(position: int, median: float | None, agents: int, expected: float) -> None:
    assert expected_wait(position, median, agents, default_minutes=10.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("info", "text"),
    [
        (WaitInfo(1, 3.2, True), "You are next in line. The expected wait is about 3 minutes."),
        (WaitInfo(4, 1.0, True), "You are number 4 in the queue. The expected wait is about 1 minute."),
        (WaitInfo(2, 150.0, True), "You are number 2 in the queue. The expected wait is about 2 hours."),
        (WaitInfo(1, None, False, "Mon–Fri 09:00–17:00 (Europe/London)",
                  datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
         "Nobody from the team is on duty right now. Our hours are Mon–Fri 09:00–17:00 (Europe/London). "
         "The next opening is Mon 09:00. A person will reply here then."),
    ],
)
def test_describe_wait(info: WaitInfo, text: str) -> None:
    assert describe_wait(info) == text


def test_canned_rendering_is_safe() -> None:
    articles = {"billing-refunds": ("Refunds", "/help/articles/billing-refunds")}
    body = ("Hi {customer_name}, {agent_name} here. See {article:billing-refunds} and {article:nope}. "
            "{customer_name.__class__} {0} {}")
    text = render(body, "Kim", "Ann", articles.get)
    assert text.startswith("Hi Kim, Ann here. See Refunds: /help/articles/billing-refunds and "
                           "[missing article nope].")
    assert text.endswith("{customer_name.__class__} {0} {}")  # left as typed, never evaluated
    assert render("Hi {customer_name}", None, "Ann", articles.get) == "Hi there"
    assert unknown_placeholders(body) == ["{customer_name.__class__}", "{0}", "{}"]
    assert unknown_placeholders("Hi {customer_name}, see {article:billing-refunds}") == []
