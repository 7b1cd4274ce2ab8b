"""The dicom-dimse source against Orthanc's DICOM port: search like dicom-web, retrieval through
the real server with C-GET and C-MOVE, failures as 502."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET_MODEL

from smart_imaging.config.tenant import DicomWebImages, DimseImages
from smart_imaging.dicom import multipart
from smart_imaging.fhir.imaging_study import imaging_study, study_uid
from smart_imaging.sources.base import StudyQuery, StudyRecord, WadoRequest
from smart_imaging.sources.dicomweb import DicomWebSource
from smart_imaging.sources.dimse import DimseSource
from smart_imaging.sources.dimse.part10 import dataset_offset

from ..conftest import dicomweb_tenant, mock_patient
from ..orthanc import Orthanc, free_port
from ..sample_dicom import SampleData, deterministic_uid

A, B = "77654033", "98890234"
SERIES_UID = "0020000E"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


def dimse_tenant(orthanc: Orthanc, **images: Any) -> dict[str, Any]:
    return {
        "type": "dicom-dimse",
        "endpoint": f"dimse://127.0.0.1:{orthanc.dicom_port}",
        "ae": orthanc.peer_aet,
        "calledAe": orthanc.aet,
        "storePort": orthanc.peer_port,
        **images,
    }


@pytest.fixture
async def sources(
    orthanc: Orthanc, sample_data: SampleData
) -> AsyncIterator[tuple[DimseSource, DicomWebSource]]:
    dimse = DimseSource(DimseImages.model_validate(dimse_tenant(orthanc)))
    async with httpx.AsyncClient() as http:
        yield dimse, DicomWebSource(DicomWebImages.model_validate(dicomweb_tenant(orthanc)), http)
    await dimse.aclose()


def as_fhir(records: list[StudyRecord]) -> list[dict[str, Any]]:
    subject = {"reference": "Patient/x"}
    return sorted((imaging_study(r, subject, "Endpoint/e") for r in records), key=lambda s: s["id"])


@pytest.mark.parametrize("patient", [A, B, None, "7765*", "7765?033", "", "*"])
async def test_search_equals_the_dicomweb_source(
    sources: tuple[DimseSource, DicomWebSource], patient: str | None
) -> None:
    dimse, web = sources
    found = await dimse.search(StudyQuery(patient))
    assert as_fhir(found) == as_fhir(await web.search(StudyQuery(patient)))
    if patient in (A, B, "7765*"):
        assert found and all(s.series and all(x.instances for x in s.series) for s in found)


async def test_wildcards_in_the_mrn_never_widen_the_match(
    sources: tuple[DimseSource, DicomWebSource], sample_data: SampleData
) -> None:
    dimse, _ = sources
    found = await dimse.search(StudyQuery("7765*"))
    assert {study_uid(r) for r in found} == set(sample_data.patients["7765*"])
    assert not await dimse.search(StudyQuery("7765"))
    assert not await dimse.search(StudyQuery("*"))


async def test_a_study_never_lists_another_patients_series_or_instances(
    sources: tuple[DimseSource, DicomWebSource],
) -> None:
    """One study UID holding MIX-A's and MIX-B's instances (bad archive data): MIX-A's search
    shows only MIX-A's series, like the dicom-web source."""
    dimse, web = sources
    (found,) = await dimse.search(StudyQuery("MIX-A"))
    series = {s.series[SERIES_UID]["Value"][0] for s in found.series}
    assert series == {deterministic_uid("mixed", "series", "MIX-A")}
    assert all(len(s.instances or []) == 1 for s in found.series)
    assert as_fhir([found]) == as_fhir(await web.search(StudyQuery("MIX-A")))


async def test_search_without_instances_and_by_study_uid(
    sources: tuple[DimseSource, DicomWebSource], sample_data: SampleData
) -> None:
    dimse, _ = sources
    wanted = sample_data.patients[B][0]
    found = await dimse.search(StudyQuery(B, (wanted,), include_instances=False))
    assert [study_uid(r) for r in found] == [wanted]
    assert all(s.instances is None for s in found[0].series)


