"""Real (tiny) studies from pydicom's ``dicomdirtests`` re-assigned to the demo patients.

Every UID that is not a registered DICOM UID gets a deterministic replacement derived from the
original, so references inside the files stay consistent; patient attributes, dates and
accession numbers are replaced with the demo patient's.
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

from .dataset import patient_age, sample_uid
from .imaging import SeriesPlan
from .patients import PATIENTS, DemoPatient

_PREFIX = "1.3.6.1.4.1.5962.1.1.0.0.0."
_DROP = (
    "OtherPatientIDs",
    "OtherPatientNames",
    "OtherPatientIDsSequence",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "EthnicGroup",
    "PatientComments",
    "AdditionalPatientHistory",
)


@dataclass(frozen=True)
class Reassignment:
    mrn: str
    key: str
    description: str
    date: str
    time: str
    timezone: str
    accession: str


# Original StudyInstanceUID (after the common prefix) -> the demo study it becomes.
STUDIES: dict[str, Reassignment] = {
    "1196530851.28319.0.1": Reassignment(
        "MRN-1001", "ct-head", "CT HEAD WO CONTRAST", "20190803", "221500", "-0400", "A100102"
    ),
    "1196533885.18148.0.1": Reassignment(
        "MRN-1001", "mra-brain", "MRA BRAIN WO CONTRAST", "20210517", "101200", "-0400", "A100103"
    ),
    "1194734704.16302.0.1": Reassignment(
        "MRN-1002", "ct-calcium-score", "CT CARDIAC CALCIUM SCORING", "20220610", "083000", "-0400", "A100203"
    ),
    "1196533885.18148.0.427": Reassignment(
        "MRN-1002", "mra-carotids", "MRA NECK CAROTIDS", "20230214", "113000", "-0500", "A100204"
    ),
    "1196533885.18148.0.133": Reassignment(
        "MRN-1003", "mr-brain-localizer", "MR BRAIN LOCALIZER", "20200909", "154500", "-0400", "A100302"
    ),
    "1196527414.5534.0.1": Reassignment(
        "MRN-1004",
        "xr-cervical-spine",
        "XR CERVICAL SPINE MIN 4 VIEWS",
        "20231104",
        "193000",
        "-0400",
        "A100402",
    ),
}


def testdata_folder() -> Path | None:
    """pydicom's ``dicomdirtests`` folder (bundled with pydicom; never downloaded)."""
    found = Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests"
    return found if found.is_dir() else None


def plans(folder: Path | None = None) -> list[SeriesPlan]:
    """One plan per re-assigned series, in a stable order."""
    folder = folder or testdata_folder()
    if folder is None:
        return []
    by_series: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(p for p in folder.glob("[0-9]*/*/*") if p.is_file()):
        ds = dcmread(path, stop_before_pixels=True)
        study = STUDIES.get(str(ds.StudyInstanceUID).removeprefix(_PREFIX))
        if study is not None:
            by_series.setdefault((str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)), []).append(path)
    return [
        _plan(STUDIES[study.removeprefix(_PREFIX)], paths) for (study, _), paths in sorted(by_series.items())
    ]


def _plan(target: Reassignment, paths: list[Path]) -> SeriesPlan:
    first = dcmread(paths[0], stop_before_pixels=True)
    slug = "".join(
        ch if ch.isalnum() else "-" for ch in str(first.get("SeriesDescription", "series")).lower()
    ).strip("-")
    slug = "-".join(part for part in slug.split("-") if part)
    folder = f"{target.mrn}/{target.date}-{target.key}/{int(first.SeriesNumber):02d}-{slug}"

    def instances() -> Iterator[Dataset]:
        for path in paths:
            yield reassign(dcmread(path), target)

    return SeriesPlan(folder, len(paths), instances)


def reassign(ds: Dataset, target: Reassignment) -> Dataset:
    """The dataset as a study of the demo patient ``target.mrn``."""
    patient = _patient(target.mrn)
    ds.walk(_new_uid)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in _DROP:
        if keyword in ds:
            delattr(ds, keyword)
    ds.PatientName = patient.dicom_name
    ds.PatientID = patient.mrn
    ds.PatientBirthDate = patient.dicom_birth_date
    ds.PatientSex = patient.dicom_sex
    ds.PatientAge = patient_age(patient.dicom_birth_date, target.date)
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate"):
        if keyword in ds or keyword in ("StudyDate", "SeriesDate"):
            setattr(ds, keyword, target.date)
    ds.StudyTime = target.time
    ds.TimezoneOffsetFromUTC = target.timezone
    ds.AccessionNumber = target.accession
    ds.StudyDescription = target.description
    ds.StudyID = target.accession[-2:]
    ds.InstitutionName = "SMART Imaging Demo Hospital"
    return ds


def _new_uid(ds: Dataset, element: DataElement) -> None:
    if element.VR != "UI" or element.value in (None, ""):
        return
    if element.VM > 1:
        element.value = [_mapped(v) for v in element.value]
    else:
        element.value = _mapped(str(element.value))


def _mapped(value: str) -> UID:
    value = value.strip("\x00 ")
    return UID(value if value in UID_dictionary else sample_uid("testdata", value))


def _patient(mrn: str) -> DemoPatient:
    return next(p for p in PATIENTS if p.mrn == mrn)
