"""CapabilityStatement (FHIR R4) and SMART configuration documents for an imaging tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import __version__

SEARCH_PARAMS = [
    ("patient", "reference", "http://hl7.org/fhir/SearchParameter/clinical-patient"),
    ("subject", "reference", "http://hl7.org/fhir/SearchParameter/ImagingStudy-subject"),
    ("identifier", "token", "http://hl7.org/fhir/SearchParameter/clinical-identifier"),
    ("started", "date", "http://hl7.org/fhir/SearchParameter/ImagingStudy-started"),
    ("_lastUpdated", "date", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"),
]
_STARTED = datetime.now(UTC).isoformat(timespec="seconds")


def capability_statement(fhir_base: str, oauth: dict[str, str] | None) -> dict[str, Any]:
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [
            {
                "type": "ImagingStudy",
                "profile": "http://fhir.org/guides/argonaut/smart-imaging/StructureDefinition/smart-imaging-study",
                "interaction": [{"code": "search-type"}],
                "searchInclude": ["ImagingStudy:endpoint"],
                "searchParam": [{"name": n, "type": t, "definition": d} for n, t, d in SEARCH_PARAMS]
                + [
                    {
                        "name": "patient.identifier",
                        "type": "token",
                        "documentation": "Chained search on the patient's identifier (system|value)",
                    }
                ],
            }
        ],
    }
    if oauth:
        rest["security"] = {
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": k, "valueUri": v} for k, v in oauth.items()],
                }
            ],
        }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "kind": "instance",
        "software": {"name": "smart-imaging", "version": __version__},
        "implementation": {"description": "SMART Imaging Access server", "url": fhir_base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }


def smart_configuration(fhir_base: str, ehr: dict[str, Any] | None) -> dict[str, Any]:
    """``.well-known/smart-configuration`` of the imaging FHIR base.

    Authorization happens at the EHR, so its endpoints are repeated here when known; the
    ``associated_endpoints`` entry names this imaging base with ``smart-imaging-access``.
    """
    doc: dict[str, Any] = {}
    for key in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "jwks_uri",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "scopes_supported",
    ):
        if ehr and ehr.get(key):
            doc[key] = ehr[key]
    doc["capabilities"] = sorted(set((ehr or {}).get("capabilities", [])) | {"smart-imaging-access"})
    doc["associated_endpoints"] = [{"url": fhir_base, "capabilities": ["smart-imaging-access"]}]
    return doc
