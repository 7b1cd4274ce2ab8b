"""DICOM UID syntax (PS3.5 section 9.1)."""

from __future__ import annotations

import re

from ..errors import BadRequest

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")


def is_valid_uid(value: str) -> bool:
    """True for a syntactically valid UID: digits and dots, no leading zeros, at most 64 chars."""
    return len(value) <= 64 and bool(_UID.fullmatch(value))


def require_uid(value: str, what: str = "UID") -> str:
    if not is_valid_uid(value):
        raise BadRequest(f"{what} is not a valid DICOM UID")
    return value
