"""One very large instance (a 16-bit multi-frame of about 250 MB) through the dicom-dimse source
with C-GET from a real Orthanc: served byte-identical, received through pynetdicom's chunked
receive (spooled to a temporary file, never held whole), and no temporary file left behind,
whether the transfer completes or is cancelled while the instance is arriving."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pynetdicom import _config

from smart_imaging.config.tenant import DimseImages
from smart_imaging.dicom import multipart
from smart_imaging.errors import SmartImagingError
from smart_imaging.sources.base import WadoRequest
from smart_imaging.sources.dimse import DimseSource
from smart_imaging.sources.dimse.part10 import dataset_offset

from ..orthanc import Orthanc
from ..sample_dicom import deterministic_uid, large_multiframe

FRAMES, ROWS, COLUMNS = 500, 512, 512  # 262 MB of pixel data


def large_instance() -> bytes:
    return large_multiframe("large", "LARGE-1", "Large^Instance", FRAMES, ROWS)


@pytest.fixture(scope="module")
def archive() -> Iterator[tuple[Orthanc, str, str]]:
    """Our own Orthanc holding only the large instance: (orthanc, study UID, sha256 of the
    data set as uploaded)."""
    orthanc = Orthanc().start()
    try:
        blob = large_instance()
        digest = hashlib.sha256(memoryview(blob)[dataset_offset(blob) :]).hexdigest()
        orthanc.upload_bytes([blob])
        del blob
        yield orthanc, deterministic_uid("large", "study"), digest
    finally:
        orthanc.stop()


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where pynetdicom's temporary files go during the test (its NamedTemporaryFile)."""
    directory = tmp_path / "spool"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
async def source(archive: tuple[Orthanc, str, str], tmp_path: Path) -> AsyncIterator[DimseSource]:
    orthanc = archive[0]
    dimse = DimseSource(
        DimseImages(
            type="dicom-dimse",
            endpoint=f"dimse://127.0.0.1:{orthanc.dicom_port}",
            ae=orthanc.peer_aet,
            calledAe=orthanc.aet,
            retrieval="c-get",
            cacheDir=str(tmp_path / "cache"),
            firstResultTimeout=120,
            timeout=60,
        )
    )
    yield dimse
    await dimse.aclose()


async def test_a_large_instance_is_served_byte_identical(
    archive: tuple[Orthanc, str, str], source: DimseSource, spool_dir: Path
) -> None:
    _, study, digest = archive
    assert _config.STORE_RECV_CHUNKED_DATASET  # the source switched pynetdicom to spooling
    response = await source.retrieve(WadoRequest(study))
    body = b"".join([chunk async for chunk in response.body])
    (part,) = [payload for _, payload in multipart.decode(response.media_type, body)]
    del body
    assert hashlib.sha256(memoryview(part)[dataset_offset(part) :]).hexdigest() == digest
    assert len(part) > FRAMES * ROWS * COLUMNS * 2
    assert not list(spool_dir.iterdir())


async def test_a_transfer_cancelled_mid_instance_leaves_no_temporary_file(
    archive: tuple[Orthanc, str, str], source: DimseSource, spool_dir: Path
) -> None:
    _, study, _ = archive
    waiting = asyncio.create_task(source.retrieve(WadoRequest(study)))
    for _ in range(600):  # a bound, not a timing assertion
        if any(p.stat().st_size > 1 << 20 for p in spool_dir.iterdir()):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the instance never started arriving")
    waiting.cancel()  # the only reader goes: the transfer is cancelled and aborted
    with pytest.raises((asyncio.CancelledError, SmartImagingError)):
        await waiting
    await source.aclose()  # waits for the worker thread
    assert not list(spool_dir.iterdir())
