"""FHIR date search (R4 search 3.1.1.4.6): values as ranges, prefixes as range relations. Pure.

Values are ASCII only (``\\d`` would also take Arabic-Indic digits); ranges at the ends of the
calendar (``9999-12-31``, ``0001-01-01T00:00+01:00``) are clamped to what ``datetime`` holds
instead of overflowing.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from ..errors import BadRequest

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
_VALUE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,
)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Range:
    """Half-open interval [low, high) in UTC."""

    low: datetime
    high: datetime


@dataclass(frozen=True)
class DateFilter:
    prefix: str
    range: Range

    def matches(self, target: Range | None) -> bool:
        if target is None:
            return False
        p, t = self.range, target
        contained = p.low <= t.low and t.high <= p.high
        if self.prefix == "eq":
            return contained
        if self.prefix == "ne":
            return not contained
        if self.prefix == "gt":
            return t.high > p.high
        if self.prefix == "lt":
            return t.low < p.low
        if self.prefix == "ge":
            return t.high > p.high or contained
        if self.prefix == "le":
            return t.low < p.low or contained
        if self.prefix == "sa":
            return t.low >= p.high
        return t.high <= p.low  # eb


def parse_filter(raw: str, name: str) -> DateFilter:
    prefix, value = ("eq", raw)
    if raw[:2] in PREFIXES:
        prefix, value = raw[:2], raw[2:]
    found = parse_range(value)
    if found is None:
        raise BadRequest(f"search parameter {name}: {raw!r} is not a FHIR date or dateTime")
    return DateFilter(prefix, found)


def parse_range(value: str) -> Range | None:
    """A FHIR date/dateTime/instant as the range it denotes; None when malformed."""
    m = _VALUE.match(value.strip())
    if not m:
        return None
    year, month, day, hh, mi, ss, frac, zone = m.groups()
    try:
        tz = _tz(zone)
        if hh is not None:
            if zone is None:
                tz = UTC  # FHIR: a time without zone is not precise; assume UTC
            start = datetime(
                int(year),
                int(month),
                int(day),
                int(hh),
                int(mi),
                int(ss or 0),
                int(float(frac) * 1_000_000) if frac else 0,
                tzinfo=tz,
            )
            step = timedelta(seconds=1) if ss is not None else timedelta(minutes=1)
            return Range(_utc(start), _utc(_plus(start, step)))
        if day is not None:
            start = datetime(int(year), int(month), int(day), tzinfo=tz)
            return Range(start, _plus(start, timedelta(days=1)))
        if month is not None:
            m_int = int(month)
            start = datetime(int(year), m_int, 1, tzinfo=tz)
            days = calendar.monthrange(int(year), m_int)[1]
            return Range(start, _plus(start, timedelta(days=days)))
        start = datetime(int(year), 1, 1, tzinfo=tz)
        return Range(start, _plus(start, timedelta(days=366 if calendar.isleap(start.year) else 365)))
    except ValueError:
        return None


def _plus(moment: datetime, step: timedelta) -> datetime:
    try:
        return moment + step
    except OverflowError:
        return LATEST


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return EARLIEST if moment.year == 1 else LATEST


def _tz(zone: str | None) -> timezone:
    if not zone or zone == "Z":
        return UTC
    sign = 1 if zone[0] == "+" else -1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
