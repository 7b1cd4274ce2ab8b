"""The parts an authorizer is composed of (``authorizer.ComposedAuthorizer``), as protocols.

- ``TokenVerifier``: turns the bearer token into claims its issuer vouches for (RFC 7662
  introspection, a locally verified JWT, or the mock's configured claims), plus what the tenant
  expects of them. The decision on those claims is ``claims.check_token``, the same for all.
- ``PatientResolver``: the FHIR Patient resource of a grant (read from the EHR, or configured);
  the routes take the MRN from it by the tenant's FHIRPath expressions (``fhir.mrn``).
- ``Authority``: the tenant's own authorization server (``smart-on-fhir-independent``), when it
  has one; the ``oauth`` routes serve it.
- ``RequestBinder``: per-request checks after the (cached) token decision, for EHRs whose tokens
  name no patient (Meditech: the token is pinned to the first patient searched).

Vendor differences that are data or one small function are ``quirks.Quirks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .base import AccessGrant, AuthRequest
from .claims import TokenPolicy
from .scopes import IMAGING_RESOURCES


@dataclass(frozen=True)
class VerifiedToken:
    """Claims the token's issuer vouches for (``active`` set) and what to expect of them."""

    claims: Mapping[str, Any]
    issuer: str | None = None  # expected ``iss`` (configured or discovered)
    audience: tuple[str, ...] = ()  # expected ``aud`` (one of)
    require_iss_aud: bool = False  # local JWTs must carry both
    tenant: str | None = None  # tokens bound to one tenant (our own): the request's must match
    extra: Mapping[str, Any] = field(default_factory=dict)  # copied into AccessGrant.extra
    # No ``audience`` configured: check a reported ``aud`` against the tenant's defaults (the EHR's
    # FHIR base and this imaging FHIR base); False for tokens bound to a tenant by other means.
    default_audience: bool = False

    def policy(
        self,
        resources: tuple[str, ...] = IMAGING_RESOURCES,
        check_scopes: bool = True,
        *,
        defaults: tuple[str, ...] = (),
        system_scopes: bool = False,
    ) -> TokenPolicy:
        """``defaults``: the audiences expected when none is configured (``default_audience``)."""
        return TokenPolicy(
            issuer=self.issuer,
            audience=self.audience or (defaults if self.default_audience else ()),
            resources=resources,
            check_scopes=check_scopes,
            require_iss_aud=self.require_iss_aud,
            system_scopes=system_scopes,
        )


class TokenVerifier(Protocol):
    """Verifies a bearer token. ``needs_token``: a request without one is a bare 401 challenge.

    ``verify`` raises ``Unauthorized`` for a token that is not genuine (cached briefly as a
    refusal), ``Unavailable``/``UpstreamError`` when the issuer cannot be asked (never cached).
    """

    @property
    def needs_token(self) -> bool: ...

    async def verify(self, token: str | None) -> VerifiedToken: ...


class PatientResolver(Protocol):
    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        """The FHIR Patient resource of the grant, or None when the grant names none."""
        ...

    def clear(self) -> None:
        """Forget cached resources."""
        ...


class RequestBinder(Protocol):
    async def bind(self, grant: AccessGrant, request: AuthRequest, key: str) -> AccessGrant:
        """The grant for this request (``key``: the token's hash), or raise ``Forbidden``."""
        ...

    def clear(self) -> None: ...


class Authority(Protocol):
    """A tenant's own authorization server (``smart_imaging.oauth.server``), closed with it."""

    async def aclose(self) -> None: ...
