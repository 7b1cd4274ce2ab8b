"""What every route needs: the tenant of the URL, its public base, the bearer token."""

from __future__ import annotations

from dataclasses import dataclass, field

from joserfc.jwk import OctKey
from starlette.requests import Request

from ..auth import AccessGrant, AuthRequest
from ..auth.bearer import bearer_token
from ..settings import Settings
from ..tenants.registry import Tenant, TenantRegistry
from .study_guard import StudyGuard


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
    request.state.patient = grant.patient_id
    return grant
