"""Small fakes of the two plugin protocols, for in-process route tests (the fast tier).

- :class:`FakeAuthorizer` (``smart_imaging.auth.base.Authorizer``): bearer tokens map to grants;
  no token is a 401 with a challenge, an unknown token a 401 ``invalid_token``.
- :class:`FakeSource` (``smart_imaging.sources.base.ImageSource``): studies in memory, matched
  with the query's own ``matches`` (as every real source filters); retrievals answer with the
  media type the route negotiated and a body of chunks (or any async iterator), and count closes;
  QIDO-RS queries list the study's records (``extra_records`` too: an archive that answers with
  more than it was asked for).
- :func:`install` puts them into a running app's tenant (after the lifespan built the registry).

Both record what they were asked, so a test can tell that a refusal happened before any
archive access.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette

from smart_imaging.auth.base import AccessGrant, AuthRequest
from smart_imaging.dicom import tags
from smart_imaging.errors import Unauthorized
from smart_imaging.sources.base import SeriesRecord, StudyQuery, StudyRecord, WadoRequest, WadoResponse
from smart_imaging.wado.qido import QidoQuery

DicomJson = dict[str, Any]
MR_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}


def grant(patient: str | None, **fields: Any) -> AccessGrant:
    """A grant for ``patient`` (the FHIR Patient id); ``fields`` as AccessGrant takes them."""
    return AccessGrant(patient, **fields)


def patient(patient_id: str, mrn: str) -> dict[str, Any]:
    """A FHIR Patient with one MR identifier."""
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"type": MR_TYPE, "system": "urn:test:mrn", "value": mrn}],
    }


def study(
    uid: str,
    mrn: str,
    *,
    date: str = "20240105",
    modality: str = "CT",
    series: int = 1,
    description: str = "",
) -> DicomJson:
    """A study-level DICOM JSON answer (PS3.18 F.2) with ``series`` series of one instance each."""
    ds: DicomJson = {
        tags.StudyInstanceUID: {"vr": "UI", "Value": [uid]},
        tags.PatientID: {"vr": "LO", "Value": [mrn]},
        tags.StudyDate: {"vr": "DA", "Value": [date]},
        tags.StudyTime: {"vr": "TM", "Value": ["101500"]},
        tags.ModalitiesInStudy: {"vr": "CS", "Value": [modality]},
        tags.NumberOfStudyRelatedSeries: {"vr": "IS", "Value": [series]},
        tags.NumberOfStudyRelatedInstances: {"vr": "IS", "Value": [series]},
    }
    if description:
        ds[tags.StudyDescription] = {"vr": "LO", "Value": [description]}
    return ds


def _series(uid: str, number: int, modality: str) -> DicomJson:
    return {
        tags.SeriesInstanceUID: {"vr": "UI", "Value": [f"{uid}.{number}"]},
        tags.SeriesNumber: {"vr": "IS", "Value": [number]},
        tags.Modality: {"vr": "CS", "Value": [modality]},
        tags.NumberOfSeriesRelatedInstances: {"vr": "IS", "Value": [1]},
    }


@dataclass
class FakeAuthorizer:
    tokens: dict[str, AccessGrant] = field(default_factory=dict)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)  # FHIR id -> Patient
    ehr: dict[str, Any] | None = None  # the EHR's smart-configuration, if any
    requests: list[AuthRequest] = field(default_factory=list)
    closed: bool = False

    async def authorize(self, request: AuthRequest) -> AccessGrant:
        self.requests.append(request)
        if request.token is None:
            raise Unauthorized("an access token is required", error=None)
        found = self.tokens.get(request.token)
        if found is None:
            raise Unauthorized("the access token is not active")
        return found

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        return self.patients.get(grant.patient_id or "")

    async def ehr_configuration(self) -> dict[str, Any] | None:
        return self.ehr

    async def aclose(self) -> None:
        self.closed = True


Body = Callable[[WadoRequest], AsyncIterator[bytes]]


async def chunks(parts: Sequence[bytes], then_fail: bool = False) -> AsyncIterator[bytes]:
    """Yield ``parts`` one by one; with ``then_fail``, raise ``ConnectionResetError`` after them
    (an archive going away mid-transfer)."""
    for part in parts:
        await asyncio.sleep(0)
        yield part
    if then_fail:
        raise ConnectionResetError("the archive went away")


@dataclass
class FakeSource:
    studies: list[DicomJson] = field(default_factory=list)
    parts: Sequence[bytes] = (b"--part-1--", b"--part-2--", b"--part-3--")
    body: Body | None = None  # overrides ``parts``
    search_error: Exception | None = None
    retrieve_error: Exception | None = None
    searches: list[StudyQuery] = field(default_factory=list)
    retrievals: list[WadoRequest] = field(default_factory=list)
    queries: list[QidoQuery] = field(default_factory=list)
    extra_records: list[DicomJson] = field(default_factory=list)
    responses_closed: int = 0
    closed: bool = False

    async def search(self, query: StudyQuery) -> list[StudyRecord]:
        self.searches.append(query)
        if self.search_error is not None:
            raise self.search_error
        return [self._record(ds) for ds in self.studies if query.matches(ds)]

    def _record(self, ds: DicomJson) -> StudyRecord:
        uid = str(ds[tags.StudyInstanceUID]["Value"][0])
        modality = str(ds[tags.ModalitiesInStudy]["Value"][0])
        count = int(ds[tags.NumberOfStudyRelatedSeries]["Value"][0])
        return StudyRecord(dict(ds), [SeriesRecord(_series(uid, n, modality)) for n in range(1, count + 1)])

    async def retrieve(self, request: WadoRequest) -> WadoResponse:
        self.retrievals.append(request)
        if self.retrieve_error is not None:
            raise self.retrieve_error
        body = self.body(request) if self.body else chunks(self.parts)
        media_type = request.accept or "application/octet-stream"
        return WadoResponse(media_type=media_type, body=body, close=self._closed_one)

    async def query(self, query: QidoQuery) -> list[DicomJson]:
        self.queries.append(query)
        found = [
            self._record(ds) for ds in self.studies if ds[tags.StudyInstanceUID]["Value"] == [query.study_uid]
        ]
        if query.level == "studies":
            return [r.study for r in found] + self.extra_records
        series = [s.series for r in found for s in r.series]
        if query.level == "series":
            return series + self.extra_records
        return [
            {
                tags.SOPInstanceUID: {"vr": "UI", "Value": [f"{uid}.1"]},
                tags.SeriesInstanceUID: {"vr": "UI", "Value": [uid]},
            }
            for uid in (s[tags.SeriesInstanceUID]["Value"][0] for s in series)
            if query.series_uid in (None, uid)
        ] + self.extra_records

    async def _closed_one(self) -> None:
        self.responses_closed += 1

    async def aclose(self) -> None:
        self.closed = True


async def install(app: Starlette, tenant: str, *, source: Any = None, authorizer: Any = None) -> None:
    """Swap a running app's tenant parts for fakes, closing the ones it built (the one place
    tests reach into the app: the tenant registry its lifespan built)."""
    built = app.state.smart_imaging.registry.get(tenant)
    if source is not None:
        await built.source.aclose()
        built.source = source
    if authorizer is not None:
        await built.authorizer.aclose()
        built.authorizer = authorizer
