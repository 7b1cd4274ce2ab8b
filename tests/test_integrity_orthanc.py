"""A real Orthanc of our own, killed (SIGKILL) or frozen (SIGSTOP) while clients read a 100 MB
study from the dicom-web source through the real server (issue 13).

Orthanc sends study multiparts with ``Connection: close`` and no length: without the relay's
check, its death looks like a normal end. Every time, the client must see a broken transfer
(httpx raises, the body lacks its closing delimiter; dicomweb-client raises instead of returning
fewer instances); requests during the outage get 502/504 within 35 s; once Orthanc is back
(restarted on the same storage and ports, or continued), the next requests succeed without
restarting our server.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from smart_imaging.dicom import multipart

from .conftest import dicomweb_tenant, mock_patient
from .orthanc import Orthanc
from .sample_dicom import deterministic_uid, to_bytes

COUNT, SIZE = 50, 1024  # 50 instances of 2 MB: a 105 MB study
MRN = "INTEGRITY-1"
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
OUTAGE_BOUND = 35.0  # seconds: a correctness bound, not a timing assertion
FAULT_AFTER = 5_000_000  # bytes the client has read when the fault strikes


def big_instance(study: str, series: str, number: int) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = deterministic_uid("integrity", "instance", str(number))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientID, ds.PatientName, ds.Modality = MRN, "Integrity^Test", "CT"
    ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20240101", 1, number
    ds.Rows = ds.Columns = SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.random.default_rng(number).integers(0, 4096, (SIZE, SIZE), dtype=np.uint16).tobytes()
    return to_bytes(ds)


@pytest.fixture(scope="module")
def archive() -> Iterator[tuple[Orthanc, str]]:
    """Our own Orthanc (these tests kill it) with one 105 MB study: (orthanc, study UID)."""
    orthanc = Orthanc().start()
    try:
        study, series = deterministic_uid("integrity", "study"), deterministic_uid("integrity", "series")
        orthanc.upload_bytes(big_instance(study, series, n) for n in range(1, COUNT + 1))
        yield orthanc, study
    finally:
        if orthanc.process is not None and orthanc.process.poll() is None:
            orthanc.process.send_signal(signal.SIGCONT)
        orthanc.stop()


@pytest.fixture
def orthanc(archive: tuple[Orthanc, str]) -> Iterator[Orthanc]:
    """The module's Orthanc, running again after each test, whatever the test did to it."""
    server = archive[0]
    yield server
    assert server.process is not None
    server.process.send_signal(signal.SIGCONT)
    if server.process.poll() is not None:
        server.start()


@pytest.fixture
def base(orthanc: Orthanc, imaging_server: Callable[..., str]) -> str:
    return imaging_server(
        {
            "t": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-int", MRN)},
                "images": dicomweb_tenant(orthanc, timeout=3),
            }
        }
    )


def study_url(base: str, study: str) -> str:
    response = httpx.get(f"{base}/t/fhir/ImagingStudy", params={"patient": "pat-int"}, timeout=60)
    assert response.status_code == 200, response.text
    address = response.json()["entry"][0]["resource"]["contained"][0]["address"]
    return f"{address}/studies/{study}"


class Fault:
    """SIGKILL (then a restart on the same storage and ports) or SIGSTOP (then SIGCONT)."""

    def __init__(self, orthanc: Orthanc, kind: str) -> None:
        assert orthanc.process is not None
        self.orthanc, self.kind, self.process = orthanc, kind, orthanc.process

    def strike(self) -> None:
        if self.kind == "kill":
            self.process.kill()
            self.process.wait()
        else:
            self.process.send_signal(signal.SIGSTOP)

    def heal(self) -> None:
        if self.kind == "kill":
            self.orthanc.start()
        else:
            self.process.send_signal(signal.SIGCONT)


def assert_outage_answers(base: str, url: str) -> None:
    """Search and retrieval while the archive is out: 502/504 with an error body, in time."""
    for target, params in ((f"{base}/t/fhir/ImagingStudy", {"patient": "pat-int"}), (url, {})):
        started = time.monotonic()
        response = httpx.get(target, params=params, headers={"Accept": ACCEPT}, timeout=60)
        assert response.status_code in (502, 504), response.text
        assert time.monotonic() - started < OUTAGE_BOUND
        assert "Traceback" not in response.text and "127.0.0.1" not in response.text


def assert_whole_study(url: str) -> None:
    response = httpx.get(url, headers={"Accept": ACCEPT}, timeout=120)
    assert response.status_code == 200
    parts = list(multipart.decode(response.headers["content-type"], response.content))
    assert len(parts) == COUNT
    assert response.content.endswith(
        multipart.closing(multipart.boundary_of(response.headers["content-type"]) or "")
    )


@pytest.mark.parametrize("kind", ["kill", "stop"])
def test_httpx_sees_a_broken_transfer_then_the_whole_study(
    archive: tuple[Orthanc, str], orthanc: Orthanc, base: str, kind: str
) -> None:
    url = study_url(base, archive[1])
    fault = Fault(orthanc, kind)
    got = b""
    with httpx.stream("GET", url, headers={"Accept": ACCEPT}, timeout=60) as response:
        assert response.status_code == 200
        boundary = multipart.boundary_of(response.headers["content-type"]) or ""
        chunks = response.iter_raw()
        while len(got) < FAULT_AFTER:
            got += next(chunks)
        fault.strike()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            for chunk in chunks:
                got += chunk
    assert not got.endswith(multipart.closing(boundary))
    assert got.count(f"--{boundary}\r\n".encode()) < COUNT
    assert_outage_answers(base, url)
    fault.heal()
    assert_whole_study(url)
    assert (
        httpx.get(f"{base}/t/fhir/ImagingStudy", params={"patient": "pat-int"}, timeout=60).status_code == 200
    )


def striking_session(fault: Fault) -> requests.Session:
    """A requests session that strikes ``fault`` once the client has read FAULT_AFTER bytes of
    a multipart answer (the hook wraps the body stream requests reads from)."""
    session = requests.Session()
    read = [0]

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if not response.headers.get("content-type", "").startswith("multipart/"):
            return
        original = response.raw.stream

        def stream(*a: Any, **k: Any) -> Iterator[bytes]:
            for piece in original(*a, **k):
                read[0] += len(piece)
                if read[0] >= FAULT_AFTER and read[0] - len(piece) < FAULT_AFTER:
                    fault.strike()
                yield piece

        response.raw.stream = stream

    session.hooks["response"].append(hook)
    return session


@pytest.mark.parametrize("kind", ["kill", "stop"])
def test_dicomweb_client_raises_instead_of_returning_fewer_instances(
    archive: tuple[Orthanc, str], orthanc: Orthanc, base: str, kind: str
) -> None:
    study = archive[1]
    url = study_url(base, study)
    address = url.rsplit("/studies/", 1)[0]
    fault = Fault(orthanc, kind)
    client = DICOMwebClient(url=address, session=striking_session(fault))
    client.set_http_retry_params(retry=False)  # else it retries the broken transfer into the outage
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        client.retrieve_study(study)
    assert_outage_answers(base, url)
    fault.heal()
    instances = DICOMwebClient(url=address).retrieve_study(study)
    assert len(instances) == COUNT and all(isinstance(ds, pydicom.Dataset) for ds in instances)
    assert {len(ds.PixelData) for ds in instances} == {SIZE * SIZE * 2}
