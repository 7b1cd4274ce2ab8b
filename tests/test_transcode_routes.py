"""Transfer-syntax negotiation through the real server (issue 10.2, PS3.18 8.7.3.5), for every
source: dicom-web and dicom-dimse against an Orthanc of this module's own, folder on the same files.

Every stored syntax of pydicom's bundled images (native, JPEG-LS, JPEG 2000 lossless and lossy,
RLE, JPEG Lossless, a 30-frame color JPEG Baseline) is asked for in every target the server can
make (Explicit and Implicit VR Little Endian, RLE, JPEG-LS, JPEG 2000 lossless): the part says the
target, the Part-10 meta too, and the pixels decode to exactly the stored ones. Only what truly
cannot be made is 406 (JPEG 2000 of a 10-pixel-wide image, JPEG Baseline of uncompressed data).
A large multi-frame instance is transcoded with flat memory: about one copy of the instance.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest

from smart_imaging.dicom import multipart

from .conftest import dicomweb_tenant, mock_patient
from .dimse.test_dimse_orthanc import dimse_tenant
from .orthanc import Orthanc
from .sample_dicom import deterministic_uid, large_multiframe, to_bytes

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
STORED = [
    "MR_small.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_RLE.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "examples_ybr_color.dcm",
    "JPEGLSNearLossless_08.dcm",
]
ELE, ILE, RLE, JLS, J2KL = (
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
)
JPEG = "1.2.840.10008.1.2.4.50"
TARGETS = [ELE, ILE, RLE, JLS, J2KL]
CANNOT = {("JPEGLSNearLossless_08.dcm", J2KL)}  # OpenJPEG takes no image under 32 pixels a side
MRN, LARGE_MRN = "TS-1", "TS-2"
DICOM = 'multipart/related; type="application/dicom"'


def restudied(name: str, number: int) -> bytes:
    """A bundled file as instance ``number`` of one test study (its own UIDs: several bundled
    files are encodings of one image with one SOP Instance UID)."""
    ds = pydicom.dcmread(TEST_FILES / name)
    ds.PatientID, ds.PatientName = MRN, "Transcode^Test"
    ds.StudyInstanceUID = deterministic_uid("transcode", "study")
    ds.SeriesInstanceUID = deterministic_uid("transcode", "series", name)
    ds.SOPInstanceUID = deterministic_uid("transcode", "instance", name)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesNumber, ds.InstanceNumber = number, 1
    ds.Modality = ds.get("Modality") or "OT"
    ds.StudyDate = ds.get("StudyDate") or "20240101"
    return to_bytes(ds)


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    found = {name: restudied(name, n) for n, name in enumerate(STORED, start=1)}
    found["large"] = large_multiframe("transcode-large", LARGE_MRN, "Large^Test", frames=96, size=512)
    return found


@pytest.fixture(scope="module")
def archive(files: dict[str, bytes]) -> Iterator[Orthanc]:
    server = Orthanc().start()
    try:
        server.upload_bytes(files.values())
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def folder(files: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transcode-folder")
    for name, blob in files.items():
        (root / f"{name}.dcm").write_bytes(blob)
    return root


@pytest.fixture
def server(archive: Orthanc, folder: Path, imaging_server: Callable[..., str], tmp_path: Path) -> str:
    def tenant(images: dict[str, Any], mrn: str) -> dict[str, Any]:
        return {"authorization": {"type": "mock", "patient": mock_patient("p", mrn)}, "images": images}

    sources = {
        "dicom-web": dicomweb_tenant(archive),
        "dicom-dimse": dimse_tenant(archive),
        "folder": {"type": "folder", "path": str(folder), "index": str(tmp_path / "index.sqlite")},
    }
    tenants = {kind: tenant(images, MRN) for kind, images in sources.items()}
    tenants |= {f"{kind}-large": tenant(images, LARGE_MRN) for kind, images in sources.items()}
    return imaging_server(tenants)


def address(server: str, tenant: str) -> str:
    bundle = httpx.get(f"{server}/{tenant}/fhir/ImagingStudy", params={"patient": "p"}, timeout=120).json()
    (entry,) = bundle["entry"]
    return str(entry["resource"]["contained"][0]["address"])


def instance_path(blob: bytes) -> str:
    ds = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
    return f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def pixels(blob: bytes) -> np.ndarray[Any, Any]:
    return pydicom.dcmread(io.BytesIO(blob)).pixel_array


@pytest.mark.parametrize("kind", ["dicom-web", "dicom-dimse", "folder"])
def test_every_stored_syntax_in_every_target_decodes_to_the_same_pixels(
    server: str, files: dict[str, bytes], kind: str
) -> None:
    base = address(server, kind)
    for name in STORED:
        stored = files[name]
        for target in TARGETS:
            accept = f"{DICOM}; transfer-syntax={target}"
            response = httpx.get(base + instance_path(stored), headers={"Accept": accept}, timeout=120)
            if (name, target) in CANNOT:
                assert response.status_code == 406, (name, target, response.text)
                assert response.json()["error"] == "not_acceptable"
                continue
            assert response.status_code == 200, (name, target, response.text)
            ((headers, body),) = multipart.decode(response.headers["content-type"], response.content)
            assert headers["content-type"] == f"application/dicom; transfer-syntax={target}", (name, target)
            ds = pydicom.dcmread(io.BytesIO(body))
            assert ds.file_meta.TransferSyntaxUID == target
            assert ds.SOPInstanceUID == pydicom.dcmread(io.BytesIO(stored)).SOPInstanceUID
            assert np.array_equal(ds.pixel_array, pixels(stored)), (kind, name, target)


@pytest.mark.parametrize("kind", ["dicom-web", "dicom-dimse", "folder"])
def test_a_study_in_the_syntaxes_a_browser_draws(server: str, files: dict[str, bytes], kind: str) -> None:
    """What our viewer asks for: uncompressed, or JPEG Baseline kept as stored; ``*`` keeps all."""
    base = address(server, kind)
    study = pydicom.dcmread(io.BytesIO(files[STORED[0]]), stop_before_pixels=True).StudyInstanceUID
    accept = f"{DICOM}; transfer-syntax={ELE}, {DICOM}; transfer-syntax={JPEG}"
    response = httpx.get(f"{base}/studies/{study}", headers={"Accept": accept}, timeout=120)
    assert response.status_code == 200, response.text
    got = {}
    for headers, body in multipart.decode(response.headers["content-type"], response.content):
        ds = pydicom.dcmread(io.BytesIO(body))
        got[ds.SeriesInstanceUID] = ds.file_meta.TransferSyntaxUID
        assert headers["content-type"].endswith(f"transfer-syntax={ds.file_meta.TransferSyntaxUID}")
    stored = {pydicom.dcmread(io.BytesIO(files[n])).SeriesInstanceUID: n for n in STORED}
    assert set(got) == set(stored)
    for series, syntax in got.items():
        assert syntax == (JPEG if stored[series] == "examples_ybr_color.dcm" else ELE), stored[series]
    kept = httpx.get(
        f"{base}/studies/{study}", headers={"Accept": f"{DICOM}; transfer-syntax=*"}, timeout=120
    )
    as_stored = {
        pydicom.dcmread(io.BytesIO(b)).SOPInstanceUID: b
        for _, b in multipart.decode(kept.headers["content-type"], kept.content)
    }
    originals = {pydicom.dcmread(io.BytesIO(files[n])).SOPInstanceUID: files[n] for n in STORED}
    if kind == "dicom-dimse":  # DIMSE carries the data set; its File Meta is written anew
        assert {u: pydicom.dcmread(io.BytesIO(b)).PixelData for u, b in as_stored.items()} == {
            u: pydicom.dcmread(io.BytesIO(b)).PixelData for u, b in originals.items()
        }
    else:
        assert as_stored == originals  # byte for byte


@pytest.mark.parametrize("kind", ["dicom-web", "dicom-dimse", "folder"])
def test_frames_are_transcoded_too(server: str, files: dict[str, bytes], kind: str) -> None:
    base = address(server, kind)
    j2k, native = files["JPEG2000.dcm"], files["MR_small.dcm"]
    octets = 'multipart/related; type="application/octet-stream"'
    decoded = httpx.get(base + instance_path(j2k) + "/frames/1", headers={"Accept": octets}, timeout=120)
    ((headers, frame),) = multipart.decode(decoded.headers["content-type"], decoded.content)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={ELE}"
    assert frame == pixels(j2k).astype("<u2").tobytes()
    jls = 'multipart/related; type="image/jls"'
    encoded = httpx.get(base + instance_path(native) + "/frames/1", headers={"Accept": jls}, timeout=120)
    assert encoded.status_code == 200, encoded.text
    ((headers, stream),) = multipart.decode(encoded.headers["content-type"], encoded.content)
    assert headers["content-type"] == f"image/jls; transfer-syntax={JLS}"
    ds = pydicom.dcmread(io.BytesIO(native))
    ds.file_meta.TransferSyntaxUID = JLS
    ds.PixelData = pydicom.encaps.encapsulate([stream])
    assert np.array_equal(ds.pixel_array, pixels(native))
    stored = httpx.get(
        base + instance_path(j2k) + "/frames/1",
        headers={"Accept": f"{octets}; transfer-syntax=*"},
        timeout=120,
    )
    ((headers, _),) = multipart.decode(stored.headers["content-type"], stored.content)
    assert headers["content-type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.91"


@pytest.mark.parametrize("kind", ["dicom-web", "dicom-dimse", "folder"])
def test_what_cannot_be_made_is_406(server: str, files: dict[str, bytes], kind: str) -> None:
    base = address(server, kind)
    native = base + instance_path(files["MR_small.dcm"])
    for path, accept in (
        ("", f"{DICOM}; transfer-syntax={JPEG}"),  # no JPEG Baseline encoder: never made up
        ("/frames/1", 'multipart/related; type="image/jpeg"'),
        ("", 'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4'),
    ):
        response = httpx.get(native + path, headers={"Accept": accept}, timeout=120)
        assert response.status_code == 406, (path, accept, response.text)
        assert set(response.json()) == {"error", "message"}


class PeakMemory:
    """The peak of Python's traced allocations (numpy and pydicom buffers included) while a
    block runs, sampled by tracemalloc itself."""

    def __enter__(self) -> PeakMemory:
        tracemalloc.start()
        tracemalloc.reset_peak()
        self.base = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1] - self.base
        tracemalloc.stop()


@pytest.mark.parametrize(("kind", "copies"), [("folder", 1.6), ("dicom-dimse", 1.6), ("dicom-web", 2.6)])
def test_a_large_multiframe_instance_is_transcoded_with_flat_memory(
    server: str, files: dict[str, bytes], kind: str, copies: float, tmp_path: Path
) -> None:
    """96 frames of 512 x 512 x 16 bits (48 MiB) to RLE: memory holds the instance once (twice for
    dicom-web: the archive's part and the dataset read from it) and about one frame, never the
    whole transcoded instance beside it. The client writes the answer to disk as it streams."""
    blob = files["large"]
    url = address(server, f"{kind}-large") + instance_path(blob)
    httpx.get(url, headers={"Accept": f"{DICOM}; transfer-syntax=*"}, timeout=120)  # warm caches
    answer = tmp_path / "answer.multipart"
    with (
        PeakMemory() as memory,
        answer.open("wb") as out,
        httpx.stream(
            "GET", url, headers={"Accept": f"{DICOM}; transfer-syntax={RLE}"}, timeout=300
        ) as response,
    ):
        assert response.status_code == 200
        media_type = response.headers["content-type"]
        for chunk in response.iter_raw():
            out.write(chunk)
    assert memory.peak < copies * len(blob), (
        f"peak {memory.peak / 2**20:.0f} MiB for {len(blob) / 2**20:.0f} MiB"
    )
    ((headers, body),) = multipart.decode(media_type, answer.read_bytes())
    assert headers["content-type"] == f"application/dicom; transfer-syntax={RLE}"
    assert np.array_equal(pixels(body), pixels(blob))
