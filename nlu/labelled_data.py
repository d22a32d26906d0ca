"""Labelled intent sets for evaluation: JSONL (text, label, split) or Rasa ``nlu.yml``, checked before use."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from domain.errors import SourceFileError, SourceProblem, ValidationError
from nlu.rasa_yaml import read_nlu

# Labels that mean "out of scope" in the public sets (CLINC150 uses ``oos`` and ``is_oos``).
OOS_LABELS = frozenset({"oos", "out_of_scope", "out-of-scope", "nlu_fallback"})
SPLITS = ("train", "valid", "test", "all")
_SPLIT_ALIASES = {"validation": "valid", "val": "valid", "dev": "valid"}


@dataclass(frozen=True)
class LabelledExample:
    """One message with its intent (None: out of scope) and the split it belongs to."""

    text: str
    label: str | None
    split: str


def read_labelled(path: Path, default_split: str = "all", all_oos: bool = False) -> list[LabelledExample]:
    """Read a labelled set: ``*.yml``/``*.yaml`` as Rasa NLU data, anything else as JSONL.

    JSONL rows need ``text`` and one of ``label``/``intent`` (``oos`` or ``is_oos: true`` mark out of scope);
    ``split`` is optional. With ``all_oos`` every row is out of scope and only ``text`` is needed.

    Raises:
        SourceFileError: a malformed line or file, with its path and line number.
    """
    if path.suffix.lower() in (".yml", ".yaml"):
        return [LabelledExample(text, intent, default_split) for text, intent in read_nlu(path).training_examples()]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SourceFileError(SourceProblem(str(path), None, f"cannot read the file: {e}")) from e
    return [ex for number, line in enumerate(lines, 1) if line.strip()
            for ex in [_row(path, number, line, default_split, all_oos)]]


def _row(path: Path, number: int, line: str, default_split: str, all_oos: bool) -> LabelledExample:
    def bad(reason: str) -> SourceFileError:
        return SourceFileError(SourceProblem(str(path), number, reason))

    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise bad(f"invalid JSON: {e.msg} (column {e.colno})") from e
    if not isinstance(row, dict):
        raise bad("each line must be a JSON object")
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad("'text' must be a non-empty string")
    split = row.get("split", default_split)
    split = _SPLIT_ALIASES.get(split, split) if isinstance(split, str) else split
    if split not in SPLITS:
        raise bad(f"'split' must be one of {', '.join(SPLITS)}, got {split!r}")
    if all_oos:
        return LabelledExample(text.strip(), None, split)
    label = row.get("label", row.get("intent"))
    if row.get("is_oos") is True or (isinstance(label, str) and label.strip().lower() in OOS_LABELS):
        return LabelledExample(text.strip(), None, split)
    if not isinstance(label, str) or not label.strip():
        raise bad("'label' (or 'intent') must be a non-empty string")
    return LabelledExample(text.strip(), label.strip(), split)


def check_labelled(examples: Sequence[LabelledExample], min_examples: int, what: str) -> dict[str, int]:
    """Refuse a training set a classifier cannot learn from; returns examples per intent.

    Raises:
        ValidationError: fewer than two intents, or intents (named) with fewer than ``min_examples``.
    """
    counts = Counter(ex.label for ex in examples if ex.label is not None)
    if len(counts) < 2:
        raise ValidationError(f"{what} needs at least two intents, found {len(counts)}"
                              + (f" ({next(iter(counts))})" if counts else ""))
    thin = sorted(f"{name} ({n})" for name, n in counts.items() if n < min_examples)
    if thin:
        raise ValidationError(f"{what}: intents with fewer than {min_examples} examples: {', '.join(thin)}")
    return dict(counts)


def stratified_split(examples: Iterable[LabelledExample], fraction: float, seed: int,
                     ) -> tuple[list[LabelledExample], list[LabelledExample]]:
    """Seeded stratified split into (kept, held out); every label keeps at least one example."""
    groups: dict[str | None, list[LabelledExample]] = defaultdict(list)
    for ex in examples:
        groups[ex.label].append(ex)
    rng = random.Random(seed)
    kept: list[LabelledExample] = []
    held: list[LabelledExample] = []
    for label in sorted(groups, key=lambda x: (x is None, x or "")):
        group = sorted(groups[label], key=lambda e: e.text)
        rng.shuffle(group)
        take = min(len(group) - 1, round(len(group) * fraction))
        held.extend(group[:take])
        kept.extend(group[take:])
    return kept, held
