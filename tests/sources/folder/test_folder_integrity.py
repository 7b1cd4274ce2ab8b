"""A folder whose files change under the source (issue 13): files truncated, removed or rewritten
before a request or while it streams. Never a clean end with fewer or shorter parts: before the
answer starts it is 404 (nothing left) or 502 (a file cut short), afterwards the stream raises."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest

from smart_imaging.config.tenant import FolderImages
from smart_imaging.dicom import multipart, tags
from smart_imaging.errors import NotFound, UpstreamError
from smart_imaging.sources.base import StudyQuery, WadoRequest, WadoResponse
from smart_imaging.sources.folder import FolderSource
from smart_imaging.sources.stored import files as retrieve

from ...dimse.fake_archive import synthetic_study
from ...sample_dicom import to_bytes

COUNT = 6
MRN = "FOLDER-CUT-1"
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """One study of COUNT files, 1.dcm ... COUNT.dcm; file 1 is 2 MB (several
    chunks), the others 32 kB."""
    root = tmp_path / "images"
    root.mkdir()
    for number, ds in enumerate(synthetic_study("folder-cut", COUNT, MRN, size=128), start=1):
        if number == 1:
            big = synthetic_study("folder-cut", 1, MRN, size=1024)[0]
            ds.Rows = ds.Columns = 1024
            ds.PixelData = big.PixelData
        (root / f"{number}.dcm").write_bytes(to_bytes(ds))
    return root


@pytest.fixture
async def src(folder: Path, tmp_path: Path) -> AsyncIterator[FolderSource]:
    source = FolderSource(FolderImages(type="folder", path=str(folder), index=str(tmp_path / "index.sqlite")))
    await source.start()
    yield source
    await source.aclose()


def study_uid(folder: Path) -> str:
    return str(pydicom.dcmread(folder / "1.dcm", stop_before_pixels=True).StudyInstanceUID)


def truncate(path: Path, keep: float = 0.5) -> None:
    with open(path, "r+b") as fp:
        fp.truncate(int(path.stat().st_size * keep))


async def read_until_failure(response: WadoResponse) -> tuple[bytes, BaseException | None]:
    got = b""
    try:
        async for chunk in response.body:
            got += chunk
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return got, exc
    return got, None


def payloads(media_type: str, body: bytes) -> list[bytes]:
    """Each part's payload as sent (the last one may be cut off)."""
    boundary = multipart.boundary_of(media_type) or ""
    pieces = [
        p.split(b"\r\n\r\n", 1)[1] for p in body.split(f"--{boundary}".encode())[1:] if b"\r\n\r\n" in p
    ]
    return [p[:-2] if p.endswith(b"\r\n") else p for p in pieces]


def originals(folder: Path, *numbers: int) -> list[bytes]:
    return [(folder / f"{n}.dcm").read_bytes() for n in numbers]


def closed(media_type: str, body: bytes) -> bool:
    return body.endswith(multipart.closing(multipart.boundary_of(media_type) or ""))


async def start(src: FolderSource, folder: Path) -> tuple[WadoResponse, bytes]:
    """The study's answer, read up to its first chunk of file 1 (so the answer has started)."""
    response = await src.retrieve(WadoRequest(study_uid(folder), accept=DICOM_ANY))
    first = b""
    async for chunk in response.body:
        first += chunk
        if len(first) > retrieve.CHUNK_SIZE:
            break
    return response, first


# ---------------------------------------------------------------- while the study is served


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda p: truncate(p), id="truncated"),
        pytest.param(lambda p: truncate(p, keep=0.999), id="last-bytes-cut"),
        pytest.param(os.unlink, id="removed"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:-2] + b"\x00\x01"), id="rewritten"),
    ],
)
async def test_a_later_file_changed_while_the_study_streams_breaks_the_stream(
    src: FolderSource, folder: Path, fault: object
) -> None:
    sent = originals(folder, 1, 2, 3)
    response, first = await start(src, folder)
    fault(folder / "4.dcm")  # type: ignore[operator]
    rest, error = await read_until_failure(response)
    body = first + rest
    assert isinstance(error, UpstreamError), error
    assert not closed(response.media_type, body)
    assert payloads(response.media_type, body) == sent  # whole parts, then nothing of file 4
    assert error.status == 502 and "/" not in error.message  # names the instance, not the path


async def test_the_file_being_read_truncated_breaks_the_stream_inside_its_part(
    src: FolderSource, folder: Path
) -> None:
    (whole,) = originals(folder, 1)
    response, first = await start(src, folder)
    truncate(folder / "1.dcm", keep=0.6)  # open, partly read: the rest is gone
    rest, error = await read_until_failure(response)
    assert isinstance(error, UpstreamError) and "truncated" in error.message
    assert not closed(response.media_type, first + rest)
    (cut,) = payloads(response.media_type, first + rest)
    assert whole.startswith(cut) and len(cut) == int(len(whole) * 0.6)


