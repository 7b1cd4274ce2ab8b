"""The IG examples' studies as small real DICOM files (pydicom's CT_small pixels), uploaded to Orthanc.

- Maya (the IG's proxy example, authorization-patterns.md): an ankle X-ray (two series), a pelvic
  ultrasound from a confidential encounter (ConfidentialityCode R), and a knee X-ray with one
  series of scanned documents (modality OT) the policy keeps from proxies: a partial study.
- Patient 123 (the IG's Backend Services example): study A (the referral's) and study B.
- Patient 456: study C.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pydicom
from pydicom.data import get_testdata_file

from tests.sample_dicom import deterministic_uid, to_bytes

MRN = {"maya": "IG-MAYA", "123": "IG-123", "456": "IG-456"}


@dataclass(frozen=True)
class Series:
    key: str
    modality: str
    description: str
    body_part: str | None = None
    confidentiality: str | None = None
    instances: int = 2


@dataclass(frozen=True)
class Study:
    key: str
    patient: str  # FHIR Patient id at the EHR
    description: str
    date: str
    series: tuple[Series, ...]

    @property
    def uid(self) -> str:
        return deterministic_uid("ig", self.key, "study")

    def series_uid(self, key: str) -> str:
        return deterministic_uid("ig", self.key, key, "series")

    @property
    def series_uids(self) -> dict[str, str]:
        return {s.key: self.series_uid(s.key) for s in self.series}


STUDIES = {
    s.key: s
    for s in (
        Study(
            "ankle",
            "maya",
            "XR ANKLE 3 VIEWS LEFT",
            "20001010",  # acquired long ago, uploaded by the test: _lastUpdated must still find it
            (Series("ap", "DX", "AP", "ANKLE"), Series("lateral", "DX", "Lateral", "ANKLE")),
        ),
        Study(
            "pelvis",
            "maya",
            "US PELVIS",
            "20240301",
            (Series("us", "US", "Transabdominal", "PELVIS", confidentiality="R"),),
        ),
        Study(
            "knee",
            "maya",
            "XR KNEE 2 VIEWS",
            "20240510",
            (
                Series("knee", "DX", "Knee AP", "KNEE"),
                Series("consent", "OT", "Scanned consent", instances=1),
            ),
        ),
        Study("a", "123", "CT CHEST", "20240601", (Series("ct", "CT", "Axial 5mm", "CHEST"),)),
        Study("b", "123", "MR BRAIN", "20240602", (Series("mr", "MR", "T1 axial", "BRAIN"),)),
        Study("c", "456", "CT ABDOMEN", "20240603", (Series("ct", "CT", "Axial", "ABDOMEN"),)),
    )
}


@dataclass
class Uploaded:
    files: dict[str, list[bytes]] = field(default_factory=dict)  # study key -> Part-10 files


def instances(study: Study) -> list[bytes]:
    source = get_testdata_file("CT_small.dcm")
    assert source is not None
    blobs = []
    for number, series in enumerate(study.series, start=1):
        for index in range(series.instances):
            ds = pydicom.dcmread(source)
            ds.PatientID, ds.PatientName = MRN[study.patient], f"IG^{study.patient}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study.uid, study.series_uid(series.key)
            ds.SOPInstanceUID = deterministic_uid("ig", study.key, series.key, str(index))
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.StudyDate, ds.SeriesDate, ds.StudyDescription = study.date, study.date, study.description
            ds.AccessionNumber, ds.StudyID = f"ACC-{study.key}", study.key[:16]
            ds.Modality, ds.SeriesDescription = series.modality, series.description
            ds.SeriesNumber, ds.InstanceNumber = number, index + 1
            if series.body_part:
                ds.BodyPartExamined = series.body_part
            elif "BodyPartExamined" in ds:
                del ds.BodyPartExamined
            if series.confidentiality:
                ds.ConfidentialityCode = series.confidentiality
            blobs.append(to_bytes(ds))
    return blobs
