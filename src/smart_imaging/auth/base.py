"""The authorizer interface.

Every FHIR and WADO request is authorized on its own (SMART Imaging Access IG): the route
turns the request into an :class:`AuthRequest`, the tenant's authorizer answers with an
:class:`AccessGrant` or raises ``Unauthorized`` (401) / ``Forbidden`` (403) /
``Unavailable`` (503) / ``UpstreamError`` (502).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class AuthRequest:
    """What an authorizer may look at. The token is never logged or echoed."""

    token: str | None
    tenant: str
    requested_patient: str | None = None  # ?patient= of a FHIR search, when present
    # This request's imaging FHIR base: an ``aud`` the token may carry ("issued for use at this
    # resource server", IG "Token validation"), besides the EHR's ``fhirBaseUrl``.
    resource: str | None = None
    # Clients whose system-level tokens grant (SMART Backend Services mode, ``policy.backendClients``);
    # empty: system scopes never grant (IG: a server not offering the mode SHALL NOT grant on them).
    system_clients: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # keep tokens out of logs and tracebacks
        return f"AuthRequest(tenant={self.tenant!r}, token={'***' if self.token else None})"


@dataclass(frozen=True)
class AccessGrant:
    """The outcome of authorization for one request.

    ``patient_id`` is the FHIR Patient id the token is bound to. ``disable_authz_checks`` is the
    tenant's ``disableAuthzChecks``: patient binding is skipped (debug tenants only). ``scopes``
    are the scopes that grant imaging access.

    Also known from the validated token (not compared, so grants stay equal by what they allow):
    ``expires_at`` (its ``exp``: capabilities never outlive it), ``user`` (``fhirUser``, else
    ``sub``: for policy rules and audit), ``issuer``, ``token_scopes`` (every scope it carries) and
    ``backend`` (SMART Backend Services: granted by ``system/`` scopes, no patient context; the
    patient comes from each request and the client's pre-authorized access).
    """

    patient_id: str | None
    disable_authz_checks: bool = False
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    subject: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    expires_at: float | None = field(default=None, compare=False)
    user: str | None = field(default=None, compare=False)
    issuer: str | None = field(default=None, compare=False)
    token_scopes: frozenset[str] = field(default=frozenset(), compare=False)
    backend: bool = field(default=False, compare=False)


class Authorizer(Protocol):
    async def authorize(self, request: AuthRequest) -> AccessGrant:
        """Validate the request's access token and return its grant, or raise."""
        ...

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        """The FHIR Patient resource of the grant (for MRN lookup), or None when unknown."""
        ...

    async def ehr_configuration(self) -> dict[str, Any] | None:
        """The EHR's ``.well-known/smart-configuration`` (for discovery documents), or None."""
        ...

    async def aclose(self) -> None:
        """Release resources (connections, caches)."""
        ...