async def test_the_file_being_read_removed_is_still_sent_whole(src: FolderSource, folder: Path) -> None:
    """An open file stays readable after unlink: its part is complete; the next request
    no longer finds it."""
    sent = originals(folder, *range(1, COUNT + 1))
    response, first = await start(src, folder)
    os.unlink(folder / "1.dcm")
    rest, error = await read_until_failure(response)
    assert error is None and closed(response.media_type, first + rest)
    assert payloads(response.media_type, first + rest) == sent


async def test_metadata_of_a_file_removed_while_streaming_breaks_the_stream(
    src: FolderSource, folder: Path
) -> None:
    response = await src.retrieve(WadoRequest(study_uid(folder), resource="metadata"))
    body = response.body.__aiter__()
    got = await anext(body) + await anext(body)  # "[" and the first instance
    os.unlink(folder / "3.dcm")
    rest, error = await read_until_failure(WadoResponse(response.media_type, body))
    assert isinstance(error, UpstreamError) and "vanished" in error.message
    assert not (got + rest).endswith(b"]")


# ---------------------------------------------------------------- before the request


async def test_a_file_truncated_before_the_request_is_502_for_every_resource(
    src: FolderSource, folder: Path
) -> None:
    truncate(folder / "2.dcm")
    ds = pydicom.dcmread(folder / "3.dcm", stop_before_pixels=True)
    cut = pydicom.dcmread(folder / "2.dcm", stop_before_pixels=True)
    study = study_uid(folder)
    for request in (
        WadoRequest(study, accept=DICOM_ANY),
        WadoRequest(study, resource="metadata"),
        WadoRequest(study, cut.SeriesInstanceUID, cut.SOPInstanceUID, frames=(1,), resource="frames"),
        WadoRequest(study, cut.SeriesInstanceUID, cut.SOPInstanceUID, resource="rendered"),
    ):
        with pytest.raises(UpstreamError) as caught:
            await src.retrieve(request)
        assert cut.SOPInstanceUID in caught.value.message and "incomplete" in caught.value.message
    whole = WadoRequest(study, ds.SeriesInstanceUID, ds.SOPInstanceUID, accept=DICOM_ANY)
    _, error = await read_until_failure(await src.retrieve(whole))  # the other instances still serve
    assert error is None


async def test_a_file_still_being_copied_at_scan_time_is_served_once_complete(
    folder: Path, tmp_path: Path
) -> None:
    whole = (folder / "5.dcm").read_bytes()
    (folder / "5.dcm").write_bytes(whole[: len(whole) // 3])
    source = FolderSource(FolderImages(type="folder", path=str(folder), index=str(tmp_path / "i2.sqlite")))
    (study,) = await source.search(StudyQuery(MRN))
    assert study.study[tags.NumberOfStudyRelatedInstances]["Value"] == [COUNT]  # listed, not hidden
    with pytest.raises(UpstreamError):
        await source.retrieve(WadoRequest(study_uid(folder), accept=DICOM_ANY))
    (folder / "5.dcm").write_bytes(whole)  # the copy finished
    response = await source.retrieve(WadoRequest(study_uid(folder), accept=DICOM_ANY))
    body, error = await read_until_failure(response)
    assert error is None and len(list(multipart.decode(response.media_type, body))) == COUNT


async def test_removed_files_before_the_request(src: FolderSource, folder: Path) -> None:
    ds = pydicom.dcmread(folder / "2.dcm", stop_before_pixels=True)
    os.unlink(folder / "2.dcm")
    with pytest.raises(NotFound):  # the instance is gone
        await src.retrieve(WadoRequest(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    # the study is what the folder now holds, and the search says so too
    response = await src.retrieve(WadoRequest(ds.StudyInstanceUID, accept=DICOM_ANY))
    body, error = await read_until_failure(response)
    assert error is None and len(list(multipart.decode(response.media_type, body))) == COUNT - 1
    (study,) = await src.search(StudyQuery(MRN))
    assert study.study[tags.NumberOfStudyRelatedInstances]["Value"] == [COUNT - 1]
    for path in folder.glob("*.dcm"):
        path.unlink()
    for resource in ("", "metadata"):
        with pytest.raises(NotFound):
            await src.retrieve(WadoRequest(ds.StudyInstanceUID, resource=resource))  # type: ignore[arg-type]


async def test_a_file_rewritten_before_the_request_is_reindexed_and_served(
    src: FolderSource, folder: Path
) -> None:
    ds = pydicom.dcmread(folder / "3.dcm")
    ds.SeriesDescription = "rewritten after the scan"
    (folder / "3.dcm").write_bytes(to_bytes(ds))
    response = await src.retrieve(WadoRequest(ds.StudyInstanceUID, resource="metadata"))
    body, error = await read_until_failure(response)
    assert error is None
    found = {m["00080018"]["Value"][0]: m for m in json.loads(body)}
    assert found[ds.SOPInstanceUID]["0008103E"]["Value"] == ["rewritten after the scan"]
