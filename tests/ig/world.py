"""The IG test world: oidc-provider (the authorization server, real tokens for apps and backend
clients), a small EHR (discovery, Patient reads, ``tests/auth/smart_ehr.py``), Orthanc with the IG
examples' studies, a test policy decision point, and the imaging server over real HTTP.

Tenants of the imaging server (all ``smart-on-fhir``, introspection at oidc-provider):

- ``hospital``: the IG's examples as policy: proxies (``fhirUser`` RelatedPerson/...) see no
  confidential series (ConfidentialityCode R or V) and no scanned documents (modality OT); the
  Backend Services client ``referral-service`` may see patient 123's study A only. Orthanc's own
  LastUpdate for ``_lastUpdated``. ``hospital-fresh``: the same with ``cacheTtl: 0``.
- ``plain``: no policy (no Backend Services either), no archive update times; ``fresh``: no
  policy, ``cacheTtl: 0``.
- ``pdp``: every decision also asked of the test decision point (``cacheTtl: 0``); ``pdp-cached``:
  the same with a 30 s decision cache; ``pdp-down``: a decision point nobody answers at.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import ECKey, OctKey, RSAKey

from smart_imaging.auth.backend import SigningKey, client_assertion
from smart_imaging.binding import key_from_secret
from smart_imaging.config.tenant import TenantConfig
from tests.auth.oidc_server import OidcServer, free_port
from tests.auth.smart_ehr import EhrState
from tests.conftest import TEST_KEY, dicomweb_tenant
from tests.orthanc import Orthanc

from .pdp import PdpState
from .studies import MRN, STUDIES

APP_SCOPE = "openid launch/patient patient/ImagingStudy.rs"
SYSTEM_SCOPE = "system/ImagingStudy.rs"
MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
ACCOUNTS = {
    "maya": {"patient": "maya", "fhirUser": "Patient/maya"},
    "maya-again": {"patient": "maya", "fhirUser": "Patient/maya"},  # a second login of the same patient
    "elena-for-maya": {"patient": "maya", "fhirUser": "RelatedPerson/elena"},
    "123": {"patient": "123", "fhirUser": "Patient/123"},
}
BACKEND_CLIENTS = ("referral-service", "unregistered-service")  # registered at the AS; only the first here


def patients() -> dict[str, dict[str, Any]]:
    return {
        pid: {"resourceType": "Patient", "id": pid, "identifier": [{"type": MR, "value": mrn}]}
        for pid, mrn in MRN.items()
    }


def policy() -> dict[str, Any]:
    """The IG's two examples (authorization-patterns.md, specification.md) as a tenant policy."""
    return {
        "default": "allow",
        "confidentialityAttribute": "ConfidentialityCode",
        "confidentialityWhenAbsent": "N",
        "rules": [
            {
                "name": "proxy-excludes-confidential",
                "effect": "deny",
                "level": "series",
                "when": {"user": ["RelatedPerson/*"], "confidentiality": ["R", "V"]},
            },
            {
                "name": "proxy-excludes-scanned-documents",
                "effect": "deny",
                "level": "series",
                "when": {"user": ["RelatedPerson/*"], "modality": ["OT"]},
            },
        ],
        "backendClients": {"referral-service": {"patients": ["123"], "studies": [STUDIES["a"].uid]}},
    }


@dataclass
class Keys:
    imaging: dict[str, Any]  # the imaging server's own backend client (introspection, Patient reads)
    backend: dict[str, SigningKey] = field(default_factory=dict)  # the test's backend clients

    @classmethod
    def generate(cls) -> Keys:
        imaging = ECKey.generate_key("P-384", parameters={"kid": "ig-imaging", "alg": "ES384"})
        backend = {
            client: SigningKey(ECKey.generate_key("P-384", parameters={"kid": client}), "ES384", client)
            for client in BACKEND_CLIENTS
        }
        return cls(imaging.as_dict(private=True), backend)

    def public(self, client: str) -> dict[str, Any]:
        return {"keys": [self.backend[client].key.as_dict(private=False)]}


