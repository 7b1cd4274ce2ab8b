"""What every route needs: the tenant of the URL, its public base, who is asking (the bearer
token's grant, its digest for token-bound capabilities, the audit actor), the tenant's access
rules and services, and rendering of access decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from joserfc.jwk import OctKey
from starlette.requests import Request

from ..access.decisions import Refused
from ..access.rules import TenantRules
from ..auth import AccessGrant, AuthRequest
from ..auth.bearer import bearer_token
from ..auth.quirks import BY_TYPE
from ..binding import BindingOpener, token_digest
from ..config.tenant import SmartAuthorization
from ..fhir.audit_event import Actor
from ..services.audit_trail import AuditTrail, parse_sinks
from ..services.registry import ServiceRegistry, TenantServices
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
    http: httpx.AsyncClient | None = None  # the app's outbound client (decision points, archive APIs)
    audit: AuditTrail | None = None  # default: from settings.audit
    services: ServiceRegistry | None = None
    bindings: BindingOpener = field(init=False)

    def __post_init__(self) -> None:
        self.bindings = BindingOpener(self.key)
        if self.audit is None:
            self.audit = AuditTrail(parse_sinks(self.settings.audit), self.key)
        if self.services is None:
            self.services = ServiceRegistry(self.http)

    @property
    def trail(self) -> AuditTrail:
        assert self.audit is not None
        return self.audit

    def of(self, tenant: Tenant) -> TenantServices:
        """The tenant's services (study policy, last-update times), built on first use."""
        assert self.services is not None
        return self.services.of(tenant.key, tenant.config)

    async def aclose(self) -> None:
        """At shutdown: open audit windows emitted, decision points closed."""
        if self.services is not None:
            await self.services.aclose()
        await self.trail.aclose()


@dataclass(frozen=True)
class Caller:
    """Who asks: the grant of the request's token, that token's digest (what bindings are bound
    to, ``binding.token_digest``) and its audit identity (never the token itself)."""

    grant: AccessGrant
    token_digest: str
    actor: Actor


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


async def identify(request: Request, tenant: Tenant, requested_patient: str | None = None) -> Caller:
    """Authorize the request's bearer token (401/403/503 raised by the authorizer)."""
    token = bearer_token(request.headers.get("authorization"))
    policy = tenant.config.policy
    asked = AuthRequest(
        token,
        tenant.key,
        requested_patient,
        resource=f"{tenant_base(request, tenant)}/fhir",
        system_clients=frozenset(policy.backend_clients) if policy else frozenset(),
    )
    grant = await tenant.authorizer.authorize(asked)
    request.state.patient_id = grant.patient_id
    state = app_state(request)
    address = request.client.host if request.client else None
    return Caller(grant, token_digest(token, state.key), state.trail.actor(grant, token, address))


async def authorize(request: Request, tenant: Tenant, requested_patient: str | None = None) -> AccessGrant:
    return (await identify(request, tenant, requested_patient)).grant


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
