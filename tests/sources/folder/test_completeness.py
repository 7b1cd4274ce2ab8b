"""The structural check that tells a whole Part-10 file from one cut short (pydicom reads both)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.filereader import data_element_generator

from smart_imaging.sources.dimse.part10 import dataset_offset
from smart_imaging.sources.folder.completeness import is_complete

from ...generated_samples import generated_samples

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
# Explicit and implicit VR, big endian, sequences (UN and private), encapsulated JPEG, JPEG 2000
# and RLE pixel data, a multi-frame RLE, and a file whose data set ends after its pixel data.
SAMPLES = (
    "CT_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "UN_sequence.dcm",
    "nested_priv_SQ.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_rle_2frame.dcm",
    "rtplan.dcm",
    "waveform_ecg.dcm",
)


def test_every_whole_file_is_complete() -> None:
    paths = [TEST_FILES / name for name in SAMPLES] + list(generated_samples()[1])
    paths += [p for p in (TEST_FILES / "dicomdirtests").rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert len(paths) > 40
    assert [p.name for p in paths if not is_complete(p)] == []


def test_pydicoms_own_truncated_files_are_incomplete() -> None:
    # pydicom reads both without an error or a warning
    assert not is_complete(TEST_FILES / "MR_truncated.dcm")
    assert not is_complete(TEST_FILES / "rtplan_truncated.dcm")


def boundaries(data: bytes) -> tuple[set[int], tuple[int, int] | None]:
    """Offsets where a top-level element of the data set ends (pydicom's own parse), and the
    span from the end of Rows to the end of Pixel Data (None: not an image)."""
    start = dataset_offset(data[:144])
    syntax = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta.TransferSyntaxUID
    fp = io.BytesIO(data)
    fp.seek(start)
    ends, rows_end, pixels_end = {start}, 0, 0
    for raw in data_element_generator(fp, syntax.is_implicit_VR, syntax.is_little_endian):
        ends.add(fp.tell())
        if raw.tag == 0x00280010:
            rows_end = fp.tell()
        if raw.tag == 0x7FE00010:
            pixels_end = fp.tell()
    return ends, (rows_end, pixels_end) if rows_end and pixels_end else None


@pytest.mark.parametrize("name", SAMPLES)
def test_every_cut_inside_an_element_or_before_the_pixel_data_end_is_incomplete(
    name: str, tmp_path: Path
) -> None:
    data = (TEST_FILES / name).read_bytes()
    ends, image = boundaries(data)
    target = tmp_path / "cut.dcm"
    looks_whole = []
    for cut in sorted(
        {*range(1, len(data), max(37, len(data) // 800)), *range(max(1, len(data) - 300), len(data)), *ends}
        - {len(data)}
    ):
        target.write_bytes(data[:cut])
        if is_complete(target):
            looks_whole.append(cut)
    # only a cut exactly between two top-level elements can look whole, and in an image never
    # one between Rows and the end of the pixel data (Rows without Pixel Data is incomplete)
    assert set(looks_whole) <= ends, sorted(set(looks_whole) - ends)[:5]
    if image is not None:
        assert [c for c in looks_whole if image[0] <= c < image[1]] == []