def oidc_config(port: int, ehr_fhir_base: str, keys: Keys) -> dict[str, Any]:
    provider = RSAKey.generate_key(2048, parameters={"kid": "ig-provider", "alg": "RS256", "use": "sig"})
    imaging_public = {k: v for k, v in keys.imaging.items() if k != "d"}
    rs = RSAKey.generate_key(2048, parameters={"kid": "unused-rs", "alg": "RS384"})
    return {
        "port": port,
        "fhirBaseUrl": ehr_fhir_base,
        "providerJwks": {"keys": [provider.as_dict(private=True)]},
        "backendJwks": {"keys": [imaging_public]},
        "backendRsaJwks": {"keys": [rs.as_dict(private=False)]},
        "secrets": {"imaging-secret": secrets.token_urlsafe(16), "ehr": secrets.token_urlsafe(16)},
        "extraScopes": [SYSTEM_SCOPE],
        "accounts": ACCOUNTS,
        "extraClients": [
            {
                "client_id": client,
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "ES384",
                "jwks": keys.public(client),
                "grant_types": ["client_credentials"],
                "response_types": [],
                "redirect_uris": [],
                "scope": SYSTEM_SCOPE,
            }
            for client in BACKEND_CLIENTS
        ],
    }


def authorization(ehr: EhrState, keys: Keys, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "smart-on-fhir",
        "fhirBaseUrl": ehr.fhir_base,
        "scope": "system/Patient.read",
        "client": {"client_id": "imaging-server", "jwkPrivate": keys.imaging},
        "introspectionAuth": "private_key_jwt",
        "timeout": 5,
        **overrides,
    }


def tenants(ehr: EhrState, keys: Keys, orthanc: Orthanc, pdp_url: str) -> dict[str, dict[str, Any]]:
    images = dicomweb_tenant(orthanc, lastUpdated="orthanc")
    point = {"url": pdp_url, "timeout": 1}
    return {
        "hospital": {"authorization": authorization(ehr, keys), "images": images, "policy": policy()},
        "hospital-fresh": {
            "authorization": authorization(ehr, keys, cacheTtl=0),
            "images": images,
            "policy": policy(),
        },
        "plain": {"authorization": authorization(ehr, keys), "images": dicomweb_tenant(orthanc)},
        "fresh": {"authorization": authorization(ehr, keys, cacheTtl=0), "images": images},
        "pdp": {
            "authorization": authorization(ehr, keys),
            "images": images,
            "policy": {"default": "allow", "decisionPoint": {**point, "cacheTtl": 0}},
        },
        "pdp-down": {  # nothing listens there: connection refused
            "authorization": authorization(ehr, keys),
            "images": images,
            "policy": {
                "default": "allow",
                "decisionPoint": {"url": f"http://127.0.0.1:{free_port()}/decide"},
            },
        },
        "pdp-cached": {
            "authorization": authorization(ehr, keys),
            "images": images,
            "policy": {"default": "allow", "decisionPoint": {**point, "cacheTtl": 30}},
        },
    }


@dataclass
class World:
    oidc: OidcServer
    ehr: EhrState
    base: str  # the imaging server
    keys: Keys
    pdp: PdpState
    audit_file: Path
    configs: dict[str, TenantConfig] = field(default_factory=dict)  # the imaging server's tenants
    key: OctKey = field(default_factory=lambda: key_from_secret(TEST_KEY)[0])

    def token(self, account: str, scope: str = APP_SCOPE, **kwargs: Any) -> str:
        """A real access token of the app (authorization code + PKCE at oidc-provider)."""
        return str(self.oidc.app_token(account, scope, **kwargs)["access_token"])

    def backend_token(self, client: str = "referral-service", scope: str = SYSTEM_SCOPE) -> str:
        """SMART Backend Services: client_credentials with a private_key_jwt assertion (ES384)."""
        endpoint = f"{self.oidc.issuer}/token"
        form = {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(client, self.keys.backend[client], endpoint),
        }
        response = httpx.post(endpoint, data=form, timeout=10)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def search(self, tenant: str, token: str | None, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(
            f"{self.base}/{tenant}/fhir/ImagingStudy", params=params, headers=headers, timeout=30
        )

    def get(self, url: str, token: str | None, accept: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if accept:
            headers["Accept"] = accept
        return httpx.get(url, headers=headers, timeout=30)


def studies_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def endpoints(bundle: dict[str, Any]) -> dict[str, str]:
    """Study UID -> WADO-RS address, contained or response-local (FHIR Bundle resolution)."""
    by_url = {e["fullUrl"]: e["resource"] for e in bundle.get("entry", [])}
    found = {}
    for study in studies_of(bundle):
        reference = study["endpoint"][0]["reference"]
        if reference.startswith("#"):
            endpoint = next(c for c in study["contained"] if c["id"] == reference[1:])
        else:
            endpoint = by_url[reference]
        found[study["id"]] = endpoint["address"]
    return found


def series_uids(study: dict[str, Any]) -> list[str]:
    return [s["uid"] for s in study.get("series", [])]
