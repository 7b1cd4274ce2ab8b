"""ImagingStudy search parameters (SMART Imaging Access IG; FHIR R4 search). Pure.

Supported: ``patient``/``subject`` (``123``, ``Patient/123`` or an absolute Patient URL),
``patient.identifier`` (``system|value``), ``identifier`` (``urn:oid:<uid>``, optionally with
system ``urn:dicom:uid``), ``started`` and ``_lastUpdated`` with date prefixes,
``_include=ImagingStudy:endpoint``, ``_count`` and ``_offset``. Unknown parameters are ignored
unless the client sent ``Prefer: handling=strict`` (FHIR R4 search 3.1.1.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..dicom.uid import is_valid_uid
from ..errors import BadRequest
from .dates import DateFilter, parse_filter

MAX_COUNT = 1000
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
IGNORED = {"_format", "_pretty", "_summary", "_elements", "_total"}
INCLUDES = {"ImagingStudy:endpoint", "ImagingStudy:endpoint:Endpoint"}


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
    last_updated: list[DateFilter] = field(default_factory=list)
    include_endpoint: bool = False
    count: int | None = None
    offset: int = 0
    unknown: list[str] = field(default_factory=list)


def parse(params: list[tuple[str, str]], strict: bool = False) -> ImagingStudySearch:
    search = ImagingStudySearch()
    for name, value in params:
        _apply(search, name, value)
    if strict and search.unknown:
        raise BadRequest(f"unsupported search parameters: {', '.join(sorted(set(search.unknown)))}")
    return search


def _apply(search: ImagingStudySearch, name: str, value: str) -> None:
    base, _, modifier = name.partition(":")
    if base in ("patient", "subject") and modifier in ("", "Patient"):
        search.patients += [_patient_id(v) for v in _split(value, name)]
    elif name in ("patient.identifier", "subject.identifier", "subject:Patient.identifier"):
        search.patient_identifiers += [_identifier(v) for v in _split(value, name)]
    elif name == "identifier":
        search.study_uids.append([_study_uid(v) for v in _split(value, name)])
    elif name == "started":
        search.started.append(parse_filter(value, name))
    elif name == "_lastUpdated":
        search.last_updated.append(parse_filter(value, name))
    elif name == "_include":
        if value in INCLUDES:
            search.include_endpoint = True
        else:
            search.unknown.append(f"_include={value}")
    elif name == "_count":
        search.count = min(_integer(value, name), MAX_COUNT)
    elif name == "_offset":
        search.offset = _integer(value, name)
    elif name not in IGNORED:
        search.unknown.append(name)


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
    if not _ID.match(ref):
        raise BadRequest("patient is not a valid FHIR id")
    return ref


def _identifier(value: str) -> Identifier:
    system, sep, code = value.partition("|")
    if not sep:
        return Identifier(None, value)
    if not code:
        raise BadRequest("patient.identifier needs a value after '|'")
    return Identifier(system or None, code)


def _study_uid(value: str) -> str:
    system, sep, code = value.partition("|")
    if sep and system not in ("", "urn:dicom:uid"):
        raise BadRequest("identifier system must be urn:dicom:uid")
    raw = code if sep else value
    uid = raw.removeprefix("urn:oid:")
    if not is_valid_uid(uid):
        raise BadRequest("identifier is not a valid DICOM study UID")
    return uid


def _integer(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)
