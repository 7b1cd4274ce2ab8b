"""Multipart retrievals from a dicom-web archive that fails: never a clean partial study.

A fake archive (tests/fake_archive.py) answers each retrieval exactly as a test asks: close-
delimited and cut, without closing delimiter, length-framed or chunked and cut, frozen, gzip.
The real server relays it; the client must see a broken transfer (or a clean 502 when nothing
was sent yet), and the server log one line, never a traceback.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from smart_imaging.dicom import multipart

from .conftest import mock_patient
from .fake_archive import Answer, FakeArchive
from .server_logs import ServerLogs, capture

UID = "1.2.826.0.1.3680043.8.498.10"
SERIES = "1.2.826.0.1.3680043.8.498.11"
MRN = "MRN-I"
BOUNDARY = "archive-boundary-1234"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
PARTS = [bytes([n]) * (300_000 + n) for n in range(1, 6)]


def study_multipart(
    parts: list[bytes] = PARTS, lengths: bool = True, close: bool = True, location: str = ""
) -> bytes:
    out = b""
    for i, payload in enumerate(parts):
        head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n"
        if lengths:
            head += f"Content-Length: {len(payload)}\r\n"
        if location:
            head += f"Content-Location: {location}/studies/{UID}/series/{SERIES}/instances/1.2.3.{i}\r\n"
        out += head.encode() + b"\r\n" + payload + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


@pytest.fixture
def server_logs() -> Iterator[ServerLogs]:
    with capture() as logs:
        yield logs


@pytest.fixture
def archive() -> Iterator[FakeArchive]:
    fake = FakeArchive().start().found_study(UID, MRN)
    yield fake
    fake.stop()


@pytest.fixture
def address(archive: FakeArchive, imaging_server: Callable[..., str]) -> str:
    base = imaging_server(
        {
            "t": {
                "authorization": {"type": "mock", "patient": mock_patient("pat-i", MRN)},
                "images": {"type": "dicom-web", "endpoint": archive.url, "timeout": 1.5},
            }
        }
    )
    bundle = httpx.get(f"{base}/t/fhir/ImagingStudy", params={"patient": "pat-i"}, timeout=30).json()
    return str(bundle["entry"][0]["resource"]["contained"][0]["address"])


def retrieve(address: str) -> tuple[httpx.Response, bytes, Exception | None]:
    """Read the whole study; the transport error (if any) instead of raising it."""
    received = b""
    with httpx.stream("GET", f"{address}/studies/{UID}", timeout=30) as response:
        try:
            for chunk in response.iter_raw():
                received += chunk
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            return response, received, exc
    return response, received, None


def assert_quiet(logs: ServerLogs, binding: str) -> None:
    assert logs.tracebacks() == []
    assert "unexpected error" not in logs.text and "ASGI callable" not in logs.text
    assert binding not in logs.text


def assert_one_abort_line(logs: ServerLogs, why: str) -> None:
    warnings = logs.lines(level=logging.WARNING)
    assert len(warnings) == 1, warnings
    assert "WADO-RS stream aborted" in warnings[0] and why in warnings[0], warnings[0]


CUTS: dict[str, dict[str, Any]] = {
    "close-delimited, cut in a part": {"framing": "close", "cut": 700_000},
    "close-delimited, cut in the closing delimiter": {"framing": "close", "cut": -10},
    "close-delimited, no length in the parts, cut": {"framing": "close", "cut": 700_000, "lengths": False},
    "length-framed, cut": {"framing": "length", "cut": 1_000_000},
    "chunked, cut": {"framing": "chunked", "cut": 1_000_000},
}


@pytest.mark.parametrize("case", sorted(CUTS))
def test_a_cut_study_is_a_broken_transfer(
    archive: FakeArchive, address: str, server_logs: ServerLogs, case: str
) -> None:
    spec = dict(CUTS[case])
    body = study_multipart(lengths=spec.pop("lengths", True))
    cut = spec.pop("cut")
    archive.route(f"/studies/{UID}", Answer(body=body, content_type=MULTIPART, cut=cut % len(body), **spec))
    response, received, error = retrieve(address)
    assert response.status_code == 200
    assert error is not None, "a cut study must never end cleanly"
    assert not received.rstrip().endswith(f"--{BOUNDARY}--".encode())
    assert_one_abort_line(server_logs, "image archive")
    assert_quiet(server_logs, address.rsplit("/", 1)[1])


def test_a_multipart_without_closing_delimiter_is_a_broken_transfer(
    archive: FakeArchive, address: str, server_logs: ServerLogs
) -> None:
    """Every part complete, then the archive closes: still not the whole study."""
    archive.route(f"/studies/{UID}", Answer(body=study_multipart(close=False), content_type=MULTIPART))
    response, received, error = retrieve(address)
    assert error is not None and response.status_code == 200
    assert len(list(multipart.decode(MULTIPART, received))) == len(PARTS)  # all parts came, no end
    assert_one_abort_line(server_logs, "without a closing delimiter")
    assert_quiet(server_logs, address.rsplit("/", 1)[1])


def test_a_part_shorter_than_its_content_length_is_a_broken_transfer(
    archive: FakeArchive, address: str, server_logs: ServerLogs
) -> None:
    body = study_multipart().replace(b"Content-Length: 300003", b"Content-Length: 300009")
    archive.route(f"/studies/{UID}", Answer(body=body, content_type=MULTIPART))
    _, _, error = retrieve(address)
    assert error is not None
    assert_one_abort_line(server_logs, "Content-Length")


def test_a_frozen_archive_mid_stream_is_a_broken_transfer(
    archive: FakeArchive, address: str, server_logs: ServerLogs
) -> None:
    body = study_multipart()
    frozen = [body[:500_000], *[b"" for _ in range(5)], body[500_000:]]  # 5 x 1 s without a byte
    archive.route(f"/studies/{UID}", Answer(body=frozen, content_type=MULTIPART, pause=1.0))
    _, received, error = retrieve(address)
    assert error is not None and len(received) < len(body)
    assert_one_abort_line(server_logs, "timed out mid-stream")
    assert_quiet(server_logs, address.rsplit("/", 1)[1])


NOTHING_SENT = {
    "an empty body": (b"", MULTIPART, "no multipart delimiter"),
    "garbage": (b"<html>proxy error</html>" * 10, MULTIPART, "no multipart delimiter"),
    "no boundary": (study_multipart(), 'multipart/related; type="application/dicom"', "boundary"),
    "a non-ASCII boundary": (study_multipart(), "multipart/related; boundary=b\u00e9", "Content-Type"),
}


@pytest.mark.parametrize("case", sorted(NOTHING_SENT))
def test_a_retrieval_that_fails_before_its_first_byte_is_a_clean_502(
    archive: FakeArchive, address: str, server_logs: ServerLogs, case: str
) -> None:
    body, content_type, why = NOTHING_SENT[case]
    archive.route(f"/studies/{UID}", Answer(body=body, content_type=content_type))
    response = httpx.get(f"{address}/studies/{UID}", timeout=30)
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway" and why in response.json()["message"]
    assert_quiet(server_logs, address.rsplit("/", 1)[1])


def test_a_complete_study_passes_byte_for_byte_with_archive_addresses_rewritten(
    archive: FakeArchive, address: str, server_logs: ServerLogs
) -> None:
    body = study_multipart(location=archive.url)
    archive.route(
        f"/studies/{UID}",
        Answer(
            body=body,
            content_type=MULTIPART,
            headers={"Content-Location": f"{archive.url}/studies/{UID}", "Warning": "299 archive \u00e9"},
        ),
    )
    response, received, error = retrieve(address)
    assert error is None and response.status_code == 200
    assert received.endswith(f"--{BOUNDARY}--\r\n".encode())
    assert response.headers["content-location"] == f"{address}/studies/{UID}"
    assert "warning" not in response.headers  # not a valid header value for us to repeat
    assert archive.url.split("/dicom-web")[0].encode() not in received
    decoded = list(multipart.decode(MULTIPART, received))
    assert [payload for _, payload in decoded] == PARTS
    assert [h["content-location"] for h, _ in decoded] == [
        f"{address}/studies/{UID}/series/{SERIES}/instances/1.2.3.{i}" for i in range(len(PARTS))
    ]
    assert server_logs.lines(level=logging.WARNING) == []


def test_an_archive_that_compresses_anyway_is_decoded_and_checked(archive: FakeArchive, address: str) -> None:
    body = study_multipart()
    compressed = gzip.compress(body)
    archive.route(
        f"/studies/{UID}",
        Answer(body=compressed, content_type=MULTIPART, headers={"Content-Encoding": "gzip"}),
    )
    _, received, error = retrieve(address)
    assert error is None and received == body
    archive.route(
        f"/studies/{UID}",
        Answer(
            body=compressed[: len(compressed) // 2],
            content_type=MULTIPART,
            headers={"Content-Encoding": "gzip"},
        ),
    )
    assert retrieve(address)[2] is not None


def test_a_client_going_away_mid_stream_is_one_info_line(
    archive: FakeArchive, address: str, server_logs: ServerLogs
) -> None:
    body = study_multipart(PARTS * 4)
    archive.route(f"/studies/{UID}", Answer(body=body, content_type=MULTIPART, pause=0.01))
    with httpx.stream("GET", f"{address}/studies/{UID}", timeout=30) as response:
        for chunk in response.iter_raw():
            if chunk:
                break
    deadline = time.monotonic() + 10
    while not server_logs.lines("smart_imaging.wado") and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = server_logs.lines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("INFO smart_imaging.wado WADO-RS client went away after")
    assert "/wado/{binding}/studies/" in lines[0]
    assert_quiet(server_logs, address.rsplit("/", 1)[1])
