"""Reading and writing the DICOM JSON model (PS3.18 F.2), leniently.

Archives differ: some omit ``vr``, send numbers as strings, or pad values. Readers here
never raise on such oddities; they return ``None`` instead.
"""

from __future__ import annotations

from typing import Any

DicomJson = dict[str, Any]


def values(ds: DicomJson, tag: str) -> list[Any]:
    element = ds.get(tag)
    if not isinstance(element, dict):
        return []
    found = element.get("Value")
    return found if isinstance(found, list) else []


def first(ds: DicomJson, tag: str) -> Any:
    found = values(ds, tag)
    return found[0] if found else None


def text(ds: DicomJson, tag: str) -> str | None:
    """First value as a stripped string (NUL and space padding removed), or None."""
    value = first(ds, tag)
    if value is None:
        return None
    if isinstance(value, dict):  # PN
        value = value.get("Alphabetic")
        if value is None:
            return None
    cleaned = str(value).strip("\x00 ")
    return cleaned or None


def texts(ds: DicomJson, tag: str) -> list[str]:
    out: list[str] = []
    for value in values(ds, tag):
        if isinstance(value, str):
            cleaned = value.strip("\x00 ")
            if cleaned:
                out.append(cleaned)
    return out


def integer(ds: DicomJson, tag: str) -> int | None:
    value = first(ds, tag)
    if value is None:
        return None
    try:
        return int(str(value).strip("\x00 ") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None


def element(vr: str, *found: Any) -> dict[str, Any]:
    """A DICOM JSON element; empty values give an element without ``Value``."""
    kept = [v for v in found if v is not None and v != ""]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}
