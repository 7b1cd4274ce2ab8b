"""What every route needs: the tenant of the URL, its public base, the bearer token, the
tenant's access rules, and rendering of access decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from joserfc.jwk import OctKey
from starlette.requests import Request

from ..access.decisions import Refused
from ..access.rules import TenantRules
from ..auth import AccessGrant, AuthRequest
from ..auth.bearer import bearer_token
from ..auth.quirks import BY_TYPE
from ..config.tenant import SmartAuthorization
from ..settings import Settings
from ..tenants.registry import Tenant, TenantRegistry
from .study_guard import StudyGuard

T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    registry: TenantRegistry
    key: OctKey
    study_guard: StudyGuard = field(default_factory=StudyGuard)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.smart_imaging
    return state


def tenant_of(request: Request) -> Tenant:
    registry = app_state(request).registry
    encoded = request.path_params.get("config")
    tenant = registry.dynamic(encoded) if encoded is not None else registry.get(request.path_params["tenant"])
    request.state.tenant = tenant.key
    return tenant


def public_base(request: Request) -> str:
    configured = app_state(request).settings.base_url
    return (configured or str(request.base_url)).rstrip("/")


def tenant_base(request: Request, tenant: Tenant) -> str:
    return f"{public_base(request)}/{tenant.path}"


async def authorize(request: Request, tenant: Tenant, requested_patient: str | None = None) -> AccessGrant:
    token = bearer_token(request.headers.get("authorization"))
    grant = await tenant.authorizer.authorize(AuthRequest(token, tenant.key, requested_patient))
    request.state.patient_id = grant.patient_id
    return grant


def access_rules(tenant: Tenant) -> TenantRules:
    """The access rules of a tenant's config (``smart_imaging.access`` never reads the schema)."""
    auth, images = tenant.config.authorization, tenant.config.images
    smart = auth if isinstance(auth, SmartAuthorization) else None
    return TenantRules(
        lookup=images.lookup,
        disable_authz_checks=auth.disableAuthzChecks,
        mrn_expressions=tuple(images.mrn),
        mrn_fallback="mrn" not in images.model_fields_set,
        authorizer="real" if smart else "mock",
        patient_from_request=bool(smart and BY_TYPE[smart.type].patient_from_request),
        allow_patient_from_request=bool(smart and smart.allowInsecurePatientFromRequest),
        fhir_base_url=smart.fhirBaseUrl if smart else "",
    )


def enforce(decision: T | Refused) -> T:
    """Render an access decision: raise the refusal's error, else hand back the allowed scope."""
    if isinstance(decision, Refused):
        raise decision.error()
    return decision
