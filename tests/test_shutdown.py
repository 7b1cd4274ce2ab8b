"""Graceful shutdown of ``smart-imaging serve`` (real process, real Orthanc, a slow reader):
on SIGTERM readiness goes 503, new requests get 503 + ``Connection: close``, the stream in
flight ends with its closing delimiter, and the process exits 0 within the bound."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .conftest import dicomweb_tenant, mock_patient
from .orthanc import Orthanc
from .sample_dicom import deterministic_uid, large_multiframe
from .serve_process import AUTH, ServeProcess, endpoint

pytestmark = pytest.mark.integration

MRN = "SHUTDOWN-1"
ACCEPT = 'multipart/related; type="application/dicom"'
STUDY_BYTES = 40 * 512 * 512 * 2  # 20 MiB of pixels: seconds for a slow reader


@pytest.fixture(scope="module")
def archive() -> Iterator[Orthanc]:
    """An Orthanc of its own: one large study that no other test lists."""
    server = Orthanc().start()
    try:
        server.upload_bytes([large_multiframe("shutdown", MRN, "Shutdown^Large", frames=40, size=512)])
        yield server
    finally:
        server.stop()


@dataclass(eq=False)  # threads must stay hashable
class SlowReader(threading.Thread):
    """Streams a WADO-RS study ``delay`` s per 64 KiB (forever when ``stall``), keeping its tail."""

    url: str
    delay: float = 0.015
    stall: bool = False
    started: threading.Event = field(default_factory=threading.Event)
    received: int = 0
    tail: bytes = b""
    boundary: str = ""
    error: str | None = None

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        headers = {"Accept": ACCEPT, **AUTH}
        try:
            with httpx.stream("GET", self.url, headers=headers, timeout=60) as response:
                assert response.status_code == 200
                self.boundary = (
                    response.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
                )
                for chunk in response.iter_raw(65536):
                    self.received += len(chunk)
                    self.tail = (self.tail + chunk)[-512:]
                    self.started.set()
                    time.sleep(3600 if self.stall else self.delay)
        except httpx.HTTPError as exc:
            self.error = type(exc).__name__
        finally:
            self.started.set()

    @property
    def complete(self) -> bool:
        return self.tail.rstrip(b"\r\n").endswith(f"--{self.boundary}--".encode())


def start(tmp_path: Path, archive: Orthanc, *args: str) -> tuple[ServeProcess, str]:
    tenant = {
        "authorization": {"type": "mock", "patient": mock_patient("pat-s", MRN)},
        "images": dicomweb_tenant(archive),
    }
    server = ServeProcess(tmp_path, {"clinic": tenant}, *args, env={"SMART_IMAGING_KEY": "shutdown-test-key"})
    server.start()
    address, study = endpoint(server.url, "clinic", "pat-s")
    assert study == deterministic_uid("shutdown", "study")
    return server, f"{address}/studies/{study}"


def assert_draining(server: ServeProcess, study_url: str) -> None:
    """What a client sees of a draining server: probes and a refused new request."""
    ready = httpx.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json() == {"status": "draining"}
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 503
    assert httpx.get(f"{server.url}/livez", timeout=10).status_code == 200  # alive, not ready
    refused = httpx.get(f"{study_url}/metadata", headers=AUTH, timeout=10)
    assert refused.status_code == 503
    assert refused.headers["connection"] == "close" and refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "unavailable"


def wait_draining(server: ServeProcess) -> None:
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.url}/readyz", timeout=10).status_code != 503:
        assert time.monotonic() < deadline, "readiness did not go false after SIGTERM"
        time.sleep(0.05)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_the_stream_in_flight_finish(tmp_path: Path, archive: Orthanc, workers: str) -> None:
    server, study_url = start(tmp_path, archive, "--workers", workers, "--shutdown-timeout", "60")
    try:
        reader = SlowReader(study_url)
        reader.start()
        assert reader.started.wait(30) and reader.error is None
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        wait_draining(server)
        assert_draining(server, study_url)
        assert reader.is_alive(), "the stream should still be in flight while draining"
        reader.join(60)
        assert reader.error is None and reader.complete, (reader.error, reader.tail[-80:])
        assert reader.received > STUDY_BYTES
        assert server.process.wait(timeout=30) == 0
        assert time.monotonic() - sent < 60
    finally:
        server.stop()
    assert "draining: 1 requests in flight" in server.log() and "Traceback" not in server.log()


def test_the_shutdown_timeout_bounds_a_stream_that_does_not_end(tmp_path: Path, archive: Orthanc) -> None:
    server, study_url = start(tmp_path, archive, "--workers", "1", "--shutdown-timeout", "2")
    try:
        reader = SlowReader(study_url, stall=True)  # reads one chunk, then nothing
        reader.start()
        assert reader.started.wait(30)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert server.process.wait(timeout=20) == 0
        assert time.monotonic() - sent < 2 + 10  # the bound, plus uvicorn's short grace
    finally:
        server.stop()
    assert not reader.complete  # cut: never a clean partial study
    assert "shutdown timeout: 1 requests still in flight are cut" in server.log()
