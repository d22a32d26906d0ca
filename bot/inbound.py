"""Validation of customer text shared by every connector."""

from __future__ import annotations

import re
import unicodedata

from domain.errors import ValidationError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str, max_chars: int) -> str:
    """Normalize a customer message, or refuse it with a readable reason.

    Control characters are dropped, Unicode is NFC-normalized and surrounding whitespace trimmed.

    Raises:
        ValidationError: the message is empty, only whitespace, or longer than ``max_chars``.
    """
    cleaned = unicodedata.normalize("NFC", _CONTROL.sub("", text)).strip()
    if not cleaned:
        raise ValidationError("the message is empty; please type a question")
    if len(cleaned) > max_chars:
        raise ValidationError(f"the message has {len(cleaned)} characters; the limit is {max_chars}")
    return cleaned
