"""Building blocks of the sample DICOM files: deterministic UIDs, the Patient, Study, Series,
Equipment and SOP Common modules (PS3.3 C.7, C.12), pixel data native or JPEG Baseline.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

from .patients import DemoPatient

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/smart-imaging/samples")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
SOP_CLASSES = {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE, "CR": CR_IMAGE_STORAGE}
INSTITUTION = "SMART Imaging Demo Hospital"


def sample_uid(*parts: object) -> str:
    """A deterministic UID: ``2.25.`` + the integer of a UUID v5 (PS3.5 B.2)."""
    return "2.25." + str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)).int)


@dataclass(frozen=True)
class StudySpec:
    patient: DemoPatient
    key: str  # stable name, part of every UID of the study
    description: str
    date: str  # YYYYMMDD
    time: str  # HHMMSS
    timezone: str  # TimezoneOffsetFromUTC, e.g. -0500
    accession: str
    study_id: str

    @property
    def uid(self) -> str:
        return sample_uid(self.patient.mrn, self.key)

    @property
    def folder(self) -> str:
        return f"{self.patient.mrn}/{self.date}-{self.key}"


@dataclass(frozen=True)
class SeriesSpec:
    study: StudySpec
    number: int
    modality: str
    description: str
    body_part: str
    time: str  # SeriesTime

    @property
    def uid(self) -> str:
        return sample_uid(self.study.patient.mrn, self.study.key, "series", self.number)

    @property
    def folder(self) -> str:
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.description.lower()).strip("-")
        return f"{self.study.folder}/{self.number:02d}-{slug}"

    def instance_uid(self, number: int) -> str:
        return sample_uid(self.study.patient.mrn, self.study.key, "series", self.number, "instance", number)


def base_dataset(series: SeriesSpec, number: int, sop_class: str | None = None) -> Dataset:
    """Every module but the image-specific ones, for instance ``number`` of ``series``."""
    study, patient = series.study, series.study.patient
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if series.modality == "CT" else "OTHER"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = study.date, series.time
    ds.SOPClassUID = UID(sop_class or SOP_CLASSES[series.modality])
    ds.SOPInstanceUID = UID(series.instance_uid(number))
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.date
    ds.StudyTime, ds.SeriesTime, ds.ContentTime = study.time, series.time, series.time
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = "smart-imaging"
    ds.InstitutionName = INSTITUTION
    ds.ReferringPhysicianName = "Rivera^Jordan^^Dr."
    ds.TimezoneOffsetFromUTC = study.timezone
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = "Numerical Phantom"
    ds.PatientName = patient.dicom_name
    ds.PatientID = patient.mrn
    ds.PatientBirthDate = patient.dicom_birth_date
    ds.PatientSex = patient.dicom_sex
    ds.PatientAge = patient_age(patient.dicom_birth_date, study.date)
    ds.BodyPartExamined = series.body_part
    ds.StudyInstanceUID = UID(study.uid)
    ds.SeriesInstanceUID = UID(series.uid)
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    ds.InstanceNumber = number
    return ds


def patient_age(birth_date: str, on: str) -> str:
    """PatientAge (AS) in years, e.g. ``045Y``."""
    years = int(on[:4]) - int(birth_date[:4]) - (on[4:] < birth_date[4:])
    return f"{max(years, 0):03d}Y"


def set_native_pixels(ds: Dataset, pixels: NDArray[np.uint16], bits_stored: int = 12) -> None:
    """Monochrome 16-bit unsigned pixels, Explicit VR Little Endian."""
    rows, columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    ds.file_meta = _file_meta(ds, ExplicitVRLittleEndian)


def set_jpeg_pixels(ds: Dataset, pixels: NDArray[np.uint8], quality: int = 90) -> None:
    """Monochrome 8-bit pixels compressed as JPEG Baseline (1.2.840.10008.1.2.4.50)."""
    rows, columns = pixels.shape
    out = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(out, format="JPEG", quality=quality)
    frame = out.getvalue()
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = f"{rows * columns / len(frame):.2f}"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta = _file_meta(ds, JPEGBaseline8Bit)


def to_bytes(ds: Dataset) -> bytes:
    """The Part-10 file (preamble, DICM, meta group, data set)."""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(transfer_syntax)
    return meta
