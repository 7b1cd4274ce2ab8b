"""FHIR routes of a tenant: ``metadata``, ``.well-known/smart-configuration`` and ImagingStudy
(search and read: ``routes.imaging_study``).

Discovery names what the tenant offers (``fhir.capability.Offer``): the IG's App Launch capability
for SMART tenants, Backend Services where the tenant registers backend clients
(``policy.backendClients``), and where ``_lastUpdated`` comes from.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..config.tenant import DicomWebImages, FolderImages, SmartAuthorization
from ..fhir.capability import (
    LastUpdated,
    Offer,
    capability_statement,
    own_authorization_server,
    own_oauth_uris,
    smart_configuration,
)
from ..oauth.server import server_of
from ..tenants.registry import Tenant
from .context import tenant_base, tenant_of
from .imaging_study import FhirResponse, imaging_study_read, imaging_study_search

__all__ = ["FhirResponse", "imaging_study_read", "imaging_study_search", "metadata", "offer", "smart_config"]


def offer(tenant: Tenant) -> Offer:
    """What the tenant offers, for discovery (see the module doc)."""
    auth, images, policy = tenant.config.authorization, tenant.config.images, tenant.config.policy
    smart = isinstance(auth, SmartAuthorization)
    ehr_tokens = smart and server_of(tenant.authorizer) is None  # our own AS issues no system tokens
    last: LastUpdated = "study-date"
    if isinstance(images, FolderImages):
        last = "files"
    elif isinstance(images, DicomWebImages) and images.lastUpdated:
        last = "archive"
    return Offer(
        app_launch=smart,
        backend_services=bool(ehr_tokens and policy is not None and policy.backend_clients),
        last_updated=last,
    )


DISCOVERY_WAIT = 3.0  # seconds: metadata must not hang on an EHR that does not answer


async def metadata(request: Request) -> FhirResponse:
    tenant = tenant_of(request)
    base = tenant_base(request, tenant)
    if server_of(tenant.authorizer) is not None:  # dual launch: our own authorization server
        oauth = own_oauth_uris(f"{base}/oauth")
        return FhirResponse(capability_statement(f"{base}/fhir", oauth, offer(tenant)))
    ehr = await _ehr_configuration(tenant, DISCOVERY_WAIT)
    oauth = {
        k: ehr[v]
        for k, v in (
            ("authorize", "authorization_endpoint"),
            ("token", "token_endpoint"),
            ("introspect", "introspection_endpoint"),
        )
        if ehr and ehr.get(v)
    }
    return FhirResponse(capability_statement(f"{base}/fhir", oauth, offer(tenant)))


async def smart_config(request: Request) -> JSONResponse:
    tenant = tenant_of(request)
    base = tenant_base(request, tenant)
    server = server_of(tenant.authorizer)
    if server is not None:
        methods, scopes = server.auth_methods, server.scopes
        return JSONResponse(own_authorization_server(f"{base}/fhir", f"{base}/oauth", methods, scopes))
    ehr = await _ehr_configuration(tenant)
    return JSONResponse(smart_configuration(f"{base}/fhir", ehr, offer(tenant)))


async def _ehr_configuration(tenant: Tenant, wait: float | None = None) -> dict[str, Any] | None:
    """The EHR's discovery document, best effort; with ``wait``, an EHR that does not answer in
    that many seconds leaves its endpoints out (the CapabilityStatement: ``DISCOVERY_WAIT``)."""
    try:
        async with asyncio.timeout(wait):
            return await tenant.authorizer.ehr_configuration()
    except Exception:  # noqa: BLE001 - discovery documents are best effort
        return None
