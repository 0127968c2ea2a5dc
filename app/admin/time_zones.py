"""The time zone an admin reads times in: their own choice, else GLUE_TIME_ZONE.

Times are stored as naive UTC (app/models.py); the pages turn them into the
admin's zone on the way out and read the dates typed into filters in it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this system knows, sorted, for the settings' select."""
    return tuple(sorted(available_timezones()))


def is_zone(name: str) -> bool:
    return name in zone_names()


def zone(chosen: str | None, default: str) -> ZoneInfo:
    """The admin's zone: their choice, else the deployment's, else UTC."""
    for name in (chosen, default):
        if name and is_zone(name):
            return ZoneInfo(name)
    return ZoneInfo("UTC")


def local(value: datetime, tz: ZoneInfo) -> datetime:
    """A stored (naive UTC) time in the zone `tz`."""
    return value.replace(tzinfo=UTC).astimezone(tz)


def shown(value: datetime, tz: ZoneInfo) -> str:
    """As the pages print it: 2026-03-29 01:30:00 CET."""
    there = local(value, tz)
    return f"{there:%Y-%m-%d %H:%M:%S} {there.tzname()}"


def utc_start(day: date, tz: ZoneInfo) -> datetime:
    """The stored (naive UTC) time at which `day` begins in the zone `tz`."""
    return datetime.combine(day, time(), tz).astimezone(UTC).replace(tzinfo=None)


def utc_end(day: date, tz: ZoneInfo) -> datetime:
    """The stored time at which `day` ends in `tz` (the next day's start)."""
    return utc_start(day + timedelta(days=1), tz)
