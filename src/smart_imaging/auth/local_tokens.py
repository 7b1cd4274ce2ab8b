"""The parts for ``smart-on-fhir-independent``: tokens the tenant's own authorization server
issued (``smart_imaging.oauth``), checked locally, and the Patient stored with them.

``LocalTokenVerifier`` asks the token store (a ``TokenLookup``) on every request, so that
revocation and expiry take effect at once (the composed authorizer caches no decision for this
type). The store's claims go through the same ``claims.check_token`` as every other token; the
token's tenant must be the one of the request (``VerifiedToken.tenant``). ``StoredPatients``
answers the Patient resource read from the EHR during the launch, kept with the grant, so that
MRN lookup needs no EHR call (and no backend-services client) later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import Unauthorized
from .base import AccessGrant
from .parts import VerifiedToken


@dataclass(frozen=True)
class LocalToken:
    """An active token: its introspection claims (RFC 7662), tenant and Patient resource."""

    claims: dict[str, Any]
    tenant: str
    patient: dict[str, Any] | None = field(default=None, repr=False)


class TokenLookup(Protocol):
    async def lookup(self, token: str) -> LocalToken | None:
        """The active access token, or None (unknown, expired, revoked, or a refresh token)."""
        ...


class LocalTokenVerifier:
    needs_token = True

    def __init__(self, tokens: TokenLookup) -> None:
        self._tokens = tokens

    async def verify(self, token: str | None) -> VerifiedToken:
        if not token:
            raise Unauthorized("missing access token", error=None)
        found = await self._tokens.lookup(token)
        if found is None:
            raise Unauthorized("access token is not active")
        extra = {"patient": found.patient} if found.patient is not None else {}
        return VerifiedToken({**found.claims, "active": True}, tenant=found.tenant, extra=extra)


class StoredPatients:
    """The Patient the grant carries (``AccessGrant.extra["patient"]``, set by the verifier)."""

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        patient = grant.extra.get("patient")
        if isinstance(patient, dict) and patient.get("id") == grant.patient_id:
            return dict(patient)
        return None

    def clear(self) -> None:
        return None
