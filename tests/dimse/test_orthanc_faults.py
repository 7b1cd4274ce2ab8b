"""A real Orthanc killed (SIGKILL) or frozen (SIGSTOP) while HTTP clients read a 100 MB study
from the dicom-dimse source, with C-GET and with C-MOVE (issue 13): the client sees a broken
transfer, never a clean end with fewer parts; requests during the outage get 502/504 within
35 s; once Orthanc is back, the next request gets the whole study without restarting our server.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from smart_imaging.dicom import multipart

from ..conftest import mock_patient
from ..orthanc import Orthanc
from ..sample_dicom import to_bytes
from .fake_archive import synthetic_study

COUNT, SIZE = 48, 1024  # 48 instances of 2 MB
MRN = "FAULTS-1"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
OUTAGE_BOUND = 35.0  # seconds: a correctness bound, not a timing assertion


@pytest.fixture(scope="module")
def archive() -> Iterator[tuple[Orthanc, str]]:
    """Our own Orthanc (the tests kill it), holding one 100 MB study: (orthanc, study UID)."""
    orthanc = Orthanc().start()
    try:
        study = synthetic_study("orthanc-faults", COUNT, MRN, size=SIZE)
        orthanc.upload_bytes(to_bytes(ds) for ds in study)
        yield orthanc, str(study[0].StudyInstanceUID)
    finally:
        if orthanc.process is not None and orthanc.process.poll() is None:
            orthanc.process.send_signal(signal.SIGCONT)
        orthanc.stop()


@pytest.fixture(params=["c-get", "c-move"])
def server(
    request: pytest.FixtureRequest, archive: tuple[Orthanc, str], imaging_server: Callable[..., str]
) -> str:
    orthanc, _ = archive
    images: dict[str, Any] = {
        "type": "dicom-dimse",
        "endpoint": f"dimse://127.0.0.1:{orthanc.dicom_port}",
        "ae": orthanc.peer_aet,
        "calledAe": orthanc.aet,
        "retrieval": request.param,
        "storePort": orthanc.peer_port,
        "timeout": 4,
        "firstResultTimeout": 30,
    }
    patient = {"type": "mock", "patient": mock_patient("pat-faults", MRN)}
    return imaging_server({"t": {"authorization": patient, "images": images}})


def endpoint(base: str) -> str:
    response = httpx.get(f"{base}/t/fhir/ImagingStudy", params={"patient": "pat-faults"}, timeout=60)
    assert response.status_code == 200, response.text
    return str(response.json()["entry"][0]["resource"]["contained"][0]["address"])


def read_while(url: str, fault: Callable[[], None]) -> tuple[bytes, str]:
    """GET ``url``; as soon as the answer started, cause ``fault``; read on. Asserts the
    transfer broke; returns what arrived and the boundary."""
    got = b""
    with httpx.stream("GET", url, headers={"Accept": MULTIPART_DICOM}, timeout=60) as response:
        assert response.status_code == 200
        boundary = multipart.boundary_of(response.headers["content-type"]) or ""
        chunks = response.iter_raw()
        got += next(chunks)
        fault()
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in chunks:
                got += chunk
    assert not got.endswith(multipart.closing(boundary))
    assert got.count(f"--{boundary}\r\n".encode()) < COUNT
    return got, boundary


def assert_whole_study(url: str) -> None:
    response = httpx.get(url, headers={"Accept": MULTIPART_DICOM}, timeout=120)
    assert response.status_code == 200
    assert len(list(multipart.decode(response.headers["content-type"], response.content))) == COUNT


def assert_outage_answers(base: str, url: str, status: int) -> None:
    """Search and retrieval while the archive is out: ``status`` with a JSON or FHIR error, in
    time: 502 when it refuses connections (dead), 504 when it accepts and stays silent (frozen)."""
    for target, params in ((f"{base}/t/fhir/ImagingStudy", {"patient": "pat-faults"}), (url, {})):
        started = time.monotonic()
        response = httpx.get(target, params=params, headers={"Accept": MULTIPART_DICOM}, timeout=60)
        assert response.status_code == status, response.text
        assert time.monotonic() - started < OUTAGE_BOUND
        assert "Traceback" not in response.text


def test_orthanc_killed_mid_retrieve_is_a_broken_transfer_then_recovers(
    archive: tuple[Orthanc, str], server: str
) -> None:
    orthanc, study = archive
    url = f"{endpoint(server)}/studies/{study}"
    assert orthanc.process is not None
    process = orthanc.process
    read_while(url, lambda: (process.kill(), process.wait()))
    assert_outage_answers(server, url, 502)
    orthanc.start()  # same ports, same storage
    assert_whole_study(url)


def test_orthanc_frozen_mid_retrieve_is_a_broken_transfer_then_recovers(
    archive: tuple[Orthanc, str], server: str
) -> None:
    orthanc, study = archive
    url = f"{endpoint(server)}/studies/{study}"
    assert orthanc.process is not None
    process = orthanc.process
    started = time.monotonic()
    try:
        read_while(url, lambda: process.send_signal(signal.SIGSTOP))
        assert time.monotonic() - started < OUTAGE_BOUND
        assert_outage_answers(server, url, 504)
    finally:
        process.send_signal(signal.SIGCONT)
    assert_whole_study(url)
