"""Teams config (``teams.yml``): teams, the default team, and each intent's team and urgency prior."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from domain.enums import Urgency
from domain.errors import SourceFileError, SourceProblem
from domain.models import IntentRoute, StaffUser, Team
from handoff.hours import parse_hours


@dataclass(frozen=True)
class TeamsConfig:
    """Who handles what."""

    teams: dict[str, Team]
    default_team: str
    routes: dict[str, IntentRoute] = field(default_factory=dict)

    def team_for(self, intent: str | None) -> str:
        """The team an intent is routed to; the default team for unknown or out-of-scope messages."""
        return self.route(intent).team

    def route(self, intent: str | None) -> IntentRoute:
        """Team, urgency prior and skills for an intent (the default team for unknown intents)."""
        return self.routes.get(intent or "") or IntentRoute(self.default_team)

    def team(self, key: str) -> Team:
        """A team by key, or the default team."""
        return self.teams.get(key) or self.teams[self.default_team]

    def urgency_priors(self) -> dict[str, Urgency]:
        """Intent -> default urgency, for the urgency scorer."""
        return {intent: route.urgency for intent, route in self.routes.items()}


def parse_teams(text: str, source: str = "<string>") -> TeamsConfig:
    """Parse and validate a teams config.

    Raises:
        SourceFileError: with file, line where known, and reason.
    """
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise SourceFileError(SourceProblem(source, mark.line + 1 if mark else None,
                                            f"invalid YAML: {getattr(e, 'problem', e)}")) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("teams"), dict) or not doc["teams"]:
        raise SourceFileError(SourceProblem(source, 1, "'teams' must map team keys to {name, description}"))
    teams: dict[str, Team] = {}
    for key, spec in doc["teams"].items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise SourceFileError(SourceProblem(source, None, f"team '{key}' must be a mapping"))
        hours = None
        if spec.get("hours") is not None:
            if not isinstance(spec["hours"], dict):
                raise SourceFileError(SourceProblem(source, None, f"team '{key}': hours must be a mapping"))
            try:
                hours = parse_hours(spec["hours"])
            except ValueError as e:
                raise SourceFileError(SourceProblem(source, None, f"team '{key}': {e}")) from e
        tiers = spec.get("tiers", 3)
        if not isinstance(tiers, int) or not 1 <= tiers <= 9:
            raise SourceFileError(SourceProblem(source, None, f"team '{key}': tiers must be a number from 1 to 9"))
        teams[str(key)] = Team(str(key), str(spec.get("name") or key), str(spec.get("description") or ""),
                               hours, tiers)
    default = str(doc.get("default_team") or next(iter(teams)))
    if default not in teams:
        raise SourceFileError(SourceProblem(source, None, f"default_team '{default}' is not a team"))
    routes: dict[str, IntentRoute] = {}
    for intent, spec in (doc.get("intents") or {}).items():
        if isinstance(spec, str):
            spec = {"team": spec}
        if not isinstance(spec, dict):
            raise SourceFileError(SourceProblem(source, None, f"intent '{intent}' must be {{team, urgency}}"))
        team = str(spec.get("team") or default)
        if team not in teams:
            raise SourceFileError(SourceProblem(source, None, f"intent '{intent}' routes to unknown team '{team}'"))
        try:
            urgency = Urgency(str(spec.get("urgency") or "normal"))
        except ValueError as e:
            raise SourceFileError(SourceProblem(
                source, None, f"intent '{intent}': urgency must be low, normal, high or critical")) from e
        skills = spec.get("skills") or []
        if not isinstance(skills, list):
            raise SourceFileError(SourceProblem(source, None, f"intent '{intent}': skills must be a list"))
        routes[str(intent)] = IntentRoute(team, urgency, tuple(str(s) for s in skills))
    return TeamsConfig(teams, default, routes)


def can_take(agent: StaffUser, team: str, tier: int, required_skills: tuple[str, ...]) -> tuple[bool, str]:
    """Whether an agent may work a handoff, and why not.

    Supervisors and admins may take anything; agents need the team (or no team restriction), a tier at
    least as high as the handoff's, and every required skill.
    """
    if agent.roles & {"supervisor", "admin"}:
        return True, ""
    if agent.teams and team not in agent.teams:
        return False, f"this handoff belongs to the {team} team"
    if agent.tier < tier:
        return False, f"this handoff needs a tier {tier} agent"
    missing = sorted(set(required_skills) - agent.skills)
    if missing:
        return False, f"this handoff needs the skills: {', '.join(missing)}"
    return True, ""


def load_teams(path: Path) -> TeamsConfig:
    """Read ``teams.yml``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceFileError(SourceProblem(str(path), None, f"cannot read file: {e}")) from e
    return parse_teams(text, str(path))
