"""A small synthetic labelled ticket set, written by each test that needs one."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

_HIGH = ["production database is down and {n} users cannot work", "payroll export failed for the whole company {n}",
         "checkout broken for all customers since {n} am", "servers unreachable, orders lost since {n}"]
_NORMAL = ["report {n} shows the wrong column order", "sync of calendar {n} is slow on Mondays",
           "printer {n} needs a driver update", "the dashboard widget {n} loads slowly"]
_LOW = ["could you send the brochure about plan {n}", "idea: dark mode for page {n} someday",
        "no rush, question about invoice layout {n}", "just curious whether feature {n} exists"]


def synthetic_tickets(n_per_level: int = 40, seed: int = 0) -> list[dict[str, object]]:
    """Tickets whose wording decides the priority; an ``answer`` field stands in for the outcome leak."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for priority, templates in (("high", _HIGH), ("medium", _NORMAL), ("low", _LOW)):
        for i in range(n_per_level):
            text = rng.choice(templates).format(n=rng.randint(1, 999))
            rows.append({"id": f"{priority}-{i}", "text": text, "priority": priority,
                         "answer": f"resolved as {priority}"})
    rng.shuffle(rows)
    return rows


@pytest.fixture
def tickets_file(tmp_path: Path) -> Path:
    """A JSONL of 120 synthetic labelled tickets."""
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in synthetic_tickets()))
    return path
