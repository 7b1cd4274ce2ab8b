"""DICOM DA/TM plus TimezoneOffsetFromUTC to FHIR dateTime (PS3.5 6.2, FHIR R4 2.24.0.7)."""

from __future__ import annotations

import re

_DA = re.compile(r"(?a)^(\d{4})(\d{2})(\d{2})$")
_DA_OLD = re.compile(r"(?a)^(\d{4})\.(\d{2})\.(\d{2})$")
_TM = re.compile(r"(?a)^(\d{2})(?::?(\d{2})(?::?(\d{2})(\.\d{1,6})?)?)?$")
_TZ = re.compile(r"(?a)^([+-])(\d{2})(\d{2})$")


def fhir_datetime(da: str | None, tm: str | None = None, tz: str | None = None) -> str | None:
    """Combine DICOM date, time and offset. Returns None when the date is missing or malformed.

    FHIR requires a timezone when a time is given; without an offset only the date is emitted,
    since DICOM local times without an offset cannot be placed on the timeline.
    """
    if not da:
        return None
    m = _DA.match(da.strip()) or _DA_OLD.match(da.strip())
    if not m:
        return None
    year, month, day = m.groups()
    date = f"{year}-{month}-{day}"
    zone = _zone(tz)
    if not tm or zone is None:
        return date
    t = _TM.match(tm.strip())
    if not t:
        return date
    hh, mm, ss, frac = t.groups()
    if int(hh) > 23 or int(mm or 0) > 59 or int(ss or 0) > 60:
        return date
    time = f"{hh}:{mm or '00'}:{ss or '00'}{frac or ''}"
    return f"{date}T{time}{zone}"


def _zone(tz: str | None) -> str | None:
    if not tz:
        return None
    m = _TZ.match(tz.strip())
    if not m:
        return None
    sign, hh, mm = m.groups()
    if int(hh) > 14 or int(mm) > 59:
        return None
    return f"{sign}{hh}:{mm}"
