"""Canned responses: fill the placeholders of a reply template safely."""

from __future__ import annotations

import re
from collections.abc import Callable

_PLACEHOLDER = re.compile(r"\{(customer_name|agent_name|article:([a-z0-9][a-z0-9_-]*))\}")
_ANY_BRACE = re.compile(r"\{[^{}]*\}")
KNOWN = "{customer_name}, {agent_name}, {article:<article-id>}"


def unknown_placeholders(body: str) -> list[str]:
    """Placeholders the renderer would not understand (to refuse a template when it is saved)."""
    return [m.group(0) for m in _ANY_BRACE.finditer(body) if not _PLACEHOLDER.fullmatch(m.group(0))]


def render(body: str, customer_name: str | None, agent_name: str,
           article: Callable[[str], tuple[str, str] | None]) -> str:
    """Replace placeholders; ``article(id)`` gives (title, url) or None for a missing article.

    No ``str.format``: a template can never reach attributes or other values.
    """

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "customer_name":
            return customer_name or "there"
        if key == "agent_name":
            return agent_name
        found = article(match.group(2))
        return f"{found[0]}: {found[1]}" if found else f"[missing article {match.group(2)}]"

    return _PLACEHOLDER.sub(replace, body)
