"""Read and write a Rasa 3 ``domain.yml``: intents, entities and responses (other sections kept as they are)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from domain.errors import SourceFileError, SourceProblem
from nlu.rasa_yaml import NluData

# Entity names in annotated examples: [text](name), [text](name:value), [text]{"entity": "name", ...}.
_SHORT_ENTITY_RE = re.compile(r"\[[^\]]+?\]\((?P<name>[^):]+)(?::[^)]*)?\)")
_JSON_ENTITY_RE = re.compile(r"\[[^\]]+?\]\{[^}]*?\"entity\"\s*:\s*\"(?P<name>[^\"]+)\"")


@dataclass
class RasaDomain:
    """The parts of a domain the bot uses, plus every other top-level key untouched.

    ``intent_properties`` / ``entity_properties`` hold the mapping form of an item
    (``- inform: {use_entities: [name]}``, ``- city: {roles: [from, to]}``); plain names have none.
    ``responses`` keeps every variant whole (text, buttons, image, condition, channel, ...).
    """

    version: str = "3.1"
    intents: list[str] = field(default_factory=list)
    intent_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    entities: list[str] = field(default_factory=list)
    entity_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def response_texts(self) -> dict[str, tuple[str, ...]]:
        """``utter_<name>`` -> its text variants (variants without text are left out)."""
        out: dict[str, tuple[str, ...]] = {}
        for name, variants in self.responses.items():
            texts = tuple(str(v["text"]).strip() for v in variants if v.get("text"))
            if texts:
                out[name] = texts
        return out


def parse_domain(text: str, source: str = "<string>") -> RasaDomain:
    """Parse a Rasa 3 domain.

    Raises:
        SourceFileError: malformed YAML or a malformed ``intents`` / ``entities`` / ``responses`` section,
            with the file and line.
    """
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise SourceFileError(SourceProblem(source, line, f"invalid YAML: {e.problem}")) from e
    except YAMLError as e:
        raise SourceFileError(SourceProblem(source, None, f"invalid YAML: {e}")) from e
    if doc is None:
        return RasaDomain()
    if not isinstance(doc, dict):
        raise SourceFileError(SourceProblem(source, 1, "a domain file must be a mapping"))
    domain = RasaDomain(version=str(doc.get("version", "3.1")))
    domain.intents, domain.intent_properties = _names(doc, "intents", source)
    domain.entities, domain.entity_properties = _names(doc, "entities", source)
    domain.responses = _responses(doc, source)
    domain.extra = {str(k): _plain(v) for k, v in doc.items() if k not in ("version", "intents", "entities",
                                                                              "responses")}
    return domain


def load_domain(path: Path) -> RasaDomain:
    """Read a domain file; raises SourceFileError when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceFileError(SourceProblem(str(path), None, f"cannot read file: {e}")) from e
    return parse_domain(text, str(path))


def dump_domain(domain: RasaDomain) -> str:
    """Serialize to Rasa 3 YAML; parsing the result gives the same domain."""
    doc: dict[str, Any] = {"version": domain.version}
    if domain.intents:
        doc["intents"] = [_item(n, domain.intent_properties.get(n)) for n in domain.intents]
    if domain.entities:
        doc["entities"] = [_item(n, domain.entity_properties.get(n)) for n in domain.entities]
    if domain.responses:
        doc["responses"] = {name: [dict(v) for v in variants] for name, variants in domain.responses.items()}
    doc.update(domain.extra)
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    return buffer.getvalue()


def write_domain(domain: RasaDomain, path: Path) -> None:
    """Write ``domain.yml``."""
    path.write_text(dump_domain(domain), encoding="utf-8")


