"""C-FIND and retrieve identifiers, and their answers as DICOM JSON. Pure (pydicom only).

PS3.4 C.6.2 (Study Root Query/Retrieve Information Model): a STUDY level query may match on
PatientID; SERIES and IMAGE levels need the unique keys of every level above them.

Matching rules (PS3.4 C.2.2.2): ``*`` and ``?`` are wildcards in most VRs and cannot be escaped,
and ``\\`` separates values. So an MRN is sent as it is and the answers are filtered to the exact
value; an MRN that is empty or holds a backslash can match nothing and is never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from ...dicom import tags
from ...dicom.json_model import DicomJson
from ..base import StudyQuery

log = logging.getLogger(__name__)
SOPClassesInStudy = "00080062"
_PADDING = "\x00 "


def study_identifier(query: StudyQuery) -> Dataset | None:
    """The STUDY level C-FIND identifier for ``query``, or None when nothing can match."""
    ds = _with_return_keys("STUDY", (*tags.STUDY_FIELDS, SOPClassesInStudy))
    if query.mrn is not None:
        if not mrn_can_match(query.mrn):
            return None
        ds.PatientID = query.mrn
    if query.study_uids:
        ds.StudyInstanceUID = list(query.study_uids)
    return ds


def series_identifier(study_uid: str, series_uid: str | None = None) -> Dataset:
    ds = _with_return_keys("SERIES", tags.SERIES_FIELDS)
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    return ds


def instance_identifier(study_uid: str, series_uid: str) -> Dataset:
    ds = _with_return_keys("IMAGE", tags.INSTANCE_FIELDS)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    return ds


def with_patient_id(identifier: Dataset) -> Dataset:
    """A copy of a SERIES or IMAGE level identifier that also asks for PatientID."""
    ds = Dataset()
    ds.update(identifier)
    ds.add_new(Tag("PatientID"), "LO", None)
    return ds


def of_study(answers: list[Dataset], study_uid: str, mrn: str | None, level: str) -> list[Dataset]:
    """The answers that belong to the study: none naming another Study Instance UID or
    (when the archive returned one) another PatientID. Dropped ones are logged."""
    kept = [
        a
        for a in answers
        if _value(a, "StudyInstanceUID") in ("", study_uid)
        and (mrn is None or _value(a, "PatientID") in ("", mrn))
    ]
    if len(kept) < len(answers):
        log.warning(
            "DICOM archive listed %d %s of another study or patient: dropped", len(answers) - len(kept), level
        )
    return kept


def _value(answer: Dataset, keyword: str) -> str:
    try:
        return clean(str(answer.get(keyword, "") or ""))
    except (ValueError, OverflowError, TypeError):
        return ""


def retrieve_identifier(
    study_uid: str, series_uid: str | None = None, instance_uid: str | None = None
) -> Dataset:
    """C-GET / C-MOVE identifier at the deepest level given (PS3.4 C.4.2.1.4, C.4.3.1.3)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE" if instance_uid else "SERIES" if series_uid else "STUDY"
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    if instance_uid:
        ds.SOPInstanceUID = instance_uid
    return ds


def mrn_can_match(mrn: str) -> bool:
    """False for MRNs no stored PatientID (LO, PS3.5 6.2) can equal exactly."""
    return bool(clean(mrn)) and "\\" not in mrn


def clean(value: str) -> str:
    """A string value without its NUL/space padding (PS3.5 6.2: odd lengths are padded)."""
    return value.strip(_PADDING)


def to_json(identifier: Dataset, fields: Iterable[str]) -> DicomJson:
    """The wanted ``fields`` of a C-FIND answer as DICOM JSON, padding stripped.

    Keys appear only when the archive returned the attribute, like QIDO-RS answers. A value
    pydicom cannot convert (an IS of "1e999" or "abc") is dropped with a warning: the rest of
    the answer is still usable.
    """
    wanted = set(fields)
    out: DicomJson = {}
    for tag in tuple(identifier.keys()):  # iterating the Dataset itself would convert every value
        key = f"{int(tag):08X}"
        if key not in wanted:
            continue
        try:
            element = identifier[tag].to_json_dict(None, 1 << 30)
        except (ValueError, OverflowError, TypeError) as exc:
            log.warning("dropped an unusable %s value from a C-FIND answer: %s", key, exc)
            continue
        out[key] = _clean_element(element)
    return out


def count(identifier: Dataset, keyword: str) -> int | None:
    """A count (IS) of a C-FIND answer, e.g. Number of Study Related Instances; None when the
    archive left it out or sent something that is not a sane count."""
    try:
        value = identifier.get(keyword)
    except (ValueError, OverflowError, TypeError):
        return None
    text = clean(str(value if value is not None else ""))
    if not text.isascii() or not text.isdigit() or len(text) > 10:  # IS holds at most 12 chars
        return None
    return int(text)


def sop_classes(identifier: Dataset) -> list[str]:
    """SOP Classes in Study (0008,0062) from a STUDY level answer, cleaned."""
    found = identifier.get("SOPClassesInStudy")
    raw = [] if found is None else [found] if isinstance(found, str) else list(found)
    return [c for c in (clean(str(v)) for v in raw) if c]


def _with_return_keys(level: str, fields: Iterable[str]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for key in fields:
        tag = Tag(key)
        ds.add_new(tag, dictionary_VR(tag), None)
    return ds


def _clean_element(element: dict[str, Any]) -> dict[str, Any]:
    found = element.get("Value")
    if not isinstance(found, list):
        return element
    kept: list[Any] = []
    for value in found:
        if isinstance(value, str):
            value = clean(value)
        elif isinstance(value, dict) and isinstance(value.get("Alphabetic"), str):
            value = {**value, "Alphabetic": clean(value["Alphabetic"])}
        if value not in ("", None, {"Alphabetic": ""}):
            kept.append(value)
    return {"vr": element["vr"], "Value": kept} if kept else {"vr": element["vr"]}
