"""Reading and writing the DICOM JSON model (PS3.18 F.2), leniently.

Archives differ: some omit ``vr``, send numbers as strings, or pad values. Readers here
never raise on such oddities; they return ``None`` instead. :func:`clean_datasets` is the one
check of an archive's JSON before anything reads it: the shape of PS3.18 F.2 (attribute tags,
VRs, ``Value`` arrays), numbers in range, nested sequences walked without recursion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

DicomJson = dict[str, Any]

_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_VR = re.compile(r"[A-Z]{2}")
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
MAX_INTEGER = 2**64  # the widest DICOM integers are SV/UV (64 bits)
PN_COMPONENTS = ("Alphabetic", "Ideographic", "Phonetic")


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
    if isinstance(value, dict):  # PN
        value = value.get("Alphabetic")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
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
    """First value as an integer (a number, or an IS string of ASCII digits), or None."""
    value = first(ds, tag)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < MAX_INTEGER else None
    if isinstance(value, float):
        return (
            int(value) if math.isfinite(value) and value.is_integer() and abs(value) < MAX_INTEGER else None
        )
    if isinstance(value, str):
        cleaned = value.strip("\x00 ")
        return int(cleaned) if _INTEGER.fullmatch(cleaned) else None
    return None


def element(vr: str, *found: Any) -> dict[str, Any]:
    """A DICOM JSON element; empty values give an element without ``Value``."""
    kept = [v for v in found if v is not None and v != ""]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}


# ---------------------------------------------------------------------- checking archive JSON

UriRewrite = Callable[[str], str | None]


def clean_datasets(items: list[Any], rewrite_uri: UriRewrite | None = None) -> tuple[list[DicomJson], int]:
    """Keep what is usable of a list of datasets; return it and how many things were dropped.

    Dropped: items that are not objects, attributes whose tag, ``vr`` or ``Value`` has the wrong
    shape, ``BulkDataURI``/``InlineBinary`` that are not strings; values of the wrong type or
    out of range become ``null`` (an empty value, F.2.5) so the others keep their positions.
    ``rewrite_uri`` maps each ``BulkDataURI`` (``None`` removes it). Sequences (SQ) are walked
    with an explicit stack.
    """
    kept = [item for item in items if isinstance(item, dict)]
    dropped = len(items) - len(kept)
    stack: list[DicomJson] = list(kept)
    while stack:
        dropped += _clean_dataset(stack.pop(), stack, rewrite_uri)
    return kept, dropped


def _clean_dataset(ds: DicomJson, stack: list[DicomJson], rewrite_uri: UriRewrite | None) -> int:
    dropped = 0
    for tag in list(ds):
        el = ds[tag]
        checked = _clean_element(el, rewrite_uri) if _TAG.fullmatch(tag) and isinstance(el, dict) else None
        if checked is None:
            del ds[tag]
            dropped += 1
            continue
        dropped += checked
        sequence = el.get("vr") == "SQ"
        found = el.get("Value") or []
        for i, value in enumerate(found):
            if sequence and isinstance(value, dict):
                stack.append(value)
            elif value is not None and (sequence or not _usable(value)):
                found[i] = None
                dropped += 1
    return dropped


def _clean_element(el: dict[str, Any], rewrite_uri: UriRewrite | None) -> int | None:
    """Check an element's own keys: how many were dropped, or None when it is unusable."""
    vr = el.get("vr")
    if vr is not None and not (isinstance(vr, str) and _VR.fullmatch(vr)):
        return None
    if "Value" in el and not isinstance(el["Value"], list):
        return None
    dropped = 0
    if "InlineBinary" in el and not isinstance(el["InlineBinary"], str):
        del el["InlineBinary"]
        dropped += 1
    if "BulkDataURI" in el:
        uri = el["BulkDataURI"]
        moved = (rewrite_uri(uri) if rewrite_uri else uri) if isinstance(uri, str) else None
        if moved is None:
            del el["BulkDataURI"]
            dropped += 1
        else:
            el["BulkDataURI"] = moved
    return dropped


def _usable(value: Any) -> bool:
    """A value of a non-SQ attribute: string, number in range, or a PN object of strings."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) < MAX_INTEGER
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):  # PN (F.2.2)
        return all(k in PN_COMPONENTS and isinstance(v, str) for k, v in value.items())
    return False