@pytest.fixture
def server(orthanc: Orthanc, sample_data: SampleData, imaging_server: Callable[..., str]) -> str:
    def tenant(patient: str, **images: Any) -> dict[str, Any]:
        return {
            "authorization": {"type": "mock", "patient": mock_patient(f"pat-{patient}", patient)},
            "images": dimse_tenant(orthanc, **images),
        }

    unused = free_port()
    return imaging_server(
        {
            "get": tenant(A, retrieval="c-get"),
            "move": tenant(B, retrieval="c-move"),
            "down": tenant(A, endpoint=f"dimse://127.0.0.1:{unused}", timeout=5),
            "stranger": tenant(A, ae="NOT-REGISTERED"),
        }
    )


def endpoints(base: str, tenant: str, patient: str) -> dict[str, str]:
    response = httpx.get(f"{base}/{tenant}/fhir/ImagingStudy", params={"patient": patient}, timeout=60)
    assert response.status_code == 200, response.text
    return {e["resource"]["id"]: e["resource"]["contained"][0]["address"] for e in response.json()["entry"]}


def parts(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    return list(multipart.decode(response.headers["content-type"], response.content))


def sent_by_orthanc(orthanc: Orthanc, study: str) -> dict[str, bytes]:
    """The data sets exactly as Orthanc sends them over DIMSE (a plain pynetdicom C-GET)."""
    received: dict[str, bytes] = {}

    def on_store(event: Any) -> int:
        received[event.request.AffectedSOPInstanceUID.rstrip("\x00 ")] = raw_dataset(event)
        return 0x0000

    ae = AE(ae_title=orthanc.peer_aet)
    ae.add_requested_context(GET_MODEL)
    classes = (CTImageStorage, MRImageStorage, ComputedRadiographyImageStorage)
    for sop_class in classes:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian])
    assoc = ae.associate(
        "127.0.0.1",
        orthanc.dicom_port,
        ae_title=orthanc.aet,
        ext_neg=[build_role(c, scp_role=True) for c in classes],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    statuses = [int(status.Status) for status, _ in assoc.send_c_get(query, GET_MODEL)]
    assoc.release()
    assert statuses[-1] == 0x0000
    return received


def raw_dataset(event: Any) -> bytes:
    """The data set bytes of a C-STORE event, whether pynetdicom kept them in memory or (once
    a DimseSource switched the process to chunked receive) spooled them to a file."""
    path = event.dataset_path
    if path is None:
        return bytes(event.encoded_dataset(include_meta=False))
    event.request._dataset_file.close()
    data = path.read_bytes()
    path.unlink()
    return data[dataset_offset(data) :]


def assert_same_instance(received: bytes, sent: bytes, stored: bytes) -> bool:
    """Our part holds the data set exactly as the archive sent it, with matching file meta
    (which DIMSE never carries), and decodes to the stored instance. True if it is also
    byte-identical to the stored data set."""
    assert received[dataset_offset(received) :] == sent
    ours, theirs = (pydicom.dcmread(io.BytesIO(b)) for b in (received, stored))
    for keyword in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"):
        assert ours.file_meta[keyword].value == theirs.file_meta[keyword].value
    assert ours == theirs
    return sent == stored[dataset_offset(stored) :]


@pytest.mark.parametrize(("tenant", "patient"), [("get", A), ("move", B)])
def test_studies_retrieved_byte_identical_per_instance(
    server: str, orthanc: Orthanc, sample_data: SampleData, tenant: str, patient: str
) -> None:
    identical = 0
    for study, address in endpoints(server, tenant, f"pat-{patient}").items():
        response = httpx.get(f"{address}/studies/{study}", headers={"Accept": MULTIPART_DICOM}, timeout=60)
        assert response.status_code == 200, response.text
        got = {
            pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True).SOPInstanceUID: body
            for _, body in parts(response)
        }
        stored = sample_data.instances_of(study)
        sent = sent_by_orthanc(orthanc, study)
        assert set(got) == set(stored) == set(sent)
        identical += sum(assert_same_instance(body, sent[uid], stored[uid]) for uid, body in got.items())
    # Orthanc's DIMSE sender re-encodes undefined-length sequences with explicit lengths (some
    # MR files of patient B); every other instance must equal Orthanc's stored file bytes.
    assert identical >= (len(sample_data.files) and 1)


