"""CapabilityStatement (FHIR R4) and SMART configuration documents for an imaging tenant.

The CapabilityStatement instantiates the IG's ``smart-imaging-server`` requirements statement
(capability.fsh) and names the IG's SmartImagingStudy profile; discovery advertises the IG's
capability strings for the modes a tenant offers (specification.md "Discovery"): App Launch for
every SMART tenant, Backend Services where the tenant registers backend clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .. import __version__

IG = "http://fhir.org/argonaut/smart-imaging"
SERVER_REQUIREMENTS = f"{IG}/CapabilityStatement/smart-imaging-server"
STUDY_PROFILE = f"{IG}/StructureDefinition/smart-imaging-study"
SEARCH_PARAMS = [
    ("patient", "reference", "http://hl7.org/fhir/SearchParameter/clinical-patient"),
    ("subject", "reference", "http://hl7.org/fhir/SearchParameter/ImagingStudy-subject"),
    ("identifier", "token", "http://hl7.org/fhir/SearchParameter/clinical-identifier"),
    ("started", "date", "http://hl7.org/fhir/SearchParameter/ImagingStudy-started"),
    ("_lastUpdated", "date", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"),
]
_STARTED = datetime.now(UTC).isoformat(timespec="seconds")

IMAGING_ACCESS = "smart-imaging-access"
IG_APP_LAUNCH = f"{IG}/capabilities/app-launch"
IG_BACKEND_SERVICES = f"{IG}/capabilities/backend-services"
DUAL_LAUNCH = "smart-imaging-access-dual-launch"  # the reference server's independent mode
APP_SCOPES = ("patient/ImagingStudy.rs", "patient/ImagingStudy.read")
SYSTEM_SCOPE = "system/ImagingStudy.rs"
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
LastUpdated = Literal["archive", "files", "study-date"]
LAST_UPDATED_DOC: dict[str, str] = {
    "archive": "the archive's own last-update time of the study (e.g. Orthanc's LastUpdate), also "
    "in meta.lastUpdated",
    "files": "the latest modification time of the study's files, also in meta.lastUpdated",
    "study-date": "this archive reports no modification time: _lastUpdated is evaluated on the "
    "study's start (StudyDate/StudyTime) and meta.lastUpdated is absent, so a study added or "
    "changed after it was acquired is not found by _lastUpdated=gt...",
}
SECURITY = (
    "SMART App Launch (patient/ImagingStudy.rs; the token's patient context must match the "
    "patient searched or owning the study, else 403){backend}. Tokens are validated on every FHIR "
    "and WADO-RS request (active, issuer, audience, scopes). Each Endpoint address is a capability "
    "bound to the access token that searched: other tokens get 403; it expires with that token or "
    "after the tenant's bindingTtl, whichever is first. Studies and series the tenant's access "
    "policy refuses are omitted from search and refused on retrieval; a study allowed only in part "
    "lists its allowed series, which are retrieved series by series (whole-study requests: 403)."
)


@dataclass(frozen=True)
class Offer:
    """What a tenant offers, for its discovery documents."""

    app_launch: bool = True  # SMART App Launch tokens (every SMART tenant)
    backend_services: bool = False  # registered backend clients (policy.backendClients)
    last_updated: LastUpdated = "study-date"  # where _lastUpdated comes from


def capability_statement(
    fhir_base: str, oauth: dict[str, str] | None, offer: Offer | None = None
) -> dict[str, Any]:
    offer = offer or Offer()
    rest: dict[str, Any] = {"mode": "server", "resource": [_imaging_study(offer)]}
    rest["security"] = _security(oauth, offer)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "kind": "instance",
        "instantiates": [SERVER_REQUIREMENTS],
        "software": {"name": "smart-imaging", "version": __version__},
        "implementation": {"description": "SMART Imaging Access server", "url": fhir_base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }


def _imaging_study(offer: Offer) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": n, "type": t, "definition": d} for n, t, d in SEARCH_PARAMS]
    for param in params:
        if param["name"] == "_lastUpdated":
            param["documentation"] = "Evaluated on " + LAST_UPDATED_DOC[offer.last_updated]
    params.append(
        {
            "name": "patient.identifier",
            "type": "token",
            "documentation": "Chained search on the patient's identifier (system|value)",
        }
    )
    return {
        "type": "ImagingStudy",
        "supportedProfile": [STUDY_PROFILE],
        "documentation": "_lastUpdated: " + LAST_UPDATED_DOC[offer.last_updated] + ". read answers "
        "404 for a study that is unknown, another patient's, or withheld by the access policy.",
        "interaction": [{"code": "search-type"}, {"code": "read"}],
        "searchInclude": ["ImagingStudy:endpoint"],
        "searchParam": params,
    }


def _security(oauth: dict[str, str] | None, offer: Offer) -> dict[str, Any]:
    backend = (
        "; SMART Backend Services (system/ImagingStudy.rs) for registered clients, limited to their "
        "pre-authorized access"
        if offer.backend_services
        else ""
    )
    security: dict[str, Any] = {"description": SECURITY.format(backend=backend)}
    if oauth:
        security["service"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ]
        security["extension"] = [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": k, "valueUri": v} for k, v in oauth.items()],
            }
        ]
    return security


COPIED = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "grant_types_supported",
    "response_types_supported",
    "code_challenge_methods_supported",
    "scopes_supported",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
)


def mode_capabilities(offer: Offer) -> list[str]:
    """The IG's capability strings for the modes offered, with ``smart-imaging-access``."""
    found = [IMAGING_ACCESS]
    if offer.app_launch:
        found.append(IG_APP_LAUNCH)
    if offer.backend_services:
        found.append(IG_BACKEND_SERVICES)
    return found


def smart_configuration(
    fhir_base: str, ehr: dict[str, Any] | None, offer: Offer | None = None
) -> dict[str, Any]:
    """``.well-known/smart-configuration`` of the imaging FHIR base.

    Authorization happens at the EHR, so its endpoints are repeated here when known; the
    ``associated_endpoints`` entry names this imaging base with the IG's capability strings.
    App Launch: ``authorization_code`` in ``grant_types_supported``; Backend Services:
    ``client_credentials`` and asymmetric client authentication (``private_key_jwt``, ES384/RS384),
    ``system/ImagingStudy.rs`` in ``scopes_supported`` (IG "Discovery").
    """
    offer = offer or Offer()
    doc: dict[str, Any] = {key: ehr[key] for key in COPIED if ehr and ehr.get(key)}
    capabilities = mode_capabilities(offer)
    if offer.app_launch:
        _add(doc, "grant_types_supported", "authorization_code")
        _add(doc, "scopes_supported", *APP_SCOPES)
    if offer.backend_services:
        _add(doc, "grant_types_supported", "client_credentials")
        _add(doc, "scopes_supported", SYSTEM_SCOPE)
        _add(doc, "token_endpoint_auth_methods_supported", "private_key_jwt")
        if not doc.get("token_endpoint_auth_signing_alg_values_supported"):
            doc["token_endpoint_auth_signing_alg_values_supported"] = ["ES384", "RS384"]
    doc["capabilities"] = sorted(set((ehr or {}).get("capabilities", [])) | set(capabilities))
    doc["associated_endpoints"] = [{"url": fhir_base, "capabilities": capabilities}]
    return doc


def _add(doc: dict[str, Any], key: str, *values: str) -> None:
    found = doc.get(key)
    listed = [v for v in found if isinstance(v, str)] if isinstance(found, list) else []
    doc[key] = listed + [v for v in values if v not in listed]


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
