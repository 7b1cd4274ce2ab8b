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

    def __repr__(self) -> str:  # keep tokens out of logs and tracebacks
        return f"AuthRequest(tenant={self.tenant!r}, token={'***' if self.token else None})"


@dataclass(frozen=True)
class AccessGrant:
    """The outcome of authorization for one request.

    ``patient_id`` is the FHIR Patient id the token is bound to. ``disable_authz_checks`` is the
    tenant's ``disableAuthzChecks``: patient binding is skipped (debug tenants only).
    """

    patient_id: str | None
    disable_authz_checks: bool = False
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    subject: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


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