def domain_for_nlu(nlu: NluData, base: RasaDomain | None = None) -> RasaDomain:
    """The domain Rasa needs to train on ``nlu``: its intents and annotated entities, plus ``base``'s responses.

    Intents and entities of ``base`` keep their properties; ones only ``base`` lists are dropped from the
    intents (Rasa warns about intents without examples) but kept as entities.
    """
    out = RasaDomain(version=nlu.version)
    if base is not None:
        out.responses = {k: [dict(v) for v in variants] for k, variants in base.responses.items()}
        out.extra = dict(base.extra)
    out.intents = list(nlu.intents)
    out.intent_properties = {k: v for k, v in (base.intent_properties if base else {}).items() if k in out.intents}
    entities = list(base.entities) if base else []
    for name in annotated_entities(e for examples in nlu.intents.values() for e in examples):
        if name not in entities:
            entities.append(name)
    out.entities = entities
    out.entity_properties = dict(base.entity_properties) if base else {}
    return out


def annotated_entities(examples: Iterable[str]) -> list[str]:
    """Entity names annotated in examples, in first-seen order."""
    seen: dict[str, None] = {}
    for example in examples:
        for regex in (_SHORT_ENTITY_RE, _JSON_ENTITY_RE):
            for match in regex.finditer(example):
                seen.setdefault(match.group("name").strip(), None)
    return list(seen)


def parse_responses(text: str, source: str = "<string>") -> dict[str, tuple[str, ...]]:
    """``utter_<name>`` -> text variants, for the bot's canned replies.

    Raises:
        SourceFileError: malformed YAML or a response without any text variant.
    """
    domain = parse_domain(text, source)
    texts = domain.response_texts()
    for name in domain.responses:
        if name not in texts:
            raise SourceFileError(SourceProblem(source, None, f"response '{name}' has no text variant"))
    return texts


def load_responses(path: Path) -> dict[str, tuple[str, ...]]:
    """Responses of a domain file; an absent file means no canned responses."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceFileError(SourceProblem(str(path), None, f"cannot read file: {e}")) from e
    return parse_responses(text, str(path))


def _names(doc: Any, key: str, source: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    raw = doc.get(key)
    if raw is None:
        return [], {}
    if not isinstance(raw, list):
        raise SourceFileError(SourceProblem(source, _line(doc, key), f"'{key}' must be a list"))
    names: list[str] = []
    properties: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(raw):
        if isinstance(item, str) and item.strip():
            name, props = item.strip(), None
        elif isinstance(item, dict) and len(item) == 1:
            key_name, value = next(iter(item.items()))
            if not isinstance(value, dict | None):
                raise SourceFileError(SourceProblem(source, _item_line(raw, index),
                                                    f"{key}: '{key_name}' must map to its properties"))
            name, props = str(key_name).strip(), _plain(value or {})
        else:
            raise SourceFileError(SourceProblem(source, _item_line(raw, index),
                                                f"each of '{key}' must be a name or '- name: {{...}}'"))
        if name in names:  # Rasa merges repeats too; the first one's properties win
            continue
        names.append(name)
        if props is not None:
            properties[name] = props
    return names, properties


def _responses(doc: Any, source: str) -> dict[str, list[dict[str, Any]]]:
    raw = doc.get("responses")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SourceFileError(SourceProblem(source, _line(doc, "responses"),
                                            "'responses' must map names to lists of variants"))
    out: dict[str, list[dict[str, Any]]] = {}
    for name, variants in raw.items():
        if not isinstance(variants, list) or not variants or not all(isinstance(v, dict) for v in variants):
            raise SourceFileError(SourceProblem(source, _line(raw, name),
                                                f"response '{name}' must be a list of variants like '- text: ...'"))
        out[str(name)] = [_plain(v) for v in variants]
    return out


def _item(name: str, props: dict[str, Any] | None) -> Any:
    return {name: props} if props is not None else name


def _plain(value: Any) -> Any:
    """ruamel's round-trip nodes (CommentedMap, ScalarFloat, LiteralScalarString, ...) as plain builtins."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, ScalarBoolean):
        return bool(value)
    for kind in (bool, str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def _line(node: Any, key: Any) -> int | None:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _item_line(seq: Any, index: int) -> int | None:
    try:
        return int(seq.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None
