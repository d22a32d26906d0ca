"""Business hours: parsing, on-duty checks and the next opening, in the team's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handoff.hours import is_open, next_opening, parse_hours

pytestmark = pytest.mark.unit

BERLIN = parse_hours({"timezone": "Europe/Berlin", "mon-fri": "09:00-18:00", "sat": ["10:00-12:00", "13:00-16:00"]})


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), True),  # Monday 09:00 in Berlin (UTC+1)
        (datetime(2026, 11, 23, 7, 59, tzinfo=UTC), False),  # Monday 08:59
        (datetime(2026, 11, 23, 16, 59, tzinfo=UTC), True),  # Monday 17:59
        (datetime(2026, 11, 23, 17, 0, tzinfo=UTC), False),  # Monday 18:00: closed (end excluded)
        (datetime(2026, 11, 28, 10, 30, tzinfo=UTC), True),  # Saturday 11:30
        (datetime(2026, 11, 28, 11, 30, tzinfo=UTC), False),  # Saturday 12:30: lunch
        (datetime(2026, 11, 29, 12, 0, tzinfo=UTC), False),  # Sunday
        (datetime(2026, 7, 6, 7, 30, tzinfo=UTC), True),  # Monday 09:30 in summer (UTC+2)
    ],
)
def test_is_open(utc: datetime, expected: bool) -> None:
    assert is_open(BERLIN, utc) is expected


def test_no_hours_means_always_open() -> None:
    now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert is_open(None, now) and next_opening(None, now) == now


@pytest.mark.parametrize(
    ("utc", "local_opening"),
    [
        (datetime(2026, 11, 23, 5, 0, tzinfo=UTC), "2026-11-23 09:00"),  # Monday early: same day
        (datetime(2026, 11, 27, 20, 0, tzinfo=UTC), "2026-11-28 10:00"),  # Friday night: Saturday
        (datetime(2026, 11, 28, 11, 30, tzinfo=UTC), "2026-11-28 13:00"),  # Saturday lunch: afternoon
        (datetime(2026, 11, 28, 18, 0, tzinfo=UTC), "2026-11-30 09:00"),  # Saturday evening: Monday
    ],
)
def test_next_opening(utc: datetime, local_opening: str) -> None:
    opening = next_opening(BERLIN, utc)
    assert opening is not None
    assert opening.strftime("%Y-%m-%d %H:%M") == local_opening


def test_describe() -> None:
    assert BERLIN.text == "Mon–Fri 09:00–18:00; Sat 10:00–12:00, 13:00–16:00 (Europe/Berlin)"
    assert parse_hours({"fri-mon": "00:00-24:00"}).text == "Mon 00:00–24:00; Fri–Sun 00:00–24:00 (UTC)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"funday": "09:00-10:00"}, "unknown day"),
        ({"mon-xyz": "09:00-10:00"}, "unknown day range"),
        ({"mon": "9 to 5"}, "must look like"),
        ({"mon": "18:00-09:00"}, "not a range within one day"),
        ({"mon": "09:00-25:00"}, "not a range within one day"),
    ],
)
def test_bad_specs(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hours(spec)
