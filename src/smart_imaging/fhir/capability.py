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

IMAGING_ACCESS = "smart-imaging-access"
IG_APP_LAUNCH = "http://fhir.org/argonaut/smart-imaging/capabilities/app-launch"
DUAL_LAUNCH = "smart-imaging-access-dual-launch"  # the reference server's independent mode
OWN_SERVER_CAPABILITIES = (
    "launch-standalone",
    "client-public",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-v1",
    "permission-v2",
    "permission-offline",
    "permission-online",
)


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


def own_authorization_server(
    fhir_base: str, oauth_base: str, auth_methods: list[str], scopes: list[str]
) -> dict[str, Any]:
    """``.well-known/smart-configuration`` of a tenant that is its own authorization server
    (``smart-on-fhir-independent``, dual launch): SMART App Launch 2.x section "Conformance" with
    RFC 8414 member names, the reference server's ``smart-imaging-access-dual-launch`` capability
    and the IG's capabilities, also on the ``associated_endpoints`` entry apps look for."""
    capabilities = [DUAL_LAUNCH, IMAGING_ACCESS, IG_APP_LAUNCH]
    return {
        "issuer": oauth_base,
        "authorization_endpoint": f"{oauth_base}/authorize",
        "token_endpoint": f"{oauth_base}/token",
        "introspection_endpoint": f"{oauth_base}/introspect",
        "revocation_endpoint": f"{oauth_base}/revoke",
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": True,
        "capabilities": sorted({*OWN_SERVER_CAPABILITIES, *capabilities}),
        "associated_endpoints": [{"url": fhir_base, "capabilities": capabilities}],
    }


def own_oauth_uris(oauth_base: str) -> dict[str, str]:
    """The CapabilityStatement's ``oauth-uris`` extension members for such a tenant."""
    return {
        "authorize": f"{oauth_base}/authorize",
        "token": f"{oauth_base}/token",
        "introspect": f"{oauth_base}/introspect",
        "revoke": f"{oauth_base}/revoke",
    }