@pytest.mark.parametrize(("tenant", "patient"), [("get", A), ("move", B)])
def test_series_instance_metadata_and_frames(
    server: str, sample_data: SampleData, tenant: str, patient: str
) -> None:
    study, address = next(iter(endpoints(server, tenant, f"pat-{patient}").items()))
    metadata = httpx.get(f"{address}/studies/{study}/metadata", timeout=60)
    assert metadata.status_code == 200
    assert metadata.headers["content-type"].startswith("application/dicom+json")
    found = metadata.json()
    assert {m["00080018"]["Value"][0] for m in found} == set(sample_data.instances_of(study))
    first = found[0]
    series, sop = first["0020000E"]["Value"][0], first["00080018"]["Value"][0]
    assert first["7FE00010"]["BulkDataURI"].startswith(f"{address}/studies/{study}/series/{series}")
    base = f"{address}/studies/{study}/series/{series}"
    series_parts = parts(httpx.get(base, headers={"Accept": MULTIPART_DICOM}, timeout=60))
    in_series = {
        uid
        for uid, blob in sample_data.instances_of(study).items()
        if pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True).SeriesInstanceUID == series
    }
    assert {pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID for _, b in series_parts} == in_series
    one = parts(httpx.get(f"{base}/instances/{sop}", headers={"Accept": MULTIPART_DICOM}, timeout=60))
    assert len(one) == 1
    ours = pydicom.dcmread(io.BytesIO(one[0][1]))
    assert ours == pydicom.dcmread(io.BytesIO(sample_data.files[sop]))
    frame = httpx.get(
        f"{base}/instances/{sop}/frames/1",
        headers={"Accept": 'multipart/related; type="application/octet-stream"'},
        timeout=60,
    )
    assert frame.status_code == 200
    original = pydicom.dcmread(io.BytesIO(sample_data.files[sop]))
    assert parts(frame)[0][1] == original.PixelData[: len(parts(frame)[0][1])] != b""


def test_an_unknown_series_is_404(server: str) -> None:
    study, address = next(iter(endpoints(server, "get", f"pat-{A}").items()))
    response = httpx.get(
        f"{address}/studies/{study}/series/1.2.3.4.5", headers={"Accept": MULTIPART_DICOM}, timeout=60
    )
    assert response.status_code == 404


def test_archive_down_is_502_with_a_clear_message(server: str, orthanc: Orthanc) -> None:
    search = httpx.get(f"{server}/down/fhir/ImagingStudy", params={"patient": f"pat-{A}"}, timeout=60)
    assert search.status_code == 502
    assert "not reachable" in search.text and "password" not in search.text.lower()
    study, address = next(iter(endpoints(server, "get", f"pat-{A}").items()))
    down = address.replace(f"{server}/get/", f"{server}/down/")
    response = httpx.get(f"{down}/studies/{study}", headers={"Accept": MULTIPART_DICOM}, timeout=60)
    assert response.status_code in (403, 502)  # the binding names tenant "get"


def test_an_unregistered_ae_title_is_502_naming_the_cause(server: str) -> None:
    response = httpx.get(f"{server}/stranger/fhir/ImagingStudy", params={"patient": f"pat-{A}"}, timeout=60)
    assert response.status_code == 502
    assert "NOT-REGISTERED" in response.text and "Traceback" not in response.text


async def test_a_failed_retrieval_is_not_cached(orthanc: Orthanc, sample_data: SampleData) -> None:
    source = DimseSource(DimseImages.model_validate(dimse_tenant(orthanc, ae="NOT-REGISTERED")))
    try:
        with pytest.raises(Exception) as caught:
            await source.retrieve(WadoRequest(sample_data.patients[A][0]))
        assert getattr(caught.value, "status", None) == 502
        assert len(source.cache) == 0
    finally:
        await source.aclose()
