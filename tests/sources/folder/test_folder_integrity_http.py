"""Folder files truncated or removed, seen by HTTP clients of the real server (issue 13): while a
32 MB study streams, a broken transfer for httpx and an exception from dicomweb-client; before
the request, 502 or 404 with a short JSON error, never a 500."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from smart_imaging.dicom import multipart

from ...conftest import mock_patient
from ...dimse.fake_archive import synthetic_study
from ...sample_dicom import to_bytes

COUNT, SIZE = 16, 1024  # 16 files of 2 MB: far more than the socket buffers hold
MRN = "FOLDER-HTTP-1"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    for number, ds in enumerate(synthetic_study("folder-http", COUNT, MRN, size=SIZE), start=1):
        (root / f"{number:02d}.dcm").write_bytes(to_bytes(ds))
    return root


@pytest.fixture
def server(folder: Path, tmp_path: Path, imaging_server: Callable[..., str]) -> str:
    images = {"type": "folder", "path": str(folder), "index": str(tmp_path / "index.sqlite")}
    patient = {"type": "mock", "patient": mock_patient("pat-folder", MRN)}
    return imaging_server({"f": {"authorization": patient, "images": images}})


@pytest.fixture
def address(server: str) -> Iterator[tuple[str, str]]:
    """(study UID, Endpoint address) from a FHIR search."""
    response = httpx.get(f"{server}/f/fhir/ImagingStudy", params={"patient": "pat-folder"}, timeout=30)
    assert response.status_code == 200, response.text
    (entry,) = response.json()["entry"]
    yield entry["resource"]["id"], entry["resource"]["contained"][0]["address"]


def last_file(folder: Path) -> Path:
    return folder / f"{COUNT:02d}.dcm"


def truncate(path: Path) -> None:
    with open(path, "r+b") as fp:
        fp.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("fault", [truncate, os.unlink], ids=["truncated", "removed"])
def test_a_file_cut_while_the_study_streams_is_a_broken_transfer(
    address: tuple[str, str], folder: Path, fault: Callable[[Path], None]
) -> None:
    study, base = address
    got = b""
    with httpx.stream("GET", f"{base}/studies/{study}", headers={"Accept": MULTIPART_DICOM}, timeout=60) as r:
        assert r.status_code == 200
        boundary = multipart.boundary_of(r.headers["content-type"]) or ""
        chunks = r.iter_raw()
        got += next(chunks)
        fault(last_file(folder))
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in chunks:
                got += chunk
    assert not got.endswith(multipart.closing(boundary))
    assert got.count(f"--{boundary}\r\n".encode()) == COUNT - 1  # every part but the cut file's


def test_dicomweb_client_raises_on_a_file_truncated_while_streaming(
    address: tuple[str, str], folder: Path
) -> None:
    study, base = address
    client = DICOMwebClient(url=base)
    client.set_http_retry_params(retry=False)
    instances = client.iter_study(study)  # streams: the request is sent, the first part read
    first = next(instances)
    truncate(last_file(folder))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for _ in instances:
            pass
    assert first.StudyInstanceUID == study


def test_a_file_truncated_before_the_request_is_502_with_a_short_json_error(
    address: tuple[str, str], folder: Path
) -> None:
    study, base = address
    truncate(last_file(folder))
    cut = pydicom.dcmread(last_file(folder), stop_before_pixels=True)
    for path, accept in (
        (f"studies/{study}", MULTIPART_DICOM),
        (f"studies/{study}/metadata", "application/dicom+json"),
        (f"studies/{study}/series/{cut.SeriesInstanceUID}/instances/{cut.SOPInstanceUID}/frames/1", "*/*"),
        (f"studies/{study}/series/{cut.SeriesInstanceUID}/instances/{cut.SOPInstanceUID}/rendered", "*/*"),
    ):
        response = httpx.get(f"{base}/{path}", headers={"Accept": accept}, timeout=30)
        assert response.status_code == 502, (path, response.status_code)
        error = response.json()
        assert error["error"] == "bad_gateway" and cut.SOPInstanceUID in error["message"]
        assert str(folder) not in response.text and "Traceback" not in response.text


def test_files_removed_before_the_request_are_404_with_a_short_json_error(
    address: tuple[str, str], folder: Path
) -> None:
    study, base = address
    gone = pydicom.dcmread(last_file(folder), stop_before_pixels=True)
    os.unlink(last_file(folder))
    instance = f"{base}/studies/{study}/series/{gone.SeriesInstanceUID}/instances/{gone.SOPInstanceUID}"
    for url in (instance, f"{instance}/frames/1", f"{instance}/metadata"):
        response = httpx.get(url, headers={"Accept": "*/*"}, timeout=30)
        assert response.status_code == 404, (url, response.status_code)
        assert response.json()["error"] == "not_found"
    for path in folder.iterdir():
        path.unlink()
    for url in (f"{base}/studies/{study}", f"{base}/studies/{study}/metadata"):
        response = httpx.get(url, headers={"Accept": "*/*"}, timeout=30)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
