"""Test texts whose hash puts them inside or outside the trainers' held-out slice."""

from __future__ import annotations

from nlu.heldout import heldout_position


def texts_at(n: int, prefix: str, inside: bool, fraction: float = 0.2) -> list[str]:
    """``n`` texts ``"<prefix> <i>"`` whose hash puts them inside (or outside) the slice of ``fraction``."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        text = f"{prefix} {i}"
        if (heldout_position(text) < fraction) == inside:
            out.append(text)
        i += 1
    return out
