"""A retrieval that cannot deliver every instance never ends cleanly (issue 13): C-GET and C-MOVE
against a fake archive that aborts, drops the connection, reports failed sub-operations, goes
silent, or ends with Success having sent fewer instances than it (or C-FIND) announced.

Called on the source directly; ``test_integrity_http`` drives the same faults through the real
server. The stream must raise after the parts already sent, and never send the closing
delimiter; a failure known before the first part is an error status instead."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pydicom
import pytest

from smart_imaging.config.tenant import DimseImages
from smart_imaging.dicom import multipart
from smart_imaging.errors import UpstreamError, UpstreamTimeout
from smart_imaging.sources.base import StudyQuery, WadoRequest, WadoResponse
from smart_imaging.sources.dimse import DimseSource

from ..orthanc import free_port
from .fake_archive import AET, Ending, FakeArchive, synthetic_study

COUNT = 5
OUR_AE = "SMARTIMG"


@pytest.fixture(params=["c-get", "c-move"])
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_port() -> int:
    return free_port()


@pytest.fixture
def archive(store_port: int) -> Iterator[FakeArchive]:
    fake = FakeArchive(
        synthetic_study("integrity", COUNT), release_first=1, destinations={OUR_AE: store_port}
    )
    yield fake
    fake.close()


def source_for(archive: FakeArchive, method: str, store_port: int, **options: Any) -> DimseSource:
    return DimseSource(
        DimseImages(
            type="dicom-dimse",
            endpoint=archive.endpoint,
            ae=OUR_AE,
            calledAe=AET,
            retrieval=method,  # type: ignore[arg-type]
            storePort=store_port,
            firstResultTimeout=10,
            **{"timeout": 10, **options},
        )
    )


@pytest.fixture
async def source(archive: FakeArchive, method: str, store_port: int) -> AsyncIterator[DimseSource]:
    dimse = source_for(archive, method, store_port)
    yield dimse
    await dimse.aclose()


def study_of(archive: FakeArchive) -> str:
    return str(archive.instances[0].StudyInstanceUID)


async def read_until_failure(response: WadoResponse) -> tuple[bytes, BaseException | None]:
    """Everything the body yielded, and what it raised (None: it ended cleanly)."""
    got = b""
    try:
        async for chunk in response.body:
            got += chunk
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return got, exc
    return got, None


def complete_parts(media_type: str, body: bytes) -> list[bytes]:
    """Payloads of the parts sent whole: followed by another delimiter, or (the last one) by
    its CRLF tail. The DIMSE source raises between parts, never inside a file."""
    boundary = multipart.boundary_of(media_type)
    assert boundary
    pieces = body.split(b"--" + boundary.encode())[1:]
    if pieces and not pieces[-1].endswith(b"\r\n"):
        pieces.pop()
    return [p.split(b"\r\n\r\n", 1)[1][:-2] for p in pieces if not p.startswith(b"--")]


def closed(media_type: str, body: bytes) -> bool:
    return body.endswith(multipart.closing(multipart.boundary_of(media_type) or ""))


async def start_then_fault(source: DimseSource, archive: FakeArchive) -> tuple[list[bytes], BaseException]:
    """Start the study, read its first part, then let the archive go on to its fault."""
    response = await source.retrieve(WadoRequest(study_of(archive)))
    archive.gate.set()
    body, error = await read_until_failure(response)
    await response.aclose()
    assert error is not None, "a study that was not delivered whole ended cleanly"
    assert not closed(response.media_type, body)
    parts = complete_parts(response.media_type, body)
    for part in parts:  # what was sent is whole, and is what the archive sent
        ds = pydicom.dcmread(io.BytesIO(part))
        assert ds.SOPInstanceUID in {i.SOPInstanceUID for i in archive.instances}
    return parts, error


@pytest.mark.parametrize("ending", ["success", "failure", "warning", "abort", "drop"])
async def test_a_retrieve_ending_after_2_of_5_instances_breaks_the_stream(
    archive: FakeArchive, source: DimseSource, ending: Ending
) -> None:
    archive.stop_after, archive.ending = 2, ending
    parts, error = await start_then_fault(source, archive)
    assert len(parts) <= 2 < COUNT
    assert isinstance(error, UpstreamError), error
    assert len(source.cache) == 0  # nothing partial kept for the next request


async def test_success_with_fewer_instances_than_c_find_lists_breaks_the_stream(
    archive: FakeArchive, source: DimseSource
) -> None:
    archive.listed = COUNT + 2  # the archive sends all it sends, and says Success: C-FIND knows better
    parts, error = await start_then_fault(source, archive)
    assert len(parts) == COUNT
    assert isinstance(error, UpstreamError) and f"lists {COUNT + 2} instances" in str(error)


async def test_success_with_fewer_instances_than_the_retrieve_announced_breaks_the_stream(
    archive: FakeArchive, source: DimseSource
) -> None:
    archive.announce = archive.listed = COUNT + 1
    parts, error = await start_then_fault(source, archive)
    assert len(parts) == COUNT
    assert isinstance(error, UpstreamError) and f"of {COUNT + 1} announced" in str(error)


async def test_a_series_retrieve_is_checked_against_the_series_count(
    archive: FakeArchive, source: DimseSource
) -> None:
    archive.listed = COUNT + 1
    first = archive.instances[0]
    response = await source.retrieve(WadoRequest(first.StudyInstanceUID, first.SeriesInstanceUID))
    archive.gate.set()
    body, error = await read_until_failure(response)
    assert isinstance(error, UpstreamError) and not closed(response.media_type, body)


@pytest.mark.parametrize("ending", ["failure", "success", "abort", "drop"])
async def test_a_retrieve_that_fails_before_any_instance_is_an_error_status(
    archive: FakeArchive, source: DimseSource, ending: Ending
) -> None:
    archive.stop_after, archive.ending = 0, ending
    with pytest.raises(UpstreamError) as caught:
        await source.retrieve(WadoRequest(study_of(archive)))
    assert caught.value.status == 502
    assert len(source.cache) == 0


async def test_metadata_of_a_cut_study_breaks_the_stream(archive: FakeArchive, source: DimseSource) -> None:
    archive.stop_after, archive.ending = 2, "abort"
    response = await source.retrieve(WadoRequest(study_of(archive), resource="metadata"))
    archive.gate.set()
    body, error = await read_until_failure(response)
    assert isinstance(error, UpstreamError)
    assert not body.endswith(b"]")  # never a well-formed JSON array of fewer instances


async def test_an_archive_that_goes_silent_is_a_timeout(
    archive: FakeArchive, method: str, store_port: int
) -> None:
    source = source_for(archive, method, store_port, timeout=1.5)
    try:
        response = await source.retrieve(WadoRequest(study_of(archive)))
        body, error = await read_until_failure(response)  # the gate stays closed
        assert isinstance(error, UpstreamTimeout) and error.status == 504, error
        assert len(complete_parts(response.media_type, body)) == 1
        assert not closed(response.media_type, body)
    finally:
        await source.aclose()


async def test_a_slow_reader_of_a_failed_transfer_still_gets_every_part_that_arrived(
    archive: FakeArchive, source: DimseSource
) -> None:
    """The failed transfer's files stay until its last reader is done: the parts that arrived
    are sent whole, then the stream raises the archive's error (not a missing file)."""
    archive.stop_after, archive.ending = 3, "abort"
    response = await source.retrieve(WadoRequest(study_of(archive)))
    archive.gate.set()
    for _ in range(200):  # a bound, not a timing assertion
        if not source._tasks:
            break
        await asyncio.sleep(0.05)
    assert not source._tasks and len(source.cache) == 0  # the transfer is over, and failed
    body, error = await read_until_failure(response)
    assert isinstance(error, UpstreamError) and "after 3 of 5" in str(error)
    parts = complete_parts(response.media_type, body)
    assert [pydicom.dcmread(io.BytesIO(p)).InstanceNumber for p in parts] == [1, 2, 3]
    await response.aclose()
    directories = list(source.cache.root.iterdir())
    for _ in range(200):
        if not directories or not any(d.exists() for d in directories):
            break
        await asyncio.sleep(0.05)
    assert not any(d.exists() for d in directories)  # removed once the reader let go


async def test_after_a_cut_the_next_request_gets_the_whole_study(
    archive: FakeArchive, source: DimseSource
) -> None:
    archive.stop_after, archive.ending = 2, "drop"
    await start_then_fault(source, archive)
    archive.stop_after = None
    response = await source.retrieve(WadoRequest(study_of(archive)))
    body, error = await read_until_failure(response)
    assert error is None and closed(response.media_type, body)
    assert len(list(multipart.decode(response.media_type, body))) == COUNT


async def test_a_strict_archive_refusing_patient_id_below_study_level_is_still_searched(
    archive: FakeArchive, source: DimseSource
) -> None:
    archive.strict = True
    (study,) = await source.search(StudyQuery("FAKE-1"))
    assert [len(s.instances or []) for s in study.series] == [COUNT]


async def test_a_complete_study_still_ends_cleanly(archive: FakeArchive, source: DimseSource) -> None:
    archive.gate.set()
    response = await source.retrieve(WadoRequest(study_of(archive)))
    body, error = await read_until_failure(response)
    assert error is None
    assert len(list(multipart.decode(response.media_type, body))) == COUNT
