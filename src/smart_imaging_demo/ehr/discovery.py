"""Discovery documents. Pure.

- ``.well-known/smart-configuration``: SMART App Launch 2.x section 7 (Conformance), with
  ``associated_endpoints`` naming the imaging server: capability ``smart-imaging-access`` and
  the Argonaut SMART Imaging IG's app-launch capability for a server that accepts this
  sandbox's tokens, ``smart-imaging-access-dual-launch`` (the reference server's) for one with
  its own authorization server, to be launched a second time.
- ``metadata``: a FHIR R4 CapabilityStatement with the SMART security extension
  ("oauth-uris", SMART App Launch 1.0 / still recognised by 2.x clients).
- ``.well-known/openid-configuration``: OpenID Connect Discovery 1.0 section 3.
"""

from __future__ import annotations

from typing import Any

from smart_imaging_demo.ehr import pkce
from smart_imaging_demo.ehr.assertion import ALGORITHMS
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.keys import ID_TOKEN_ALG
from smart_imaging_demo.ehr.scopes import SCOPES_SUPPORTED
from smart_imaging_demo.ehr.tokens import GRANT_TYPES

CAPABILITIES = (
    "launch-standalone",
    "client-public",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "context-passthrough-banner",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
)
IMAGING_ACCESS = "smart-imaging-access"
IG_APP_LAUNCH = "http://fhir.org/argonaut/smart-imaging/capabilities/app-launch"
DUAL_LAUNCH = "smart-imaging-access-dual-launch"
PROMPT_VALUES = ("none", "login", "consent")  # the consent page is always shown, except for none
FHIR_TYPES = ("Patient", "Condition", "AllergyIntolerance", "MedicationRequest")


def smart_configuration(config: EhrConfig) -> dict[str, Any]:
    document: dict[str, Any] = {
        "issuer": config.issuer,
        "jwks_uri": config.jwks_uri,
        "authorization_endpoint": config.authorization_endpoint,
        "token_endpoint": config.token_endpoint,
        "introspection_endpoint": config.introspection_endpoint,
        "revocation_endpoint": config.revocation_endpoint,
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": list(pkce.SUPPORTED_METHODS),
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": ["bearer", "private_key_jwt"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "prompt_values_supported": list(PROMPT_VALUES),
        "capabilities": list(CAPABILITIES),
    }
    endpoints = associated_endpoints(config)
    if endpoints:
        document["associated_endpoints"] = endpoints
    return document


def associated_endpoints(config: EhrConfig) -> list[dict[str, Any]]:
    endpoints = []
    if config.imaging_fhir_base_url:
        endpoints.append(
            {"url": config.imaging_fhir_base_url, "capabilities": [IMAGING_ACCESS, IG_APP_LAUNCH]}
        )
    if config.dual_imaging_fhir_base_url:
        endpoints.append({"url": config.dual_imaging_fhir_base_url, "capabilities": [DUAL_LAUNCH]})
    return endpoints


def openid_configuration(config: EhrConfig) -> dict[str, Any]:
    return {
        "issuer": config.issuer,
        "authorization_endpoint": config.authorization_endpoint,
        "token_endpoint": config.token_endpoint,
        "jwks_uri": config.jwks_uri,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
        "scopes_supported": ["openid", "fhirUser"],
        "prompt_values_supported": list(PROMPT_VALUES),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
    }


def capability_statement(config: EhrConfig) -> dict[str, Any]:
    oauth_uris = {
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [
            {"url": "authorize", "valueUri": config.authorization_endpoint},
            {"url": "token", "valueUri": config.token_endpoint},
            {"url": "introspect", "valueUri": config.introspection_endpoint},
            {"url": "revoke", "valueUri": config.revocation_endpoint},
        ],
    }
    service = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }
        ],
        "text": "OAuth2 using SMART-on-FHIR profile",
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2024-01-01",
        "kind": "instance",
        "software": {"name": "smart-imaging EHR sandbox"},
        "implementation": {"description": "Demo EHR sandbox", "url": config.fhir_base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"extension": [oauth_uris], "service": [service], "cors": True},
                "resource": [_resource(t) for t in FHIR_TYPES],
            }
        ],
    }


def _resource(resource_type: str) -> dict[str, Any]:
    params = (
        [
            {"name": "_id", "type": "token"},
            {"name": "identifier", "type": "token"},
            {"name": "name", "type": "string"},
        ]
        if resource_type == "Patient"
        else [{"name": "patient", "type": "reference"}]
    )
    return {
        "type": resource_type,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": params,
    }
