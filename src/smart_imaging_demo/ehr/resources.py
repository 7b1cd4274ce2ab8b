"""FHIR R4 resources of the demo patients (Patient, Condition, AllergyIntolerance,
MedicationRequest) and searchset Bundles. Pure; built from ``samples/patients.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smart_imaging_demo.samples.patients import MRN_SYSTEM, PATIENTS, DemoPatient

CLINICAL_TYPES = ("Condition", "AllergyIntolerance", "MedicationRequest")
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"{_TERMINOLOGY}/{system}", "code": code}]}


def conditions(patient: DemoPatient) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Condition",
            "id": f"{patient.id}-condition-{n}",
            "clinicalStatus": _concept("condition-clinical", "active"),
            "verificationStatus": _concept("condition-ver-status", "confirmed"),
            "category": [_concept("condition-category", "problem-list-item")],
            "code": {"text": text},
            "subject": {"reference": f"Patient/{patient.id}"},
        }
        for n, text in enumerate(patient.conditions, start=1)
    ]


def allergies(patient: DemoPatient) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "AllergyIntolerance",
            "id": f"{patient.id}-allergy-{n}",
            "clinicalStatus": _concept("allergyintolerance-clinical", "active"),
            "verificationStatus": _concept("allergyintolerance-verification", "confirmed"),
            "code": {"text": text},
            "patient": {"reference": f"Patient/{patient.id}"},
        }
        for n, text in enumerate(patient.allergies, start=1)
    ]


def medication_requests(patient: DemoPatient) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "MedicationRequest",
            "id": f"{patient.id}-medication-{n}",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": text},
            "subject": {"reference": f"Patient/{patient.id}"},
        }
        for n, text in enumerate(patient.medications, start=1)
    ]


BUILDERS: dict[str, Callable[[DemoPatient], list[dict[str, Any]]]] = {
    "Condition": conditions,
    "AllergyIntolerance": allergies,
    "MedicationRequest": medication_requests,
}


def clinical(
    resource_type: str, patients: tuple[DemoPatient, ...] = PATIENTS
) -> list[tuple[DemoPatient, dict[str, Any]]]:
    """Every resource of a clinical type, with the patient it belongs to."""
    build = BUILDERS[resource_type]
    return [(p, resource) for p in patients for resource in build(p)]


def patient_matches(patient: DemoPatient, params: dict[str, str]) -> bool:
    """FHIR search on Patient by ``_id``, ``identifier`` ([system|]value) and ``name``
    (case-insensitive prefix of family or given, R4 3.1.1.5.3 string search)."""
    if "_id" in params and patient.id not in params["_id"].split(","):
        return False
    if "identifier" in params and not _identifier_matches(patient, params["identifier"]):
        return False
    if "name" in params:
        wanted = params["name"].casefold()
        parts = (patient.family, patient.given, f"{patient.given} {patient.family}")
        if not any(p.casefold().startswith(wanted) for p in parts):
            return False
    return True


def _identifier_matches(patient: DemoPatient, token: str) -> bool:
    if "|" in token:
        system, value = token.split("|", 1)
        return (not system or system == MRN_SYSTEM) and (not value or value == patient.mrn)
    return token == patient.mrn


def searchset(self_url: str, base_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
