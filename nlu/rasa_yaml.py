"""Read and write Rasa 3 ``nlu.yml``: intents, examples, synonyms, regexes and lookup tables."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from domain.errors import SourceFileError, SourceProblem

# [text](entity), [text](entity:value), [text]{"entity": ...}, [text]{...}[...]
_ENTITY_RE = re.compile(r"\[(?P<text>[^\]]+?)\](?:\((?P<short>[^)]+)\)|\{(?P<json>[^}]*)\})")
_BLOCK_KINDS = ("intent", "synonym", "regex", "lookup")


@dataclass
class NluBlock:
    """One ``- intent: / synonym: / regex: / lookup:`` entry with its examples and any other keys."""

    kind: str
    name: str
    examples: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class NluData:
    """The content of one or more ``nlu.yml`` files, in file order."""

    version: str = "3.1"
    blocks: list[NluBlock] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[NluBlock]:
        """Blocks of one kind (intent, synonym, regex, lookup)."""
        return [b for b in self.blocks if b.kind == kind]

    @property
    def intents(self) -> dict[str, list[str]]:
        """Intent name -> raw examples (entity annotations kept); repeated intent blocks are merged."""
        out: dict[str, list[str]] = {}
        for block in self.of_kind("intent"):
            out.setdefault(block.name, []).extend(block.examples)
        return out

    def training_examples(self) -> list[tuple[str, str]]:
        """(plain text, intent) pairs with entity markup removed, duplicates dropped."""
        seen: set[tuple[str, str]] = set()
        pairs: list[tuple[str, str]] = []
        for intent, examples in self.intents.items():
            for example in examples:
                pair = (strip_entities(example), intent)
                if pair[0] and pair not in seen:
                    seen.add(pair)
                    pairs.append(pair)
        return pairs


def strip_entities(example: str) -> str:
    """``I want [Premium](plan)`` -> ``I want Premium``."""
    return _ENTITY_RE.sub(lambda m: m.group("text"), example).strip()


def parse_nlu(text: str, source: str = "<string>") -> NluData:
    """Parse Rasa NLU YAML.

    Raises:
        SourceFileError: with the file and line of the first problem.
    """
    yaml = YAML(typ="rt")
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise SourceFileError(SourceProblem(source, line, f"invalid YAML: {e.problem}")) from e
    if doc is None:
        return NluData()
    if not isinstance(doc, dict):
        raise SourceFileError(SourceProblem(source, 1, "the file must be a mapping with an 'nlu' key"))
    entries = doc.get("nlu", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise SourceFileError(SourceProblem(source, _line(doc, "nlu"), "'nlu' must be a list of entries"))
    data = NluData(version=str(doc.get("version", "3.1")))
    for index, entry in enumerate(entries):
        line = _item_line(entries, index)
        if not isinstance(entry, dict):
            raise SourceFileError(SourceProblem(source, line, "each 'nlu' entry must be a mapping"))
        kinds = [k for k in _BLOCK_KINDS if k in entry]
        if len(kinds) != 1:
            raise SourceFileError(SourceProblem(
                source, line, "each entry needs exactly one of 'intent', 'synonym', 'regex', 'lookup'"))
        kind = kinds[0]
        name = entry[kind]
        if not isinstance(name, str) or not name.strip():
            raise SourceFileError(SourceProblem(source, line, f"'{kind}' needs a non-empty name"))
        raw = entry.get("examples")
        if raw is None:
            raise SourceFileError(SourceProblem(source, line, f"{kind} '{name}' has no 'examples'"))
        examples = _examples(raw, source, _line(entry, "examples") or line, f"{kind} '{name}'")
        extra = {k: _plain(v) for k, v in entry.items() if k not in (kind, "examples")}
        data.blocks.append(NluBlock(kind, name.strip(), examples, extra, line))
    return data


def read_nlu(path: Path) -> NluData:
    """Read one ``nlu.yml`` file; raises SourceFileError on the first problem."""
    data, problems = read_nlu_tolerant(path)
    if problems:
        raise SourceFileError(problems[0])
    return data


def read_nlu_tolerant(path: Path) -> tuple[NluData, list[SourceProblem]]:
    """Read a file, or every ``*.yml``/``*.yaml`` in a folder merged in name order, skipping bad files.

    Returns:
        The merged data of the good files and one problem (path, line, reason) per bad file.
    """
    paths = sorted([*path.glob("*.yml"), *path.glob("*.yaml")]) if path.is_dir() else [path]
    merged = NluData()
    problems: list[SourceProblem] = []
    for p in paths:
        try:
            text = p.read_text(encoding="utf-8")
            part = parse_nlu(text, str(p))
        except (OSError, UnicodeDecodeError) as e:
            problems.append(SourceProblem(str(p), None, f"cannot read file: {e}"))
            continue
        except SourceFileError as e:
            problems.append(e.problem)
            continue
        merged.version = part.version
        merged.blocks.extend(part.blocks)
    return merged, problems


def dump_nlu(data: NluData) -> str:
    """Serialize back to Rasa YAML; reading the result gives the same blocks."""
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    entries: list[dict[str, Any]] = []
    for block in data.blocks:
        entry: dict[str, Any] = {block.kind: block.name}
        entry.update(block.extra)
        entry["examples"] = LiteralScalarString("".join(f"- {_one_line(e)}\n" for e in block.examples))
        entries.append(entry)
    buffer = io.StringIO()
    yaml.dump({"version": data.version, "nlu": entries}, buffer)
    return buffer.getvalue()


def write_nlu(data: NluData, path: Path) -> None:
    """Write ``nlu.yml``."""
    path.write_text(dump_nlu(data), encoding="utf-8")


def from_pairs(pairs: Iterable[tuple[str, str]], keep: NluData | None = None) -> NluData:
    """Build NLU data from (text, intent) pairs, keeping the synonyms/regexes/lookups of ``keep``."""
    grouped: dict[str, list[str]] = {}
    for text, intent in pairs:
        grouped.setdefault(intent, []).append(text)
    data = NluData(version=keep.version if keep else "3.1")
    data.blocks = [NluBlock("intent", name, examples) for name, examples in grouped.items()]
    if keep:
        data.blocks.extend(b for b in keep.blocks if b.kind != "intent")
    return data


def _examples(raw: Any, source: str, line: int | None, what: str) -> list[str]:
    if isinstance(raw, list):
        return [str(x).strip() for x in raw if str(x).strip()]
    if not isinstance(raw, str):
        raise SourceFileError(SourceProblem(source, line, f"{what}: 'examples' must be a '- item' block"))
    out: list[str] = []
    for offset, raw_line in enumerate(raw.splitlines()):
        stripped = raw_line.strip()
        if not stripped:
            continue
        if not stripped.startswith("-"):
            where = line + 1 + offset if line else None
            raise SourceFileError(SourceProblem(source, where, f"{what}: example lines must start with '- '"))
        example = stripped[1:].strip()
        if example:
            out.append(example)
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _line(node: Any, key: str) -> int | None:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _item_line(seq: Any, index: int) -> int | None:
    try:
        return int(seq.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None
