"""WADO-RS ``Accept`` header handling (PS3.18 8.7.3). Pure.

Clients send ``type=application/dicom`` quoted or not; some archives accept only one form.
We parse leniently and forward the quoted form, which RFC 7231 and every archive accept.
"""

from __future__ import annotations

import re

from .media import split_unquoted

MAX_ACCEPT = 2048
_TOKEN = re.compile(r"^[A-Za-z0-9!#$&^_.+\-*/]+$")


def normalize(accept: str | None, default: str) -> str:
    """Return a cleaned Accept value, quoting parameter values; ``default`` when absent."""
    if not accept or not accept.strip():
        return default
    if len(accept) > MAX_ACCEPT:
        return default
    ranges = [_normalize_range(r) for r in split_unquoted(accept, ",")]
    kept = [r for r in ranges if r]
    return ", ".join(kept) if kept else default


def _normalize_range(text: str) -> str | None:
    pieces = [p.strip() for p in split_unquoted(text, ";")]
    media = pieces[0].lower() if pieces else ""
    if not _TOKEN.match(media) or "/" not in media:
        return None
    params: list[str] = []
    for raw in pieces[1:]:
        name, sep, value = raw.partition("=")
        name = name.strip().lower()
        value = value.strip().strip('"')
        if not sep or not _TOKEN.match(name) or '"' in value or "\\" in value:
            continue
        params.append(f"{name}={value}" if name == "q" else f'{name}="{value}"')
    return "; ".join([media, *params])
