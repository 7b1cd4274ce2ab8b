"""The demo's synthetic patients, shared by the EHR sandbox (FHIR Patient resources) and the
sample study generator (DICOM PatientID = MRN, PatientName, PatientBirthDate, PatientSex).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5.99999.1"


@dataclass(frozen=True)
class DemoPatient:
    id: str  # FHIR Patient id at the sandbox
    mrn: str  # DICOM PatientID
    family: str
    given: str
    birth_date: str  # YYYY-MM-DD
    sex: str  # FHIR gender: male | female | other | unknown
    conditions: tuple[str, ...] = field(default=())
    allergies: tuple[str, ...] = field(default=())
    medications: tuple[str, ...] = field(default=())

    @property
    def dicom_name(self) -> str:
        return f"{self.family}^{self.given}"

    @property
    def dicom_birth_date(self) -> str:
        return self.birth_date.replace("-", "")

    @property
    def dicom_sex(self) -> str:
        return {"male": "M", "female": "F"}.get(self.sex, "O")

    def fhir(self) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "id": self.id,
            "identifier": [
                {
                    "use": "usual",
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "MR",
                                "display": "Medical Record Number",
                            }
                        ],
                        "text": "Medical Record Number",
                    },
                    "system": MRN_SYSTEM,
                    "value": self.mrn,
                }
            ],
            "active": True,
            "name": [{"use": "official", "family": self.family, "given": [self.given]}],
            "gender": self.sex,
            "birthDate": self.birth_date,
        }


PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient(
        "ava-chen",
        "MRN-1001",
        "Chen",
        "Ava",
        "1978-03-14",
        "female",
        conditions=("Migraine without aura", "Essential hypertension"),
        allergies=("Penicillin",),
        medications=("Lisinopril 10 mg", "Sumatriptan 50 mg"),
    ),
    DemoPatient(
        "marcus-okafor",
        "MRN-1002",
        "Okafor",
        "Marcus",
        "1965-11-02",
        "male",
        conditions=("Chronic obstructive pulmonary disease", "Type 2 diabetes mellitus", "Pulmonary nodule"),
        allergies=("Iodinated contrast",),
        medications=("Metformin 500 mg", "Tiotropium inhaler"),
    ),
    DemoPatient(
        "lucia-ramirez",
        "MRN-1003",
        "Ramirez",
        "Lucia",
        "1990-07-21",
        "female",
        conditions=("Osteoarthritis of knee",),
        allergies=(),
        medications=("Ibuprofen 400 mg",),
    ),
    DemoPatient(
        "sam-patel",
        "MRN-1004",
        "Patel",
        "Sam",
        "2001-01-30",
        "male",
        conditions=(),
        allergies=("Peanut",),
        medications=(),
    ),
)


def by_id(patient_id: str) -> DemoPatient | None:
    return next((p for p in PATIENTS if p.id == patient_id), None)
