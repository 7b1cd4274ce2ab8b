"""The sample generator: deterministic, valid DICOM, the demo patients, consistent CT geometry."""

from __future__ import annotations

import io
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest

from smart_imaging.dicom.uid import is_valid_uid
from smart_imaging_demo.samples.generate import Progress, write_samples
from smart_imaging_demo.samples.patients import PATIENTS

from ...generated_samples import generated_samples

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
SOP_CLASS_OF = {
    "CT": {"1.2.840.10008.5.1.4.1.1.2"},
    "MR": {"1.2.840.10008.5.1.4.1.1.4"},
    "CR": {"1.2.840.10008.5.1.4.1.1.1"},
    # pydicom's compressed and color files (samples/codecs.py) keep their SOP classes:
    # Secondary Capture, US Image and US Multi-frame Image
    "NM": {"1.2.840.10008.5.1.4.1.1.7"},
    "OT": {"1.2.840.10008.5.1.4.1.1.7"},
    "US": {"1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1"},
}


@pytest.fixture(scope="module")
def samples() -> tuple[Path, tuple[Path, ...]]:
    return generated_samples()


@pytest.fixture(scope="module")
def datasets(samples: tuple[Path, tuple[Path, ...]]) -> dict[Path, pydicom.Dataset]:
    return {path: pydicom.dcmread(path) for path in samples[1]}


def test_same_command_gives_same_bytes_in_another_process(
    samples: tuple[Path, tuple[Path, ...]], tmp_path: Path
) -> None:
    folder, files = samples
    subprocess.run(
        [sys.executable, "-m", "smart_imaging_demo.samples.generate", str(tmp_path)],
        check=True,
        capture_output=True,
        env={"PYTHONPATH": str(Path("src").resolve()), "PATH": "/usr/bin:/bin"},
    )
    again = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.dcm"))
    assert again == sorted(p.relative_to(folder) for p in files)
    for relative in again:
        assert (tmp_path / relative).read_bytes() == (folder / relative).read_bytes(), relative


def test_rewriting_leaves_identical_files_untouched(samples: tuple[Path, tuple[Path, ...]]) -> None:
    folder, files = samples
    before = {p: p.stat().st_mtime_ns for p in files}
    assert write_samples(folder, progress=False) == list(files)
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_every_file_is_part10_with_decodable_pixels(datasets: dict[Path, pydicom.Dataset]) -> None:
    assert len(datasets) >= 200
    for path, ds in datasets.items():
        assert path.read_bytes()[128:132] == b"DICM"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        pixels = ds.pixel_array
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        assert pixels.shape[int(frames > 1) :][:2] == (ds.Rows, ds.Columns)
        for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
            assert is_valid_uid(uid), (path, uid)


def test_uids_are_unique_and_series_belong_to_one_study(datasets: dict[Path, pydicom.Dataset]) -> None:
    sops = [ds.SOPInstanceUID for ds in datasets.values()]
    assert len(set(sops)) == len(sops)
    study_of: dict[str, set[str]] = defaultdict(set)
    for ds in datasets.values():
        study_of[ds.SeriesInstanceUID].add(ds.StudyInstanceUID)
    assert all(len(studies) == 1 for studies in study_of.values())


def test_patients_match_the_demo_patients(datasets: dict[Path, pydicom.Dataset]) -> None:
    by_mrn = {p.mrn: p for p in PATIENTS}
    studies: dict[str, set[str]] = defaultdict(set)
    modalities: dict[str, set[str]] = defaultdict(set)
    for path, ds in datasets.items():
        patient = by_mrn[ds.PatientID]
        assert path.parts[-4] == patient.mrn
        assert str(ds.PatientName) == patient.dicom_name
        assert ds.PatientBirthDate == patient.dicom_birth_date
        assert ds.PatientSex == patient.dicom_sex
        assert ds.TimezoneOffsetFromUTC in ("-0400", "-0500")
        assert len(ds.StudyDate) == 8 and len(ds.StudyTime) >= 6 and ds.StudyDescription
        assert ds.SOPClassUID in SOP_CLASS_OF[ds.Modality]
        studies[patient.mrn].add(ds.StudyInstanceUID)
        modalities[patient.mrn].add(ds.Modality)
    for patient in PATIENTS:
        assert len(studies[patient.mrn]) >= 2, patient.mrn
        assert len(modalities[patient.mrn]) >= 2, patient.mrn


