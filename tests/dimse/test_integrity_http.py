"""Cut DIMSE retrievals seen by HTTP clients of the real server (issue 13): the fake archive
aborts, drops the connection or ends with fewer instances than C-FIND listed; httpx sees a
broken transfer (never the closing delimiter) and dicomweb-client raises instead of returning
fewer instances. A failure known before the first part is a 502 with a short JSON error."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from smart_imaging.dicom import multipart

from ..conftest import mock_patient
from ..orthanc import free_port
from .fake_archive import AET, Ending, FakeArchive, synthetic_study

COUNT = 6
MRN = "FAKE-HTTP-1"
OUR_AE = "SMARTIMG"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(params=["c-get", "c-move"])
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def archive() -> Iterator[FakeArchive]:
    fake = FakeArchive(synthetic_study("integrity-http", COUNT, MRN, size=64), release_first=1)
    yield fake
    fake.close()


@pytest.fixture
def server(archive: FakeArchive, method: str, imaging_server: Callable[..., str]) -> str:
    store_port = free_port()
    archive.destinations[OUR_AE] = store_port

    def tenant(**images: Any) -> dict[str, Any]:
        return {
            "authorization": {"type": "mock", "patient": mock_patient("pat-fake", MRN)},
            "images": {
                "type": "dicom-dimse",
                "endpoint": archive.endpoint,
                "ae": OUR_AE,
                "calledAe": AET,
                "retrieval": method,
                "storePort": store_port,
                "firstResultTimeout": 20,
                **images,
            },
        }

    return imaging_server({"fake": tenant(timeout=10), "slow": tenant(timeout=1.5)})


def study_address(base: str, tenant: str = "fake") -> tuple[str, str]:
    response = httpx.get(f"{base}/{tenant}/fhir/ImagingStudy", params={"patient": "pat-fake"}, timeout=30)
    assert response.status_code == 200, response.text
    (entry,) = response.json()["entry"]
    return entry["resource"]["id"], entry["resource"]["contained"][0]["address"]


def read_cut(url: str, archive: FakeArchive, accept: str = MULTIPART_DICOM) -> tuple[str, bytes]:
    """GET ``url``; once the answer started, let the archive go on. Returns (content type,
    bytes read) and asserts that the transfer broke instead of ending."""
    got = b""
    with httpx.stream("GET", url, headers={"Accept": accept}, timeout=30) as response:
        assert response.status_code == 200
        archive.gate.set()
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                got += chunk
        return response.headers["content-type"], got


@pytest.mark.parametrize("ending", ["abort", "drop", "failure", "success"])
def test_a_cut_study_is_a_broken_transfer_for_httpx(
    server: str, archive: FakeArchive, ending: Ending
) -> None:
    archive.stop_after, archive.ending = 3, ending
    study, address = study_address(server)
    media_type, body = read_cut(f"{address}/studies/{study}", archive)
    boundary = multipart.boundary_of(media_type)
    assert boundary and body.count(f"--{boundary}\r\n".encode()) <= 3 < COUNT
    assert not body.endswith(multipart.closing(boundary))


def test_fewer_instances_than_c_find_listed_is_a_broken_transfer(server: str, archive: FakeArchive) -> None:
    study, address = study_address(server)
    archive.listed = COUNT + 3  # C-FIND (after the search) lists more than the archive sends
    media_type, body = read_cut(f"{address}/studies/{study}", archive)
    boundary = multipart.boundary_of(media_type) or ""
    assert body.count(f"--{boundary}\r\n".encode()) == COUNT
    assert not body.endswith(multipart.closing(boundary))


def test_metadata_of_a_cut_study_is_a_broken_transfer(server: str, archive: FakeArchive) -> None:
    archive.stop_after, archive.ending = 2, "drop"
    study, address = study_address(server)
    _, body = read_cut(f"{address}/studies/{study}/metadata", archive, "application/dicom+json")
    assert body.startswith(b"[") and not body.endswith(b"]")


def test_an_archive_gone_silent_is_a_broken_transfer(server: str, archive: FakeArchive) -> None:
    study, address = study_address(server, "slow")
    with httpx.stream(
        "GET", f"{address}/studies/{study}", headers={"Accept": MULTIPART_DICOM}, timeout=30
    ) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in response.iter_raw():  # the gate stays closed: the archive falls silent
                pass


@pytest.mark.parametrize("ending", ["failure", "abort"])
def test_a_retrieve_failing_before_any_instance_is_502_with_a_short_json_error(
    server: str, archive: FakeArchive, ending: Ending
) -> None:
    archive.stop_after, archive.ending = 0, ending
    study, address = study_address(server)
    response = httpx.get(f"{address}/studies/{study}", headers={"Accept": MULTIPART_DICOM}, timeout=30)
    assert response.status_code == 502
    error = response.json()
    assert error["error"] == "bad_gateway" and AET in error["message"]
    assert "Traceback" not in response.text


def test_dicomweb_client_raises_instead_of_returning_fewer_instances(
    server: str, archive: FakeArchive
) -> None:
    archive.stop_after, archive.ending = 3, "abort"
    study, address = study_address(server)
    client = DICOMwebClient(url=address)
    client.set_http_retry_params(retry=False)  # by default it retries 5 times (31 s), then raises
    opener = threading.Timer(0.5, archive.gate.set)  # the response starts, then the archive goes on
    opener.start()
    try:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):  # a broken transfer
            client.retrieve_study(study)
    finally:
        opener.cancel()
    assert archive.get_requests + archive.move_requests == 1
    archive.stop_after = None  # the archive recovers: the next request gets every instance
    instances = client.retrieve_study(study)
    assert {ds.SOPInstanceUID for ds in instances} == {ds.SOPInstanceUID for ds in archive.instances}
