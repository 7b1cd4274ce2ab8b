"""Compressed, multi-frame and color studies from pydicom's bundled test files, re-assigned to the
demo patients like ``testdata.py`` does with ``dicomdirtests``.

The files are real encodings: JPEG 2000 (lossless and lossy), JPEG-LS (lossless and
near-lossless), RLE Lossless, JPEG Lossless (SV1), and JPEG Baseline. They show how a viewer copes
with what archives store: our viewer asks the server to transcode what a browser cannot decode.
Each file keeps its pixel data byte for byte; every non-registered UID is replaced by one derived
from the file's name and the original (several files share an origin: MR_small in four encodings).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom.data
from pydicom import Dataset, dcmread
from pydicom._uid_dict import UID_dictionary
from pydicom.dataelem import DataElement
from pydicom.uid import UID

from .dataset import sample_uid
from .imaging import SeriesPlan
from .testdata import Reassignment, reassign


@dataclass(frozen=True)
class CodecSeries:
    number: int
    description: str
    files: tuple[str, ...]  # names in pydicom's test_files


@dataclass(frozen=True)
class CodecStudy:
    study: Reassignment
    modality: str
    series: tuple[CodecSeries, ...]


STUDIES: tuple[CodecStudy, ...] = (
    CodecStudy(
        Reassignment(
            "MRN-1001", "nm-jpeg2000", "NM WHOLE BODY (JPEG 2000)", "20220302", "091500", "-0500", "A100104"
        ),
        "NM",
        (CodecSeries(1, "Whole body JPEG 2000", ("JPEG2000.dcm",)),),
    ),
    CodecStudy(
        Reassignment("MRN-1001", "mr-codecs", "MR SMALL CODECS", "20220915", "141000", "-0400", "A100105"),
        "MR",
        (
            CodecSeries(1, "JPEG-LS lossless", ("MR_small_jpeg_ls_lossless.dcm",)),
            CodecSeries(2, "JPEG 2000 lossless", ("MR_small_jp2klossless.dcm",)),
            CodecSeries(3, "RLE lossless", ("MR_small_RLE.dcm",)),
            CodecSeries(4, "Explicit little endian", ("MR_small.dcm",)),
        ),
    ),
    CodecStudy(
        Reassignment(
            "MRN-1002", "us-color", "US ECHO COLOR MULTI-FRAME", "20230620", "103000", "-0400", "A100205"
        ),
        "US",
        (
            CodecSeries(1, "Cine JPEG Baseline 30 frames", ("examples_ybr_color.dcm",)),
            CodecSeries(2, "Color JPEG 2000", ("examples_jpeg2k.dcm",)),
            CodecSeries(3, "Color uncompressed", ("examples_rgb_color.dcm",)),
        ),
    ),
    CodecStudy(
        Reassignment(
            "MRN-1003", "ot-color-codecs", "SC COLOR CODECS", "20210411", "120000", "-0400", "A100303"
        ),
        "OT",
        (
            CodecSeries(1, "RLE color", ("SC_rgb_rle.dcm",)),
            CodecSeries(2, "RLE color 2 frames", ("SC_rgb_rle_2frame.dcm",)),
            CodecSeries(3, "JPEG Lossless color", ("SC_rgb_jpeg_gdcm.dcm",)),
            CodecSeries(4, "JPEG-LS near-lossless", ("JPEGLSNearLossless_08.dcm",)),
        ),
    ),
)


def test_files() -> Path | None:
    """pydicom's bundled ``test_files`` folder (never downloaded)."""
    found = Path(pydicom.data.__file__).parent / "test_files"
    return found if found.is_dir() else None


def plans(folder: Path | None = None) -> list[SeriesPlan]:
    """One plan per series whose files are all bundled with this pydicom."""
    folder = folder or test_files()
    if folder is None:
        return []
    found = []
    for study in STUDIES:
        for series in study.series:
            paths = [folder / name for name in series.files]
            if all(p.is_file() for p in paths):
                found.append(_plan(study, series, paths))
    return found


def _plan(study: CodecStudy, series: CodecSeries, paths: list[Path]) -> SeriesPlan:
    target = study.study
    slug = "-".join("".join(ch if ch.isalnum() else " " for ch in series.description.lower()).split())
    folder = f"{target.mrn}/{target.date}-{target.key}/{series.number:02d}-{slug}"

    def instances() -> Iterator[Dataset]:
        for number, path in enumerate(paths, start=1):
            yield _reassigned(dcmread(path), study, series, number)

    return SeriesPlan(folder, len(paths), instances)


def _reassigned(ds: Dataset, study: CodecStudy, series: CodecSeries, number: int) -> Dataset:
    salt = f"{study.study.key}/{series.number}"
    ds.walk(lambda _, element: _new_uid(element, salt))
    ds = reassign(ds, study.study)
    ds.StudyInstanceUID = sample_uid("codecs", study.study.key, "study")
    ds.SeriesInstanceUID = sample_uid("codecs", salt, "series")
    ds.Modality = ds.get("Modality") or study.modality
    ds.Manufacturer = ds.get("Manufacturer") or "unknown (pydicom test file)"
    ds.SeriesNumber, ds.InstanceNumber = series.number, number
    ds.SeriesDescription = series.description
    return ds


def _new_uid(element: DataElement, salt: str) -> None:
    """Non-registered UIDs salted with the series, so that two encodings of one original image
    become two instances (``reassign`` then maps them once more, deterministically)."""
    if element.VR != "UI" or element.value in (None, ""):
        return
    if element.VM > 1:
        element.value = [_salted(str(v), salt) for v in element.value]
    else:
        element.value = _salted(str(element.value), salt)


def _salted(value: str, salt: str) -> UID:
    value = value.strip("\x00 ")
    return UID(value if value in UID_dictionary else sample_uid("codec-file", salt, value))