def test_ct_volume_has_consistent_geometry(datasets: dict[Path, pydicom.Dataset]) -> None:
    series: dict[str, list[pydicom.Dataset]] = defaultdict(list)
    for ds in datasets.values():
        if ds.Modality == "CT":
            series[ds.SeriesInstanceUID].append(ds)
    volume = max(series.values(), key=len)
    assert len(volume) >= 60
    volume.sort(key=lambda ds: int(ds.InstanceNumber))
    assert [int(ds.InstanceNumber) for ds in volume] == list(range(1, len(volume) + 1))
    orientation = np.array(volume[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in volume])
    steps = np.diff(positions @ normal)
    assert np.allclose(np.abs(steps), float(volume[0].SliceThickness), atol=1e-3)
    assert np.all(steps > 0) or np.all(steps < 0)
    for ds in volume:
        assert list(ds.ImageOrientationPatient) == list(volume[0].ImageOrientationPatient)
        assert list(ds.PixelSpacing) == list(volume[0].PixelSpacing)
        assert ds.FrameOfReferenceUID == volume[0].FrameOfReferenceUID
        assert (ds.Rows, ds.Columns) == (256, 256) and ds.BitsAllocated == 16
        assert float(ds.RescaleSlope) == 1 and float(ds.RescaleIntercept) == -1024
        assert float(ds.SliceLocation) == pytest.approx(positions[int(ds.InstanceNumber) - 1] @ normal)
    middle = volume[len(volume) // 2]
    hu = middle.pixel_array.astype(float) * float(middle.RescaleSlope) + float(middle.RescaleIntercept)
    assert hu.min() < -800 and hu.max() > 500  # air or lung, and bone


def test_mr_study_has_several_series_with_windows(datasets: dict[Path, pydicom.Dataset]) -> None:
    series = {
        ds.SeriesInstanceUID: ds
        for ds in datasets.values()
        if ds.Modality == "MR" and ds.Manufacturer == "smart-imaging"
    }
    assert len(series) >= 3
    assert len({ds.StudyInstanceUID for ds in series.values()}) == 1
    for ds in series.values():
        assert float(ds.WindowWidth) > 0 and ds.ImagePositionPatient and ds.PixelSpacing


def test_jpeg_baseline_series_decode_to_8_bit(datasets: dict[Path, pydicom.Dataset]) -> None:
    jpeg = [ds for ds in datasets.values() if ds.file_meta.TransferSyntaxUID == JPEG_BASELINE]
    assert len(jpeg) >= 2
    for ds in jpeg:
        assert ds.BitsAllocated == 8 and ds.LossyImageCompression == "01"
        pixels = ds.pixel_array
        assert pixels.dtype == np.uint8 and pixels.std() > 10  # an image, not a flat field


def test_reassigned_pydicom_series_have_new_uids(datasets: dict[Path, pydicom.Dataset]) -> None:
    reused = [ds for ds in datasets.values() if ds.Manufacturer != "smart-imaging"]
    assert len(reused) >= 20
    for ds in reused:
        assert ds.StudyInstanceUID.startswith("2.25.") and ds.SOPInstanceUID.startswith("2.25.")
        assert "Doe" not in str(ds.PatientName)


def test_progress_bar_counts_to_the_total() -> None:
    stream = io.StringIO()
    bar = Progress(3, stream)
    for _ in range(3):
        bar.advance()
    bar.close()
    assert stream.getvalue().rstrip().split("\r")[-1].startswith("samples [")
    assert " 3/3 " in stream.getvalue()
