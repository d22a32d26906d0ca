"""Rasa 3 ``domain.yml`` reading and writing: real-format files survive read -> write -> read."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import SourceFileError
from nlu.rasa_domain import (
    annotated_entities,
    domain_for_nlu,
    dump_domain,
    load_domain,
    load_responses,
    parse_domain,
    write_domain,
)
from nlu.rasa_yaml import parse_nlu, read_nlu
from settings import DEMO_DIR

pytestmark = pytest.mark.unit

# The domain `rasa init` (3.6) creates, verbatim (rasa/cli/initial_project/domain.yml, Apache-2.0).
MOODBOT = '''version: "3.1"

intents:
  - greet
  - goodbye
  - affirm
  - deny
  - mood_great
  - mood_unhappy
  - bot_challenge

responses:
  utter_greet:
  - text: "Hey! How are you?"

  utter_cheer_up:
  - text: "Here is something to cheer you up:"
    image: "https://i.imgur.com/nGF1K8f.jpg"

  utter_did_that_help:
  - text: "Did that help you?"

  utter_happy:
  - text: "Great, carry on!"

  utter_goodbye:
  - text: "Bye"

  utter_iamabot:
  - text: "I am a bot, powered by Rasa."

session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
'''

# The other forms Rasa 3 documents: intent and entity properties, slots with mappings, buttons, conditional
# and channel-specific variants, multi-line text, forms and actions.
RICH = '''version: "3.1"
intents:
- greet:
    use_entities: []
- inform:
    use_entities:
    - plan
    ignore_entities:
    - device
- request_refund
- chitchat:
    is_retrieval_intent: true
entities:
- plan
- city:
    roles:
    - departure
    - destination
- device:
    influence_conversation: false
slots:
  plan:
    type: categorical
    values: [free, premium, family]
    mappings:
    - type: from_entity
      entity: plan
responses:
  utter_ask_plan:
  - text: "Which plan are you on?"
    buttons:
    - title: "Premium"
      payload: '/inform{"plan":"premium"}'
    - title: "Family"
      payload: '/inform{"plan":"family"}'
  utter_refund:
  - condition:
    - type: slot
      name: plan
      value: premium
    text: "Premium refunds take 3-5 days."
  - text: |-
      Refunds take up to 10 days.
      You will get an email when it is done.
  - text: "Refunds: see our help page."
    channel: slack
  utter_logo:
  - image: "https://example.com/logo.png"
forms:
  refund_form:
    required_slots:
    - plan
actions:
- action_check_refund
- validate_refund_form
'''


@pytest.mark.parametrize("text", [MOODBOT, RICH, (DEMO_DIR / "nlu" / "domain.yml").read_text()],
                         ids=["rasa-init", "rich", "demo"])
def test_round_trip_keeps_intents_entities_and_responses(text: str, tmp_path: Path) -> None:
    first = parse_domain(text, "domain.yml")
    path = tmp_path / "domain.yml"
    write_domain(first, path)
    second = load_domain(path)
    assert second == first
    assert second.intents == first.intents and second.responses == first.responses
    assert dump_domain(second) == dump_domain(first)  # stable: writing twice changes nothing


def test_reads_what_rasa_means() -> None:
    mood = parse_domain(MOODBOT)
    assert mood.intents[:3] == ["greet", "goodbye", "affirm"] and len(mood.intents) == 7
    assert mood.responses["utter_cheer_up"] == [{"text": "Here is something to cheer you up:",
                                                "image": "https://i.imgur.com/nGF1K8f.jpg"}]
    assert mood.extra == {"session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True}}
    rich = parse_domain(RICH)
    assert rich.intents == ["greet", "inform", "request_refund", "chitchat"]
    assert rich.intent_properties["inform"] == {"use_entities": ["plan"], "ignore_entities": ["device"]}
    assert rich.intent_properties["greet"] == {"use_entities": []}
    assert rich.entities == ["plan", "city", "device"]
    assert rich.entity_properties["city"] == {"roles": ["departure", "destination"]}
    assert rich.responses["utter_refund"][0]["condition"][0]["value"] == "premium"
    assert rich.responses["utter_refund"][1]["text"] == ("Refunds take up to 10 days.\n"
                                                        "You will get an email when it is done.")
    assert rich.responses["utter_ask_plan"][0]["buttons"][1]["payload"] == '/inform{"plan":"family"}'
    assert set(rich.extra) == {"slots", "forms", "actions"}
    # The bot's canned replies: text variants only (the image-only response has none).
    assert rich.response_texts()["utter_refund"][2] == "Refunds: see our help page."
    assert "utter_logo" not in rich.response_texts()


def test_written_file_looks_like_rasa_yaml() -> None:
    text = dump_domain(parse_domain(RICH))
    assert text.startswith("version: '3.1'\nintents:\n  - greet:\n      use_entities: []\n")
    assert "\n  - request_refund\n" in text


@pytest.mark.parametrize(("text", "line", "words"), [
    ("intents: greet\n", 1, "'intents' must be a list"),
    ("intents:\n  - greet\n  - [a, b]\n", 3, "a name or"),
    ("intents:\n  - greet\n  - inform: [a]\n", 3, "must map to its properties"),
    ("entities:\n  - {a: 1, b: 2}\n", 2, "a name or"),
    ("responses:\n  utter_x: hello\n", 2, "must be a list of variants"),
    ("responses:\n  utter_x:\n  - text: [unclosed\n", 4, "invalid YAML"),
])
def test_malformed_domains_name_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(SourceFileError) as info:
        parse_domain(text, "bad/domain.yml")
    assert info.value.problem.path == "bad/domain.yml"
    assert info.value.problem.line == line
    assert words in info.value.problem.reason


def test_domain_for_training_comes_from_nlu() -> None:
    nlu = read_nlu(DEMO_DIR / "nlu" / "nlu.yml")
    base = load_domain(DEMO_DIR / "nlu" / "domain.yml")
    domain = domain_for_nlu(nlu, base)
    assert domain.intents == list(nlu.intents)
    assert set(domain.entities) == {"plan", "device", "payment_method"}
    assert domain.responses == base.responses
    bare = domain_for_nlu(parse_nlu(
        'nlu:\n- intent: a\n  examples: |\n    - go [Premium](plan)\n    - [x]{"entity": "city", "role": "to"}\n'
        '- intent: b\n  examples: |\n    - [y](size:large)\n'))
    assert bare.intents == ["a", "b"] and bare.entities == ["plan", "city", "size"] and bare.responses == {}
    assert annotated_entities(["no entities here", "[a]( plan )"]) == ["plan"]


def test_responses_for_the_bot_still_need_text(tmp_path: Path) -> None:
    assert load_responses(tmp_path / "absent.yml") == {}
    path = tmp_path / "domain.yml"
    path.write_text(MOODBOT)
    assert load_responses(path)["utter_greet"] == ("Hey! How are you?",)
    path.write_text("responses:\n  utter_logo:\n  - image: logo.png\n")
    with pytest.raises(SourceFileError, match="no text variant"):
        load_responses(path)
