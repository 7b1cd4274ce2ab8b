"""QIDO-RS under an Endpoint address (PS3.18 10.6): the request, parsed and checked. Pure.

``QidoRequest.parse`` reads the level (``/studies``, ``/studies/{study}/series``,
``/studies/{study}/series/{series}/instances``, ``/studies/{study}/instances``) and the query
(PS3.18 8.3.4): matching keys as keywords or tags (``PatientID`` or ``00100020``), ``includefield``
(repeated or comma-separated, ``all`` included), ``limit``, ``offset`` and ``fuzzymatching``.
An attribute that is neither a known keyword nor a tag, a key given twice, or a limit or offset
that is not a non-negative integer is a 400 (PS3.18 8.3.4: an invalid query is refused).

``QidoQuery`` is what an image source is asked for: every record of one level of the bound study
(series: of one series too), with the attributes the client wants to see or match on. Matching,
scope and paging happen afterwards, the same for every source (``wado.matching``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from ..dicom import tags
from ..errors import BadRequest
from .request import require_path_uid

Level = Literal["studies", "series", "instances"]

MAX_KEYS = 64
MAX_VALUE = 1024
MAX_LIMIT = 100_000
_TAG = re.compile(r"[0-9A-Fa-f]{8}", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)
_CONTROL = ("limit", "offset", "fuzzymatching", "includefield")
DEFAULT_FIELDS: dict[Level, tuple[str, ...]] = {
    "studies": tags.STUDY_FIELDS,
    "series": (*tags.SERIES_FIELDS, tags.StudyInstanceUID),
    "instances": (*tags.INSTANCE_FIELDS, tags.StudyInstanceUID),
}


@dataclass(frozen=True)
class QidoRequest:
    """One QIDO-RS request. ``keys``: (tag, value) matching keys; ``include``: tags to include
    (``include_all`` for ``includefield=all``); ``study_uid``/``series_uid``: from the path."""

    level: Level
    study_uid: str | None = None
    series_uid: str | None = None
    keys: tuple[tuple[str, str], ...] = ()
    include: tuple[str, ...] = ()
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    fuzzy: bool = False

    @classmethod
    def parse(
        cls,
        level: Level,
        params: list[tuple[str, str]],
        study_uid: str | None = None,
        series_uid: str | None = None,
    ) -> QidoRequest:
        if study_uid is not None:
            study_uid = require_path_uid(study_uid, "study UID")
        if series_uid is not None:
            series_uid = require_path_uid(series_uid, "series UID")
        include, include_all = _includes(params)
        return cls(
            level,
            study_uid,
            series_uid,
            keys=_keys(params),
            include=include,
            include_all=include_all,
            limit=_number(params, "limit"),
            offset=_number(params, "offset") or 0,
            fuzzy=_flag(params, "fuzzymatching"),
        )

    def key(self, tag: str) -> str | None:
        return next((value for found, value in self.keys if found == tag), None)

    def query(self, study_uid: str, mrn: str | None, public_base: str = "") -> QidoQuery:
        """What to ask the source for, with the bound study fixed."""
        wanted = dict.fromkeys((*DEFAULT_FIELDS[self.level], *self.include, *(t for t, _ in self.keys)))
        return QidoQuery(
            self.level, study_uid, self.series_uid, mrn, tuple(wanted), self.include_all, public_base
        )


@dataclass(frozen=True)
class QidoQuery:
    """Every record at ``level`` of study ``study_uid`` (and series ``series_uid``); ``fields``:
    the tags the records should carry (``all_fields``: every attribute at that level)."""

    level: Level
    study_uid: str
    series_uid: str | None
    mrn: str | None
    fields: tuple[str, ...]
    all_fields: bool = False
    public_base: str = ""  # our WADO-RS base: RetrieveURLs are moved under it


def attribute_tag(name: str) -> str:
    """``PatientID`` or ``00100020`` -> ``"00100020"``; 400 for anything else (sequence paths
    such as ``00081250.0020000D`` included: they are not supported here)."""
    if _TAG.fullmatch(name):
        return name.upper()
    tag = tag_for_keyword(name) if name.isascii() and name.isidentifier() else None
    if tag is None:
        raise BadRequest(f"QIDO-RS: {_shown(name)} is not a DICOM attribute keyword or tag")
    return f"{tag:08X}"


def keyword(tag: str) -> str:
    return keyword_for_tag(int(tag, 16)) or tag


def _keys(params: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for name, value in params:
        if name in _CONTROL:
            continue
        tag = attribute_tag(name)
        if tag in found:
            raise BadRequest(f"QIDO-RS: {keyword(tag)} is given more than once")
        if len(value) > MAX_VALUE or not value.isprintable():
            raise BadRequest(f"QIDO-RS: the value of {keyword(tag)} is not a valid matching value")
        found[tag] = value
    if len(found) > MAX_KEYS:
        raise BadRequest(f"QIDO-RS: more than {MAX_KEYS} matching keys")
    return tuple(found.items())


def _includes(params: list[tuple[str, str]]) -> tuple[tuple[str, ...], bool]:
    names = [n.strip() for name, value in params if name == "includefield" for n in value.split(",")]
    names = [n for n in names if n]
    if len(names) > MAX_KEYS * 4:
        raise BadRequest("QIDO-RS: too many includefield values")
    include_all = "all" in names
    return tuple(dict.fromkeys(attribute_tag(n) for n in names if n != "all")), include_all


def _number(params: list[tuple[str, str]], name: str) -> int | None:
    given = [value for key, value in params if key == name]
    if not given:
        return None
    if len(given) > 1 or not _DIGITS.fullmatch(given[0].strip()):
        raise BadRequest(f"QIDO-RS: {name} must be one non-negative integer")
    return min(int(given[0]), MAX_LIMIT if name == "limit" else 10**12)


def _flag(params: list[tuple[str, str]], name: str) -> bool:
    given = [value.strip().lower() for key, value in params if key == name]
    if any(v not in ("true", "false") for v in given) or len(given) > 1:
        raise BadRequest(f"QIDO-RS: {name} must be true or false")
    return given == ["true"]


def _shown(name: str) -> str:
    """A client's attribute name, safe to echo: printable ASCII, shortened."""
    cleaned = "".join(ch for ch in name if ch.isascii() and ch.isprintable())[:64]
    return repr(cleaned)
