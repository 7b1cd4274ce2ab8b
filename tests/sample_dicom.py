"""Sample DICOM for tests: pydicom's small real series, plus synthetic studies with chosen MRNs."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MultiFrameGrayscaleWordSecondaryCaptureImageStorage

DICOMDIR_TESTS = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
PATIENT_DIRS = ("77654033", "98892001", "98892003")  # patients 77654033 and 98890234


def deterministic_uid(*parts: str) -> str:
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_OID, "/".join(parts)).int)


def real_series_files() -> list[Path]:
    return sorted(p for d in PATIENT_DIRS for p in (DICOMDIR_TESTS / d).rglob("*") if p.is_file())


def restamped(path: Path, mrn: str, tag: str) -> bytes:
    """A copy of a real file with new UIDs and a new PatientID (deterministic per tag)."""
    ds = pydicom.dcmread(path)
    ds.PatientID = mrn
    ds.PatientName = f"Synthetic^{tag}"
    ds.StudyInstanceUID = deterministic_uid(tag, "study", ds.StudyInstanceUID)
    ds.SeriesInstanceUID = deterministic_uid(tag, "series", ds.SeriesInstanceUID)
    ds.SOPInstanceUID = deterministic_uid(tag, "instance", ds.SOPInstanceUID)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return to_bytes(ds)


def large_multiframe(tag: str, mrn: str, name: str, frames: int, size: int) -> bytes:
    """A 16-bit multi-frame Part-10 file of frames x size x size pixels, no two frames alike;
    UIDs are ``deterministic_uid(tag, "study" | "series" | "instance")``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    ds.SOPInstanceUID = deterministic_uid(tag, "instance")
    ds.StudyInstanceUID = deterministic_uid(tag, "study")
    ds.SeriesInstanceUID = deterministic_uid(tag, "series")
    ds.PatientID, ds.PatientName, ds.Modality = mrn, name, "OT"
    ds.StudyDate, ds.SeriesNumber, ds.InstanceNumber = "20240101", 1, 1
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames, size, size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    pixels = np.arange(frames * size * size, dtype=np.uint32)
    ds.PixelData = ((pixels * 2654435761) >> 16).astype("<u2").tobytes()
    return to_bytes(ds)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@dataclass
class SampleData:
    patients: dict[str, list[str]] = field(default_factory=dict)  # PatientID -> study UIDs
    files: dict[str, bytes] = field(default_factory=dict)  # SOPInstanceUID -> stored bytes
    study_of: dict[str, str] = field(default_factory=dict)  # SOPInstanceUID -> StudyInstanceUID

    def add(self, blob: bytes) -> None:
        ds = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
        studies = self.patients.setdefault(str(ds.PatientID), [])
        if ds.StudyInstanceUID not in studies:
            studies.append(ds.StudyInstanceUID)
        self.files[ds.SOPInstanceUID] = blob
        self.study_of[ds.SOPInstanceUID] = ds.StudyInstanceUID

    def instances_of(self, study_uid: str) -> dict[str, bytes]:
        return {uid: blob for uid, blob in self.files.items() if self.study_of[uid] == study_uid}


def mixed_study_files() -> list[bytes]:
    """One StudyInstanceUID holding instances of two patients (MIX-A, MIX-B): bad archive data."""
    source = next(p for p in sorted((DICOMDIR_TESTS / "77654033").rglob("*")) if p.is_file())
    blobs = []
    for number, patient in enumerate(("MIX-A", "MIX-B")):
        ds = pydicom.dcmread(source)
        ds.PatientID, ds.PatientName = patient, f"Mixed^{patient}"
        ds.StudyInstanceUID = deterministic_uid("mixed", "study")
        ds.SeriesInstanceUID = deterministic_uid("mixed", "series", patient)
        ds.SOPInstanceUID = deterministic_uid("mixed", "instance", str(number))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        blobs.append(to_bytes(ds))
    return blobs


def build_sample_data() -> SampleData:
    """Two real patients, a synthetic one whose MRN is full of QIDO wildcard characters, and a
    study whose instances belong to two patients."""
    data = SampleData()
    for path in real_series_files():
        data.add(path.read_bytes())
    ct = sorted((DICOMDIR_TESTS / "77654033").rglob("*"))
    ct_files = [p for p in ct if p.is_file()][:2]
    for path in ct_files:
        data.add(restamped(path, "7765*", "wildcard"))
    for blob in mixed_study_files():
        data.add(blob)
    return data
