"""The demo's imaging tenants, all over the same sample folder:

- ``demo``: ``smart-on-fhir``: the sandbox's tokens, introspected over HTTP with the imaging
  server's backend-services client.
- ``dual``: ``smart-on-fhir-independent``: the imaging server's own authorization server
  (dual launch). Its EHR leg is a client registered at the sandbox (``private_key_jwt``, one
  redirect URI per public name of the demo, approved silently for ``DUAL_EHR_SCOPE``); the viewer
  is a registered public client of its own, and other apps may use it in open mode (loopback
  redirect URIs only), as a sandbox should allow.
- ``open``: ``mock`` authorization with checks off, every study listed (for debugging).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smart_imaging.config.tenant import TenantConfig

from .ehr import BackendClient

TENANT = "demo"
DUAL_TENANT = "dual"
BACKEND_CLIENT_ID = "smart-imaging-demo"
BACKEND_SCOPE = "system/Patient.read"
DUAL_CLIENT_ID = "smart-imaging-dual"  # the dual tenant's own client at the sandbox (its EHR leg)
DUAL_EHR_SCOPE = "openid fhirUser launch/patient patient/Patient.rs"
VIEWER_CLIENT_ID = "smart-imaging-viewer"  # settings.js DEFAULT_CLIENT_ID


def public_jwk(private_jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in private_jwk.items() if k != "d"}


def demo_tenant(ehr_fhir_base: str, private_jwk: dict[str, Any], samples: Path, index: Path) -> TenantConfig:
    return TenantConfig.model_validate(
        {
            "authorization": {
                "type": "smart-on-fhir",
                "fhirBaseUrl": ehr_fhir_base,
                "scope": BACKEND_SCOPE,
                "client": {"client_id": BACKEND_CLIENT_ID, "jwkPrivate": private_jwk},
            },
            "images": _folder(samples, index),
        }
    )


def dual_tenant(
    ehr_fhir_base: str, private_jwk: dict[str, Any], samples: Path, index: Path, origins: Sequence[str]
) -> TenantConfig:
    """``origins``: every public origin of the demo (the viewer's redirect URI is ``{origin}/``)."""
    viewer = {
        "client_id": VIEWER_CLIENT_ID,
        "name": "SMART Imaging Viewer (demo)",
        "redirect_uris": [f"{o}/" for o in origins],
    }
    return TenantConfig.model_validate(
        {
            "authorization": {
                "type": "smart-on-fhir-independent",
                "fhirBaseUrl": ehr_fhir_base,
                "client": {"client_id": DUAL_CLIENT_ID, "jwkPrivate": private_jwk},
                "oauth": {"clients": [viewer], "openClients": True, "ehrScope": DUAL_EHR_SCOPE},
            },
            "images": _folder(samples, index),
        }
    )


def open_tenant(samples: Path, index: Path) -> TenantConfig:
    return TenantConfig.model_validate(
        {
            "authorization": {"type": "mock", "disableAuthzChecks": True},
            "images": {**_folder(samples, index), "lookup": "all-studies-on-server"},
        }
    )


def sandbox_clients(
    backend_jwk: dict[str, Any], dual_jwk: dict[str, Any], origins: Sequence[str]
) -> tuple[BackendClient, ...]:
    """The imaging server's clients at the sandbox: the ``demo`` tenant's backend client and the
    ``dual`` tenant's EHR-leg client (its ``ehr-callback`` under each public origin)."""
    return (
        BackendClient(
            client_id=BACKEND_CLIENT_ID, jwks={"keys": [public_jwk(backend_jwk)]}, scope=BACKEND_SCOPE
        ),
        BackendClient(
            client_id=DUAL_CLIENT_ID,
            jwks={"keys": [public_jwk(dual_jwk)]},
            scope=BACKEND_SCOPE,
            redirect_uris=tuple(f"{o}/{DUAL_TENANT}/oauth/ehr-callback" for o in origins),
            silent_scope=DUAL_EHR_SCOPE,
        ),
    )


def _folder(samples: Path, index: Path) -> dict[str, Any]:
    return {"type": "folder", "path": str(samples), "index": str(index)}
