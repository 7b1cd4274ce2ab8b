"""ImagingStudy search parameters (SMART Imaging Access IG; FHIR R4 search). Pure.

Supported: ``patient``/``subject`` (``123``, ``Patient/123`` or an absolute Patient URL; also
with the type modifier ``:Patient``), the patient's identifier as ``patient.identifier``,
``subject:Patient.identifier`` or the ``:identifier`` modifier (``patient:identifier=system|value``,
FHIR R4 search 3.1.1.4.9: the subject reference names that Patient), ``identifier``
(``urn:oid:<uid>``, optionally with system ``urn:dicom:uid``), ``started`` and ``_lastUpdated``
with date prefixes, ``:missing`` on ``patient``/``subject``/``identifier``/``started``
(3.1.1.4.1), ``_include=ImagingStudy:endpoint`` (also ``_include:iterate``), ``_count`` and
``_offset``.

Unknown parameters and unsupported modifiers (``:exact``, ``:not``, ``:text``...) are ignored
unless the client sent ``Prefer: handling=strict`` (R4 search 3.1.1.3), which makes them a 400.
An ignored parameter never counts as naming a patient, so ignoring one can never lift the
patient restriction of a search. Integers are ASCII digits only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..dicom.uid import is_valid_uid
from ..errors import BadRequest
from .dates import DateFilter, parse_filter

MAX_COUNT = 1000
MAX_DIGITS = 9  # _count and _offset below 10**9
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
IGNORED = {"_format", "_pretty", "_summary", "_elements", "_total"}
INCLUDES = {"ImagingStudy:endpoint", "ImagingStudy:endpoint:Endpoint"}
PATIENT_REFERENCES = {"patient", "subject", "patient:Patient", "subject:Patient"}
PATIENT_IDENTIFIERS = {f"{ref}.identifier" for ref in PATIENT_REFERENCES} | {
    "patient:identifier",
    "subject:identifier",
}
ALWAYS_PRESENT = {"patient", "subject", "identifier"}  # every ImagingStudy we answer has them


@dataclass(frozen=True)
class Identifier:
    system: str | None
    value: str


@dataclass
class ImagingStudySearch:
    patients: list[str] = field(default_factory=list)  # every value given; AND-ed
    patient_identifiers: list[Identifier] = field(default_factory=list)
    study_uids: list[list[str]] = field(default_factory=list)  # AND of ORs
    started: list[DateFilter] = field(default_factory=list)
    started_missing: bool | None = None  # started:missing=true|false
    last_updated: list[DateFilter] = field(default_factory=list)
    include_endpoint: bool = False
    count: int | None = None
    offset: int = 0
    match_none: bool = False  # e.g. identifier:missing=true: no study can match
    unknown: list[str] = field(default_factory=list)


def parse(params: list[tuple[str, str]], strict: bool = False) -> ImagingStudySearch:
    search = ImagingStudySearch()
    for name, value in params:
        _apply(search, name, value)
    if strict and search.unknown:
        raise BadRequest(
            "unsupported search parameters or modifiers: " + ", ".join(sorted(set(search.unknown)))
        )
    return search


def _apply(search: ImagingStudySearch, name: str, value: str) -> None:
    base, _, modifier = name.partition(":")
    if name in PATIENT_REFERENCES and not value.strip():
        return  # names no patient (the reference server's ``patient=``); access decides what follows
    if name in PATIENT_REFERENCES:
        search.patients += [_patient_id(v) for v in _split(value, name)]
    elif name in PATIENT_IDENTIFIERS:
        search.patient_identifiers += [_identifier(v, name) for v in _split(value, name)]
    elif name == "identifier":
        search.study_uids.append([_study_uid(v) for v in _split(value, name)])
    elif name == "started":
        search.started.append(parse_filter(value, name))
    elif name == "_lastUpdated":
        search.last_updated.append(parse_filter(value, name))
    elif modifier == "missing" and (base in ALWAYS_PRESENT or base == "started"):
        _missing(search, base, _boolean(value, name))
    elif name in ("_include", "_include:iterate"):
        _include(search, value)
    elif name == "_count":
        search.count = min(_integer(value, name), MAX_COUNT)
    elif name == "_offset":
        search.offset = _integer(value, name)
    elif name not in IGNORED:
        search.unknown.append(name)


def _missing(search: ImagingStudySearch, base: str, missing: bool) -> None:
    """``:missing`` (R4 search 3.1.1.4.1). It never names a patient: a search with only
    ``patient:missing=false`` still lacks the patient the IG requires."""
    if base == "started":
        if search.started_missing is not None and search.started_missing != missing:
            search.match_none = True
        search.started_missing = missing
    elif missing:
        search.match_none = True


def _include(search: ImagingStudySearch, value: str) -> None:
    if value in INCLUDES:
        search.include_endpoint = True
    else:
        search.unknown.append(f"_include={value}")


def _split(value: str, name: str) -> list[str]:
    parts = [p.strip() for p in value.split(",")]
    if not value or any(not p for p in parts):
        raise BadRequest(f"search parameter {name} has an empty value")
    return parts


def _patient_id(value: str) -> str:
    ref = value.rstrip("/")
    if "/" in ref:
        head, _, tail = ref.rpartition("/")
        if not head.endswith("Patient"):
            raise BadRequest("patient must reference a Patient")
        ref = tail
    if not _ID.fullmatch(ref):
        raise BadRequest("patient is not a valid FHIR id")
    return ref


def _identifier(value: str, name: str) -> Identifier:
    system, sep, code = value.partition("|")
    if not sep:
        return Identifier(None, value)
    if not code:
        raise BadRequest(f"{name} needs a value after '|'")
    return Identifier(system or None, code)


def _study_uid(value: str) -> str:
    system, sep, code = value.partition("|")
    if sep and system not in ("", "urn:dicom:uid"):
        raise BadRequest("identifier system must be urn:dicom:uid")
    raw = code if sep else value
    uid = raw.removeprefix("urn:oid:")
    if not uid.isascii() or not uid.isprintable() or not is_valid_uid(uid):
        raise BadRequest("identifier is not a valid DICOM study UID")
    return uid


def _boolean(value: str, name: str) -> bool:
    if value not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false")
    return value == "true"


def _integer(value: str, name: str) -> int:
    """A non-negative integer of ASCII digits: ``str.isdigit`` also accepts ``²`` or ``٣``."""
    if not _DIGITS.fullmatch(value) or len(value.lstrip("0")) > MAX_DIGITS:
        raise BadRequest(f"{name} must be a non-negative integer of at most {MAX_DIGITS} digits")
    return int(value)
