"""Transfers in flight, against an archive whose pace the test holds: streaming, sharing,
503 while nothing arrived, cancellation leaving no threads behind."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Iterator

import pydicom
import pytest
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider

from smart_imaging.config.tenant import DimseImages
from smart_imaging.dicom import multipart
from smart_imaging.errors import SmartImagingError, Unavailable
from smart_imaging.sources.base import WadoRequest, WadoResponse
from smart_imaging.sources.dimse import DimseSource
from smart_imaging.sources.dimse.part10 import dataset_offset

from .fake_archive import AET, FakeArchive, synthetic_study

COUNT = 5


@pytest.fixture
def archive() -> Iterator[FakeArchive]:
    fake = FakeArchive(synthetic_study("transfers", COUNT), release_first=1)
    yield fake
    fake.close()


@pytest.fixture
async def source(archive: FakeArchive) -> AsyncIterator[DimseSource]:
    dimse = DimseSource(
        DimseImages(
            type="dicom-dimse",
            endpoint=archive.endpoint,
            ae="SMARTIMG",
            calledAe=AET,
            firstResultTimeout=10,
            timeout=10,
        )
    )
    yield dimse
    await dimse.aclose()


def study_of(archive: FakeArchive) -> str:
    return str(archive.instances[0].StudyInstanceUID)


async def read_first_part(response: WadoResponse) -> bytes:
    """Chunks up to the end of the first part (its head, the file, CRLF)."""
    got = b""
    async for chunk in response.body:
        got += chunk
        if chunk == multipart.part_tail():
            return got
    raise AssertionError("the body ended before its first part")


async def read_all(response: WadoResponse) -> list[bytes]:
    body = b"".join([chunk async for chunk in response.body])
    return [payload for _, payload in multipart.decode(response.media_type, body)]


def dimse_threads() -> list[threading.Thread]:
    return [
        t for t in threading.enumerate() if isinstance(t, (Association, DULServiceProvider)) and t.is_alive()
    ]


async def wait_until(condition: object, what: str) -> None:
    for _ in range(200):  # a bound, not a timing assertion
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still waiting for: {what}")


async def test_the_first_part_leaves_before_the_last_instance_and_requests_share_one_transfer(
    archive: FakeArchive, source: DimseSource
) -> None:
    first = await source.retrieve(WadoRequest(study_of(archive)))
    second = await source.retrieve(WadoRequest(study_of(archive)))
    head = await read_first_part(first)
    assert archive.sent == 1 < COUNT  # the archive holds the rest back until the gate opens
    received = head.split(b"\r\n\r\n", 1)[1][:-2]
    expected = pydicom.dcmread(io.BytesIO(received))
    assert expected.SOPInstanceUID == archive.instances[0].SOPInstanceUID
    archive.gate.set()
    rest = await read_all(first)
    assert len(rest) == COUNT - 1
    everything = await read_all(second)
    assert len(everything) == COUNT
    assert archive.get_requests == 1
    assert {pydicom.dcmread(io.BytesIO(p)).SOPInstanceUID for p in everything} == {
        ds.SOPInstanceUID for ds in archive.instances
    }
    again = await read_all(await source.retrieve(WadoRequest(study_of(archive))))
    assert [p[dataset_offset(p) :] for p in again] == [p[dataset_offset(p) :] for p in everything]
    assert archive.get_requests == 1  # served from the cache


async def test_nothing_within_the_first_result_timeout_is_503_and_the_retry_gets_the_data(
    archive: FakeArchive,
) -> None:
    archive.release_first = 0
    source = DimseSource(
        DimseImages(
            type="dicom-dimse",
            endpoint=archive.endpoint,
            ae="SMARTIMG",
            calledAe=AET,
            firstResultTimeout=0.3,
            timeout=10,
        )
    )
    try:
        with pytest.raises(Unavailable) as caught:
            await source.retrieve(WadoRequest(study_of(archive)))
        assert caught.value.status == 503 and int(caught.value.headers["Retry-After"]) >= 1
        assert "still being fetched" in caught.value.message
        archive.gate.set()  # the transfer went on in the background
        parts = await read_all(await source.retrieve(WadoRequest(study_of(archive))))
        assert len(parts) == COUNT and archive.get_requests == 1
    finally:
        await source.aclose()


async def test_a_cancelled_download_stops_the_transfer_and_leaves_no_threads(
    archive: FakeArchive, source: DimseSource
) -> None:
    response = await source.retrieve(WadoRequest(study_of(archive)))
    await read_first_part(response)
    assert dimse_threads()  # the association is alive while the archive holds back
    await response.body.aclose()  # type: ignore[attr-defined]
    await response.aclose()
    await wait_until(lambda: not source._tasks, "the transfer task to end")
    await wait_until(lambda: not dimse_threads(), "association threads to end")
    assert archive.sent < COUNT
    assert len(source.cache) == 0  # a partial study is not kept as if complete
    archive.gate.set()
    parts = await read_all(await source.retrieve(WadoRequest(study_of(archive))))
    assert len(parts) == COUNT and archive.get_requests == 2


async def test_aclose_aborts_running_transfers_and_stops_worker_threads(archive: FakeArchive) -> None:
    source = DimseSource(
        DimseImages(
            type="dicom-dimse",
            endpoint=archive.endpoint,
            ae="SMARTIMG",
            calledAe=AET,
            firstResultTimeout=10,
            timeout=10,
        )
    )
    response = await source.retrieve(WadoRequest(study_of(archive)))
    await read_first_part(response)
    root = source.cache.root
    await source.aclose()
    assert not [t for t in threading.enumerate() if t.name.startswith("dimse-")]
    await wait_until(lambda: not dimse_threads(), "association threads to end")
    assert not root.exists()
    with pytest.raises(SmartImagingError):
        await read_all(response)  # the stream fails: never a clean end for a partial study
