"""The settings object: nested values from the environment, defaults kept where nothing is said."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from settings import Settings

pytestmark = pytest.mark.unit


def test_one_sla_target_from_the_environment_keeps_the_other_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_HANDOFF__SLA__HIGH__FIRST_RESPONSE_MINUTES", "7")
    sla = Settings(_env_file=None).handoff.sla
    assert (sla["high"].first_response_minutes, sla["high"].resolution_minutes) == (7, 240)
    assert (sla["critical"].first_response_minutes, sla["low"].resolution_minutes) == (5, 4320)


def test_sla_targets_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_HANDOFF__SLA__URGENT__FIRST_RESPONSE_MINUTES", "7")
    with pytest.raises(ValidationError, match="urgent"):
        Settings(_env_file=None)
    monkeypatch.delenv("FRONTDESK_HANDOFF__SLA__URGENT__FIRST_RESPONSE_MINUTES")
    monkeypatch.setenv("FRONTDESK_HANDOFF__SLA__LOW__RESOLUTION_MINUTES", "0")
    with pytest.raises(ValidationError, match="resolution_minutes"):
        Settings(_env_file=None)
