"""What differs between EHRs, as data and small pure functions (DESIGN.md rule 2: routes never
branch on vendor; only the ``Quirks`` a tenant's ``authorization.type`` picks do).

- Epic (``smart-on-fhir-with-epic-bugfixes``): its smart-configuration names no introspection
  endpoint, so it is derived from the token endpoint (``.../oauth2/token`` ->
  ``.../oauth2/introspect``) unless the config sets one; introspection may carry the patient only as
  the ``sub`` URL ``{fhirBaseUrl}/Patient/{id}``, accepted only under this tenant's ``fhirBaseUrl``;
  apps hold SMART v1 scopes, where ``patient/DiagnosticReport.read`` also grants imaging.
- Meditech (``smart-on-fhir-with-meditech-bugfixes``): no backend services, so introspection uses
  the client's secret (``client_secret_basic``); introspection names no patient, so the patient
  comes from the request, pinned per token (``pins``); v1 report scopes as for Epic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .claims import FHIR_ID, patient_claim
from .discovery import SmartEndpoints
from .scopes import IMAGING_RESOURCES

# Apps for these EHRs ask for imaging through reports: v1 ``patient/DiagnosticReport.read``.
REPORT_RESOURCES = (*IMAGING_RESOURCES, "DiagnosticReport")

PatientOf = Callable[[Mapping[str, Any], str], str | None]  # (claims, fhirBaseUrl) -> FHIR id
IntrospectionEndpoint = Callable[[SmartEndpoints, str | None], str]  # (endpoints, configured)


def launch_patient(claims: Mapping[str, Any], fhir_base_url: str) -> str | None:
    """The SMART ``patient`` launch context (SMART App Launch 2.x, "Launch context")."""
    return patient_claim(claims)


def launch_patient_or_sub_url(claims: Mapping[str, Any], fhir_base_url: str) -> str | None:
    """Epic: the ``patient`` claim, else ``sub`` = ``{fhirBaseUrl}/Patient/{id}`` of this EHR only."""
    found = patient_claim(claims)
    if found is not None:
        return found
    sub = claims.get("sub")
    prefix = fhir_base_url.rstrip("/") + "/Patient/"
    if isinstance(sub, str) and sub.startswith(prefix) and FHIR_ID.fullmatch(sub[len(prefix) :]):
        return sub[len(prefix) :]
    return None


def configured_patient(claims: Mapping[str, Any], fhir_base_url: str) -> str | None:
    """The mock: the patient id the tenant's config names, taken as it is."""
    value = claims.get("patient")
    return value if isinstance(value, str) and value else None


def named_introspection_endpoint(endpoints: SmartEndpoints, configured: str | None) -> str:
    """RFC 7662 endpoint from the config, else from smart-configuration (``endpoints`` holds both)."""
    return endpoints.require("introspection_endpoint")


def introspection_beside_token_endpoint(endpoints: SmartEndpoints, configured: str | None) -> str:
    """Epic: the configured endpoint, else ``.../token`` -> ``.../introspect``, else the named one."""
    if configured:
        return configured
    base, slash, last = endpoints.require("token_endpoint").rstrip("/").rpartition("/")
    if slash and last == "token":
        return f"{base}/introspect"
    return endpoints.require("introspection_endpoint")


@dataclass(frozen=True)
class Quirks:
    """How one kind of EHR differs from plain SMART on FHIR."""

    resources: tuple[str, ...] = IMAGING_RESOURCES  # resources whose read scope grants imaging
    patient_of: PatientOf = launch_patient
    introspection_endpoint: IntrospectionEndpoint = named_introspection_endpoint
    introspection_auth: str | None = None  # forced client authentication at introspection
    needs_backend: bool = True  # a backend-services client (private JWK) is required
    token_names_patient: bool = True  # a token without patient context is refused (403)
    patient_from_request: bool = False  # pin each token to the first patient searched


STANDARD = Quirks()
EPIC = Quirks(
    resources=REPORT_RESOURCES,
    patient_of=launch_patient_or_sub_url,
    introspection_endpoint=introspection_beside_token_endpoint,
)
MEDITECH = Quirks(
    resources=REPORT_RESOURCES,
    introspection_auth="client_secret_basic",
    needs_backend=False,
    token_names_patient=False,
    patient_from_request=True,
)
MOCK = Quirks(patient_of=configured_patient, needs_backend=False, token_names_patient=False)

BY_TYPE: dict[str, Quirks] = {
    "smart-on-fhir": STANDARD,
    "smart-on-fhir-independent": STANDARD,
    "smart-on-fhir-jwt": STANDARD,
    "smart-on-fhir-with-epic-bugfixes": EPIC,
    "smart-on-fhir-with-meditech-bugfixes": MEDITECH,
    "mock": MOCK,
}
