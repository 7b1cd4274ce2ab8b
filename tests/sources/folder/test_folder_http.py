"""The folder source behind the real imaging server: FHIR search, then WADO-RS over HTTP."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from smart_imaging.dicom import multipart

from ...conftest import mock_patient
from ...generated_samples import generated_samples

MULTIPART_DICOM = 'multipart/related; type="application/dicom"'


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    """SOP Instance UID -> file of the generated samples."""
    _, paths = generated_samples()
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in paths}


@pytest.fixture
def server(imaging_server: Callable[..., str], tmp_path: Path) -> str:
    folder = generated_samples()[0]
    images: dict[str, Any] = {"type": "folder", "path": str(folder), "index": str(tmp_path / "index.sqlite")}
    return imaging_server(
        {
            "tenant": {
                "authorization": {"type": "mock", "disableAuthzChecks": True},
                "images": {**images, "lookup": "all-studies-on-server"},
            },
            "ava": {
                "authorization": {"type": "mock", "patient": mock_patient("ava-chen", "MRN-1001")},
                "images": images,
            },
        }
    )


def endpoints(base: str, tenant: str, patient: str) -> dict[str, str]:
    """Study UID -> Endpoint address, from a FHIR search."""
    response = httpx.get(f"{base}/{tenant}/fhir/ImagingStudy", params={"patient": patient}, timeout=30)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    return {e["resource"]["id"]: e["resource"]["contained"][0]["address"] for e in entries}


def study_uids_of(files: dict[str, Path], mrn: str | None = None) -> set[str]:
    found = set()
    for path in files.values():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if mrn is None or ds.PatientID == mrn:
            found.add(ds.StudyInstanceUID)
    return found


def test_search_finds_every_study_and_patient_lookup_only_theirs(server: str, files: dict[str, Path]) -> None:
    every = endpoints(server, "tenant", "x")
    assert set(every) == study_uids_of(files)
    assert all(address.startswith(f"{server}/tenant/wado/") for address in every.values())
    assert set(endpoints(server, "ava", "ava-chen")) == study_uids_of(files, "MRN-1001")


def test_study_over_http_is_byte_identical(server: str, files: dict[str, Path]) -> None:
    for study, address in endpoints(server, "ava", "ava-chen").items():
        response = httpx.get(f"{address}/studies/{study}", headers={"Accept": MULTIPART_DICOM}, timeout=60)
        assert response.status_code == 200
        parts = [p for _, p in multipart.decode(response.headers["content-type"], response.content)]
        got = {pydicom.dcmread(io.BytesIO(p), stop_before_pixels=True).SOPInstanceUID: p for p in parts}
        assert len(got) == len(parts) > 0
        assert all(files[sop].read_bytes() == data for sop, data in got.items())


def test_dicomweb_client_retrieves_studies_frames_and_rendered(server: str, files: dict[str, Path]) -> None:
    addresses = endpoints(server, "tenant", "x")
    for study, address in addresses.items():
        client = DICOMwebClient(url=address)
        instances = client.retrieve_study(study)
        assert instances and {ds.StudyInstanceUID for ds in instances} == {study}
        for ds in instances:
            original = pydicom.dcmread(files[ds.SOPInstanceUID])
            assert ds.PixelData == original.PixelData
    jpeg = next(s for s in addresses if _transfer_syntax(files, s) == "1.2.840.10008.1.2.4.50")
    client = DICOMwebClient(url=addresses[jpeg])
    metadata = client.retrieve_study_metadata(jpeg)
    series, sop = metadata[0]["0020000E"]["Value"][0], metadata[0]["00080018"]["Value"][0]
    # dicomweb-client sends "Host: 127.0.0.1" without the port, so compare paths only
    bulk = urlsplit(metadata[0]["7FE00010"]["BulkDataURI"]).path
    assert bulk == f"{urlsplit(addresses[jpeg]).path}/studies/{jpeg}/series/{series}/instances/{sop}/frames/1"
    stored = pydicom.dcmread(files[sop])
    anything = client.retrieve_instance_frames(jpeg, series, sop, [1])  # type="*/*": as stored
    assert anything[0][:2] == b"\xff\xd8" and bytes(anything[0]) in stored.PixelData
    native = client.retrieve_instance_frames(
        jpeg, series, sop, [1], media_types=(("image/jpeg", "1.2.840.10008.1.2.4.50"),)
    )
    assert native == anything
    decoded = client.retrieve_instance_frames(
        jpeg, series, sop, [1], media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),)
    )
    assert decoded[0] == stored.pixel_array.tobytes()
    rendered = client.retrieve_instance_rendered(jpeg, series, sop, media_types=("image/png",))
    assert rendered[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_series_is_404(server: str) -> None:
    study, address = next(iter(endpoints(server, "tenant", "x").items()))
    response = httpx.get(f"{address}/studies/{study}/series/2.25.404", headers={"Accept": MULTIPART_DICOM})
    assert response.status_code == 404


def _transfer_syntax(files: dict[str, Path], study: str) -> str:
    for path in files.values():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.StudyInstanceUID == study:
            return str(ds.file_meta.TransferSyntaxUID)
    return ""


def test_a_study_holding_another_patients_data_is_refused(
    imaging_server: Callable[..., str], tmp_path: Path
) -> None:
    """One study UID holding instances of MIX-A and MIX-B: MIX-A finds its part of the study,
    but retrieving the study is refused, as with the DICOMweb source."""
    from ...sample_dicom import mixed_study_files

    folder = tmp_path / "mixed"
    folder.mkdir()
    for n, blob in enumerate(mixed_study_files()):
        (folder / f"{n}.dcm").write_bytes(blob)
    base = imaging_server(
        {
            "m": {
                "authorization": {"type": "mock", "patient": mock_patient("mix-a", "MIX-A")},
                "images": {"type": "folder", "path": str(folder)},
            }
        }
    )
    bundle = httpx.get(f"{base}/m/fhir/ImagingStudy", params={"patient": "mix-a"}, timeout=30).json()
    study = bundle["entry"][0]["resource"]
    assert bundle["total"] == 1 and study["numberOfInstances"] == 1
    address = study["contained"][0]["address"]
    response = httpx.get(f"{address}/studies/{study['id']}", headers={"Accept": MULTIPART_DICOM}, timeout=30)
    assert response.status_code == 403
    assert "another patient" in response.json()["message"]
