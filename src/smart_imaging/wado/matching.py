"""QIDO-RS answers under an Endpoint: scope first, then attribute matching and paging. Pure.

Scope (SMART Imaging Access IG: an Endpoint grants one study). The records a source returns for
the bound study are checked again: a record naming another study, or (when the binding names an
MRN) another PatientID, is dropped. A query cannot name anything but the bound study: a
``StudyInstanceUID`` key must be exactly its UID, and a ``PatientID`` key exactly its PatientID
(the binding's MRN, else the record's own); a wildcard, a UID list or another value in either is
answered with an empty list, never widened. The answer for no match is ``200 []`` (PS3.18 8.3.4.5
allows 204 too; an empty array is what every client we know reads without a special case).

Matching of the other keys follows PS3.4 C.2.2.2: universal (empty value), single value, wildcard
(``*`` and ``?``, for string VRs other than dates, times and UIDs), UID lists (``\\``), and ranges
for DA, TM and DT (``a-b``, ``-b``, ``a-``). Multi-valued attributes (``ModalitiesInStudy``) match
when any value does. PN is compared on its alphabetic form; with ``fuzzymatching=true`` it matches
case-insensitively. An attribute a record lacks altogether is not held against it (archives leave
out what they do not index); one that is present but empty does not match a non-universal key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from ..dicom import json_model as dj
from ..dicom import tags
from .qido import QidoRequest

_NO_WILDCARD_VRS = frozenset({"DA", "TM", "DT", "UI", "IS", "DS", "US", "UL", "SS", "SL", "FL", "FD"})
_RANGE_VRS = frozenset({"DA", "TM", "DT"})
_NUMBER_VRS = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"})
_WILDCARD = re.compile(r"[*?]")


def answer(
    request: QidoRequest, found: Sequence[dj.DicomJson], study_uid: str, mrn: str | None
) -> list[dj.DicomJson]:
    """The records to answer with: in scope, matching every key, then ``offset``/``limit``."""
    if not _names_only(request, study_uid, mrn):
        return []
    kept = [ds for ds in in_scope(request, found, study_uid, mrn) if matches(request, ds, mrn)]
    end = None if request.limit is None else request.offset + request.limit
    return kept[request.offset : end]


def in_scope(
    request: QidoRequest, found: Sequence[dj.DicomJson], study_uid: str, mrn: str | None
) -> list[dj.DicomJson]:
    """Records of the bound study (and path series) only; series and instance records get the
    study's UID when they lack it (clients file them by it)."""
    kept: list[dj.DicomJson] = []
    for ds in found:
        if dj.text(ds, tags.StudyInstanceUID) not in (None, study_uid):
            continue
        if request.level == "studies" and dj.text(ds, tags.StudyInstanceUID) is None:
            continue
        if mrn is not None and dj.text(ds, tags.PatientID) not in (
            (mrn,) if request.level == "studies" else (None, mrn)
        ):
            continue
        if request.series_uid and dj.text(ds, tags.SeriesInstanceUID) not in (None, request.series_uid):
            continue
        if tags.StudyInstanceUID not in ds:
            ds = {**ds, tags.StudyInstanceUID: dj.element("UI", study_uid)}
        kept.append(ds)
    return kept


def _names_only(request: QidoRequest, study_uid: str, mrn: str | None) -> bool:
    """False when the query names another study or patient (or tries to widen to them)."""
    named = request.key(tags.StudyInstanceUID)
    if named not in (None, "", study_uid):
        return False
    patient = request.key(tags.PatientID)
    return patient in (None, "") or mrn is None or patient == mrn


def matches(request: QidoRequest, ds: dj.DicomJson, mrn: str | None = None) -> bool:
    for tag, wanted in request.keys:
        if tag == tags.StudyInstanceUID or wanted == "":
            continue  # checked by scope; universal matching
        if tag == tags.PatientID:
            if mrn is None and tag in ds and dj.text(ds, tag) != wanted:
                return False
            continue
        if tag in ds and not _element_matches(ds[tag], wanted, request.fuzzy):
            return False
    return True


def _element_matches(element: object, wanted: str, fuzzy: bool) -> bool:
    if not isinstance(element, dict):
        return False
    vr = str(element.get("vr", ""))
    found = [_as_text(v) for v in element.get("Value", []) or []]
    return any(_value_matches(vr, v, wanted, fuzzy) for v in found if v is not None)


def _value_matches(vr: str, value: str, wanted: str, fuzzy: bool) -> bool:
    if vr == "UI":
        return value in wanted.split("\\")
    if vr in _RANGE_VRS and "-" in wanted:
        low, _, high = wanted.partition("-")
        return _in_range(vr, value, low.strip(), high.strip())
    if vr in _NUMBER_VRS:
        return any(_same_number(value, w) for w in wanted.split("\\"))
    if vr in _RANGE_VRS:
        return _stamp(vr, value) == _stamp(vr, wanted)
    if vr == "PN" and fuzzy:
        value, wanted = value.casefold(), wanted.casefold()
    if vr not in _NO_WILDCARD_VRS and _WILDCARD.search(wanted):
        return fnmatch.fnmatchcase(value, _glob(wanted))
    return value == wanted.strip(" ") or (vr == "PN" and fuzzy and value.startswith(wanted))


def _in_range(vr: str, value: str, low: str, high: str) -> bool:
    stamp = _stamp(vr, value)
    if not stamp:
        return False
    return (not low or stamp >= _stamp(vr, low)) and (not high or stamp <= _stamp(vr, high, upper=True))


def _stamp(vr: str, text: str, upper: bool = False) -> str:
    """Digits of a DA/TM/DT value, padded so that string order is time order."""
    digits = "".join(ch for ch in text.split("+")[0] if ch.isdigit() or ch == ".").replace(".", "")
    width = {"DA": 8, "TM": 12, "DT": 20}[vr]
    return digits[:width].ljust(width, "9" if upper else "0")


def _same_number(value: str, wanted: str) -> bool:
    try:
        return float(value) == float(wanted)
    except ValueError:
        return value.strip() == wanted.strip()


def _as_text(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("Alphabetic")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value).strip("\x00 ")


def _glob(pattern: str) -> str:
    """A DICOM wildcard pattern as an fnmatch one: only ``*`` and ``?`` are special."""
    return "".join(ch if ch in "*?" else f"[{ch}]" if ch in "[]" else ch for ch in pattern)
