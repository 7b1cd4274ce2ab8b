"""WADO-RS from the folder source, called directly: instances, metadata, frames, rendered."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from smart_imaging.config.tenant import FolderImages
from smart_imaging.dicom import multipart, tags
from smart_imaging.errors import BadRequest, NotAcceptable, NotFound
from smart_imaging.sources.base import StudyQuery, StudyRecord, WadoRequest, WadoResponse
from smart_imaging.sources.folder import FolderSource
from smart_imaging.sources.stored import files as retrieve

from ...generated_samples import generated_samples

BASE = "https://imaging.example/t/wado/BINDING"
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(scope="module")
def folder() -> Path:
    return generated_samples()[0]


@pytest.fixture
async def src(folder: Path, tmp_path: Path) -> FolderSource:
    return FolderSource(FolderImages(type="folder", path=str(folder), index=str(tmp_path / "index.sqlite")))


async def body(response: WadoResponse) -> bytes:
    return b"".join([chunk async for chunk in response.body])


def uid(element: dict[str, object]) -> str:
    return str(element["Value"][0])  # type: ignore[index]


async def study_of(src: FolderSource, mrn: str, description: str) -> StudyRecord:
    for study in await src.search(StudyQuery(mrn)):
        if uid(study.study[tags.StudyDescription]) == description:
            return study
    raise AssertionError(description)


def files_by_sop(folder: Path, study_uid: str) -> dict[str, bytes]:
    found = {}
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.StudyInstanceUID == study_uid:
            found[ds.SOPInstanceUID] = path.read_bytes()
    return found


async def test_study_streams_every_file_unchanged_in_chunks(src: FolderSource, folder: Path) -> None:
    study = await study_of(src, "MRN-1002", "CT CHEST WO CONTRAST")
    study_uid = uid(study.study[tags.StudyInstanceUID])
    response = await src.retrieve(WadoRequest(study_uid, accept=DICOM_ANY))
    chunks = [chunk async for chunk in response.body]
    assert max(len(c) for c in chunks) <= retrieve.CHUNK_SIZE
    parts = list(multipart.decode(response.media_type, b"".join(chunks)))
    assert parts[0][0]["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    got = {pydicom.dcmread(io.BytesIO(p), stop_before_pixels=True).SOPInstanceUID: p for _, p in parts}
    assert got == files_by_sop(folder, study_uid) and len(got) == 64
    numbers = [pydicom.dcmread(io.BytesIO(p), stop_before_pixels=True).InstanceNumber for _, p in parts]
    assert numbers == list(range(1, 65))


async def test_unknown_uids_are_not_found(src: FolderSource) -> None:
    study = (await src.search(StudyQuery("MRN-1001")))[0]
    study_uid = uid(study.study[tags.StudyInstanceUID])
    for request in (
        WadoRequest("2.25.404"),
        WadoRequest(study_uid, "2.25.404"),
        WadoRequest(
            study_uid, uid(study.series[0].series[tags.SeriesInstanceUID]), "2.25.404", resource="metadata"
        ),
    ):
        with pytest.raises(NotFound):
            await src.retrieve(request)


async def test_accept_negotiation_for_instances(src: FolderSource) -> None:
    study = await study_of(src, "MRN-1002", "XR CHEST PA AND LATERAL")  # JPEG Baseline
    study_uid = uid(study.study[tags.StudyInstanceUID])
    with pytest.raises(NotAcceptable):
        await src.retrieve(WadoRequest(study_uid, accept="application/json"))
    # Only uncompressed accepted, files are JPEG: decoded to Explicit VR Little Endian (issue 10;
    # this was a 406 before transcoding), marked lossy as the pixels were.
    explicit = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'
    decoded = list(multipart.decode(*await _typed(src, WadoRequest(study_uid, accept=explicit))))
    assert [h["content-type"] for h, _ in decoded] == [
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    ] * 2
    ds = pydicom.dcmread(io.BytesIO(decoded[0][1]))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and ds.LossyImageCompression == "01"
    jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert len(list(multipart.decode(*await _typed(src, WadoRequest(study_uid, accept=jpeg))))) == 2
    ct = await study_of(src, "MRN-1002", "CT CHEST WO CONTRAST")  # uncompressed
    with pytest.raises(NotAcceptable):  # no JPEG Baseline encoder: lossy compression is never made up
        await src.retrieve(WadoRequest(uid(ct.study[tags.StudyInstanceUID]), accept=jpeg))


async def _typed(src: FolderSource, request: WadoRequest) -> tuple[str, bytes]:
    response = await src.retrieve(request)
    return response.media_type, await body(response)


async def test_metadata_is_dicom_json_with_bulkdata_under_public_base(src: FolderSource) -> None:
    study = await study_of(src, "MRN-1001", "MR BRAIN WO CONTRAST")
    study_uid = uid(study.study[tags.StudyInstanceUID])
    series_uid = uid(study.series[0].series[tags.SeriesInstanceUID])
    response = await src.retrieve(WadoRequest(study_uid, series_uid, resource="metadata", public_base=BASE))
    assert response.media_type == "application/dicom+json"
    found = json.loads(await body(response))
    assert len(found) == 24
    first = found[0]
    sop = uid(first[tags.SOPInstanceUID])
    assert first["7FE00010"] == {
        "vr": "OW",
        "BulkDataURI": f"{BASE}/studies/{study_uid}/series/{series_uid}/instances/{sop}/frames/1",
    }
    assert first["00280030"]["Value"] == [0.9375, 0.9375]
    assert uid(first[tags.PatientID]) == "MRN-1001"


async def test_uncompressed_frame_is_the_pixel_data(src: FolderSource, folder: Path) -> None:
    study = await study_of(src, "MRN-1004", "CT HEAD WO CONTRAST")
    request, path = await _first_instance(src, folder, study)
    response = await src.retrieve(
        WadoRequest(
            *request,
            frames=(1,),
            resource="frames",
            accept='multipart/related; type="application/octet-stream"',
        )
    )
    parts = list(multipart.decode(response.media_type, await body(response)))
    assert parts[0][0]["content-type"].startswith("application/octet-stream")
    assert parts[0][1] == pydicom.dcmread(path).PixelData
    with pytest.raises(NotFound):
        await src.retrieve(WadoRequest(*request, frames=(2,), resource="frames"))
    with pytest.raises(NotAcceptable):
        await src.retrieve(
            WadoRequest(
                *request, frames=(1,), resource="frames", accept='multipart/related; type="image/jpeg"'
            )
        )


async def test_jpeg_frame_as_stored_or_decoded(src: FolderSource, folder: Path) -> None:
    study = await study_of(src, "MRN-1003", "XR KNEE RIGHT 2 VIEWS")
    request, path = await _first_instance(src, folder, study)
    ds = pydicom.dcmread(path)
    native = await src.retrieve(
        WadoRequest(
            *request,
            frames=(1,),
            resource="frames",
            accept='multipart/related; type="application/octet-stream"; transfer-syntax=*',
        )
    )
    ((headers, frame),) = multipart.decode(native.media_type, await body(native))
    assert headers["content-type"] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert frame[:2] == b"\xff\xd8" and frame in ds.PixelData
    decoded = await src.retrieve(
        WadoRequest(
            *request,
            frames=(1,),
            resource="frames",
            accept='multipart/related; type="application/octet-stream"',
        )
    )
    ((headers, raw),) = multipart.decode(decoded.media_type, await body(decoded))
    assert headers["content-type"].startswith("application/octet-stream")
    assert raw == ds.pixel_array.tobytes()


async def test_rendered_png_and_jpeg_with_window(src: FolderSource, folder: Path) -> None:
    study = await study_of(src, "MRN-1002", "CT CHEST WO CONTRAST")
    request, _ = await _first_instance(src, folder, study, index=32)
    png = await src.retrieve(WadoRequest(*request, resource="rendered", accept="image/png"))
    assert png.media_type == "image/png"
    lung = np.asarray(Image.open(io.BytesIO(await body(png))))
    assert lung.shape == (256, 256)
    soft = await src.retrieve(
        WadoRequest(*request, resource="rendered", accept="image/png", params=(("window", "40,400,linear"),))
    )
    tissue = np.asarray(Image.open(io.BytesIO(await body(soft))))
    assert (tissue == 0).mean() > (lung == 0).mean()  # lungs go black in a soft-tissue window
    jpeg = await src.retrieve(WadoRequest(*request, resource="rendered"))
    assert jpeg.media_type == "image/jpeg" and (await body(jpeg))[:2] == b"\xff\xd8"
    thumb = await src.retrieve(WadoRequest(request[0], request[1], resource="thumbnail"))
    assert Image.open(io.BytesIO(await body(thumb))).size == (128, 128)
    with pytest.raises(BadRequest):
        await src.retrieve(WadoRequest(*request, resource="rendered", params=(("window", "x"),)))
    with pytest.raises(NotAcceptable):
        await src.retrieve(WadoRequest(*request, resource="rendered", accept="image/gif"))


async def _first_instance(
    src: FolderSource, folder: Path, study: StudyRecord, index: int = 0
) -> tuple[tuple[str, str, str], Path]:
    series = study.series[0]
    instance = (series.instances or [])[index]
    request = (
        uid(study.study[tags.StudyInstanceUID]),
        uid(series.series[tags.SeriesInstanceUID]),
        uid(instance[tags.SOPInstanceUID]),
    )
    for path in folder.rglob("*.dcm"):
        if pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID == request[2]:
            return request, path
    raise AssertionError("file not found")
