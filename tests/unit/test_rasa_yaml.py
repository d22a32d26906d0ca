"""Rasa 3 nlu.yml reading and writing, teams config and domain responses."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.enums import Urgency
from domain.errors import SourceFileError
from handoff.routing import load_teams, parse_teams
from nlu.rasa_domain import load_responses, parse_responses
from nlu.rasa_yaml import dump_nlu, parse_nlu, read_nlu, strip_entities
from settings import DEMO_DIR

pytestmark = pytest.mark.unit

SAMPLE = """version: "3.1"
nlu:
- intent: cancel_subscription
  examples: |
    - I want to cancel my [Premium](plan)
    - stop my [family plan]{"entity": "plan", "value": "family"} please
- intent: greet
  metadata:
    source: demo
  examples: |
    - hi
    - hello there
- synonym: premium
  examples: |
    - prem
    - premium individual
- regex: email_address
  examples: |
    - [^@\\s]+@[^@\\s]+\\.[^@\\s]+
- lookup: plan
  examples: |
    - Free
    - Duo
"""


def test_reads_every_block_kind() -> None:
    data = parse_nlu(SAMPLE)
    assert [(b.kind, b.name) for b in data.blocks] == [
        ("intent", "cancel_subscription"), ("intent", "greet"), ("synonym", "premium"),
        ("regex", "email_address"), ("lookup", "plan"),
    ]
    assert data.of_kind("regex")[0].examples == [r"[^@\s]+@[^@\s]+\.[^@\s]+"]
    assert data.of_kind("intent")[1].extra == {"metadata": {"source": "demo"}}
    assert data.training_examples()[:2] == [
        ("I want to cancel my Premium", "cancel_subscription"),
        ("stop my family plan please", "cancel_subscription"),
    ]


def test_write_then_read_keeps_everything() -> None:
    data = parse_nlu(SAMPLE)
    again = parse_nlu(dump_nlu(data))
    assert [(b.kind, b.name, b.examples, b.extra) for b in again.blocks] == [
        (b.kind, b.name, b.examples, b.extra) for b in data.blocks]
    assert again.version == "3.1"


def test_demo_training_data_round_trips(tmp_path: Path) -> None:
    data = read_nlu(DEMO_DIR / "nlu" / "nlu.yml")
    out = tmp_path / "nlu.yml"
    out.write_text(dump_nlu(data))
    again = read_nlu(out)
    assert [(b.kind, b.name, b.examples, b.extra) for b in again.blocks] == [
        (b.kind, b.name, b.examples, b.extra) for b in data.blocks]
    assert {b.kind for b in data.blocks} == {"intent", "synonym", "regex", "lookup"}


def test_strip_entities() -> None:
    assert strip_entities("move to [Duo](plan) on my [iPad](device:ipad)") == "move to Duo on my iPad"
    assert strip_entities('[x]{"entity": "e"} y') == "x y"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("nlu:\n- intent: a\n  examples: |\n    - x\n  - bad: [\n", 5, "invalid YAML"),
        ("- just a list\n", 1, "must be a mapping"),
        ('version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - x\n- something: b\n  examples: |\n    - y\n', 6,
         "exactly one of"),
        ("nlu:\n- intent: a\n", 2, "has no 'examples'"),
        ("nlu:\n- intent: a\n  examples: |\n    - fine\n    not a list line\n", 5, "must start with '- '"),
        ("nlu: 5\n", 1, "must be a list"),
    ],
)
def test_malformed_yaml_reports_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(SourceFileError) as err:
        parse_nlu(text, "data/nlu.yml")
    assert err.value.problem.path == "data/nlu.yml"
    assert err.value.problem.line == line
    assert reason in err.value.problem.reason


def test_teams_config() -> None:
    teams = parse_teams("teams:\n  billing: {name: Billing}\n  tech: {name: Tech}\ndefault_team: tech\n"
                        "intents:\n  refund: {team: billing, urgency: high}\n  hi: tech\n")
    assert teams.team_for("refund") == "billing"
    assert teams.team_for(None) == "tech"
    assert teams.team_for("unknown") == "tech"
    assert teams.urgency_priors() == {"refund": Urgency.HIGH, "hi": Urgency.NORMAL}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("teams: {}\n", "'teams' must map"),
        ("teams:\n  a: {}\ndefault_team: b\n", "default_team 'b' is not a team"),
        ("teams:\n  a: {}\nintents:\n  x: {team: nope}\n", "unknown team 'nope'"),
        ("teams:\n  a: {}\nintents:\n  x: {team: a, urgency: whenever}\n", "urgency must be"),
        ("teams: [\n", "invalid YAML"),
    ],
)
def test_bad_teams_config(text: str, reason: str) -> None:
    with pytest.raises(SourceFileError, match=r"^teams\.yml") as err:
        parse_teams(text, "teams.yml")
    assert reason in err.value.problem.reason


def test_demo_teams_route_every_demo_intent() -> None:
    teams = load_teams(DEMO_DIR / "teams.yml")
    intents = set(read_nlu(DEMO_DIR / "nlu" / "nlu.yml").intents)
    assert intents <= set(teams.routes)
    assert {"billing", "technical", "account", "trust_safety"} <= set(teams.teams)


def test_domain_responses() -> None:
    responses = load_responses(DEMO_DIR / "nlu" / "domain.yml")
    assert {"utter_greet", "utter_goodbye", "utter_thank_you"} <= set(responses)
    assert parse_responses("responses:\n  utter_x:\n  - text: hi\n  - text: hey\n") == {"utter_x": ("hi", "hey")}
    with pytest.raises(SourceFileError, match="no text"):
        parse_responses("responses:\n  utter_x:\n  - image: a.png\n")
