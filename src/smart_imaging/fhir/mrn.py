"""The patient's MRN from a FHIR Patient, by the tenant's FHIRPath expressions (fhirpathpy)."""

from __future__ import annotations

import logging
from typing import Any

from fhirpathpy import evaluate

log = logging.getLogger("smart_imaging.mrn")


def mrn_of(patient: dict[str, Any], expressions: list[str], fallback: bool = False) -> str | None:
    """First non-empty string any expression yields.

    With ``fallback`` (the tenant did not set ``mrn``; the reference server's behaviour), a
    Patient with exactly one identifier yields that identifier's value. A Patient with several
    identifiers yields nothing rather than a guess: an insurance or national number matched
    against the archive's PatientID could name another person.
    """
    for expression in expressions:
        try:
            found = evaluate(patient, expression)
        except Exception:  # noqa: BLE001 - fhirpathpy raises many types for bad expressions
            log.warning("MRN expression failed: %s", expression)
            continue
        for value in found:
            if isinstance(value, str) and value.strip():
                return value.strip()
    identifiers = patient.get("identifier") or []
    if fallback and isinstance(identifiers, list) and len(identifiers) == 1:
        value = identifiers[0].get("value") if isinstance(identifiers[0], dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def has_identifier(patient: dict[str, Any], system: str | None, value: str) -> bool:
    """True when one of the Patient's identifiers has ``value`` (and ``system``, when given).
    A malformed ``identifier`` (an EHR's answer, not ours) identifies nothing."""
    identifiers = patient.get("identifier")
    if not isinstance(identifiers, list):
        return False
    for identifier in identifiers:
        if not isinstance(identifier, dict) or identifier.get("value") != value:
            continue
        if system is None or identifier.get("system") == system:
            return True
    return False
