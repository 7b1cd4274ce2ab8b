"""The image source interface: search studies, retrieve DICOM.

Sources speak the DICOM JSON model (PS3.18 F.2) for search results, so the FHIR mapping in
``smart_imaging.fhir`` is shared by all of them. Retrieval answers stream: ``WadoResponse.body``
yields chunks as they arrive from the archive, disk or network.

Errors: ``NotFound`` (404), ``BadRequest`` (400), ``NotAcceptable`` (406), ``UpstreamError``
(502), ``UpstreamTimeout`` (504), ``Unavailable`` (503 + Retry-After) from ``smart_imaging.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..dicom import json_model as dj
from ..dicom import tags
from ..dicom.records import SeriesRecord as SeriesRecord
from ..dicom.records import StudyRecord as StudyRecord
from ..wado.qido import QidoQuery
from ..wado.request import Resource as Resource
from ..wado.request import WadoRequest as WadoRequest

DicomJson = dict[str, Any]


@dataclass(frozen=True)
class StudyQuery:
    """Which studies to find.

    ``mrn`` (the patient's MRN) is matched exactly against DICOM PatientID (0010,0020): wildcard
    characters in it are literal. ``None`` means all studies on the server; an empty string
    matches nothing. (The FHIR Patient id is never called an MRN: it is ``patient_id``.)
    """

    mrn: str | None
    study_uids: tuple[str, ...] = ()
    include_instances: bool = True
    include_series: bool = True  # False: study level only (StudyRecord.series may stay empty)
    # Attributes (DICOM JSON tags) also wanted at study and series level, e.g. the access policy's
    # confidentiality attribute. Sources that can ask for them do (dicom-web: QIDO-RS includefield);
    # others leave them absent, which the policy treats as unknown (deny rules apply).
    extra_fields: tuple[str, ...] = ()

    def matches(self, study: DicomJson) -> bool:
        """Exact matching of an archive's study-level answer: archives widen wildcards in
        PatientID (QIDO-RS, C-FIND) or ignore keys, so every source filters with this."""
        uid = dj.text(study, tags.StudyInstanceUID)
        if uid is None:
            return False
        if self.mrn is not None and dj.text(study, tags.PatientID) != self.mrn.strip("\x00 "):
            return False
        return not self.study_uids or uid in self.study_uids


@dataclass
class WadoResponse:
    media_type: str
    body: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    close: Callable[[], Awaitable[None]] | None = None

    async def aclose(self) -> None:
        if self.close is not None:
            await self.close()


class ImageSource(Protocol):
    async def search(self, query: StudyQuery) -> list[StudyRecord]:
        """Studies matching the query, with their series (and instances when cheap)."""
        ...

    async def retrieve(self, request: WadoRequest) -> WadoResponse:
        """Start a WADO-RS retrieval; raise before returning when the source refuses."""
        ...

    async def query(self, query: QidoQuery) -> list[DicomJson]:
        """QIDO-RS under an Endpoint (PS3.18 10.6): every record at ``query.level`` of the bound
        study (and series), with at least ``query.fields`` where known. Scope, matching and
        paging are ``wado.matching``'s, the same for every source."""
        ...

    async def aclose(self) -> None: ...
