"""Business hours per team: parse the teams.yml spec, check whether a team is on duty, describe it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.models import BusinessHours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(spec: dict[str, object]) -> BusinessHours:
    """``{timezone: Europe/Berlin, mon-fri: "09:00-18:00", sat: ["10:00-12:00", "13:00-16:00"]}``.

    Days not mentioned are closed. ``24:00`` closes at midnight.

    Raises:
        ValueError: with a readable reason (unknown day, bad range, unknown time zone).
    """
    spec = dict(spec)
    tz = str(spec.pop("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {tz!r}") from e
    weekly: dict[int, list[tuple[int, int]]] = {}
    for days_key, value in spec.items():
        days = _days(str(days_key))
        ranges = value if isinstance(value, list) else [value]
        for raw in ranges:
            match = _RANGE.match(str(raw))
            if not match:
                raise ValueError(f"hours for {days_key!r} must look like '09:00-18:00', got {raw!r}")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if not (0 <= start < end <= 24 * 60) or m1 > 59 or m2 > 59:
                raise ValueError(f"hours for {days_key!r}: {raw!r} is not a range within one day")
            for day in days:
                weekly.setdefault(day, []).append((start, end))
    ordered = tuple((day, tuple(sorted(weekly[day]))) for day in sorted(weekly))
    return BusinessHours(timezone=tz, weekly=ordered, text=_describe(ordered, tz))


def is_open(hours: BusinessHours | None, now: datetime) -> bool:
    """True when ``now`` (aware) falls inside the hours; no hours means always open."""
    if hours is None:
        return True
    local = now.astimezone(ZoneInfo(hours.timezone))
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in dict(hours.weekly).get(local.weekday(), ()))


def next_opening(hours: BusinessHours | None, now: datetime) -> datetime | None:
    """When the team is next on duty (``now`` if open), or None if it never opens."""
    if hours is None or is_open(hours, now):
        return now
    zone = ZoneInfo(hours.timezone)
    local = now.astimezone(zone)
    weekly = dict(hours.weekly)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        for start, _ in weekly.get(day.weekday(), ()):
            candidate = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=start)
            if candidate > local:
                return candidate
    return None


def _days(key: str) -> list[int]:
    key = key.strip().lower()
    if "-" in key:
        first, last = (part.strip()[:3] for part in key.split("-", 1))
        if first not in DAYS or last not in DAYS:
            raise ValueError(f"unknown day range {key!r}; use e.g. mon-fri")
        a, b = DAYS.index(first), DAYS.index(last)
        return list(range(a, b + 1)) if a <= b else [*range(a, 7), *range(0, b + 1)]
    if key[:3] not in DAYS:
        raise ValueError(f"unknown day {key!r}; use mon, tue, ... sun or a range like mon-fri")
    return [DAYS.index(key[:3])]


def _describe(weekly: tuple[tuple[int, tuple[tuple[int, int], ...]], ...], tz: str) -> str:
    if not weekly:
        return "closed"
    groups: list[tuple[list[int], tuple[tuple[int, int], ...]]] = []
    for day, ranges in weekly:
        if groups and groups[-1][1] == ranges and groups[-1][0][-1] == day - 1:
            groups[-1][0].append(day)
        else:
            groups.append(([day], ranges))
    parts = []
    for days, ranges in groups:
        label = DAYS[days[0]].capitalize() + (f"–{DAYS[days[-1]].capitalize()}" if len(days) > 1 else "")
        times = ", ".join(f"{_hm(a)}–{_hm(b)}" for a, b in ranges)
        parts.append(f"{label} {times}")
    return "; ".join(parts) + f" ({tz})"


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
