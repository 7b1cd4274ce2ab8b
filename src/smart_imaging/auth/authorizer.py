"""The one authorizer, composed of parts (``parts``) and a tenant's ``quirks.Quirks``.

For each request: a tenant that is switched off refuses (``refuse_all``); no token is a bare 401
challenge when the verifier needs one; then the decision on the token, cached by its hash
(``decision_cache``): the verifier's claims judged by ``claims.check_token`` and the patient picked
by the quirks; then per-request checks (``binder``, Meditech pins). Refusals are cached as data and
raised afresh on every request; transient upstream failures (502/503) are never cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import Forbidden, Unauthorized
from ..state import SharedState
from .backend import BackendTokens
from .base import AccessGrant, AuthRequest
from .claims import check_token, normalize_audience, require_patient
from .decision_cache import DecisionCache, Outcome, Refusal, SharedOutcomes, token_key
from .discovery import Discovery
from .grant_json import grant_from_json, grant_to_json
from .parts import Authority, PatientResolver, RequestBinder, TokenVerifier, VerifiedToken
from .quirks import Quirks
from .scopes import parse_scopes

log = logging.getLogger("smart_imaging.auth")

MAX_DECISIONS = 10_000


@dataclass(frozen=True)
class DecisionRules:
    """The tenant's settings for decisions (``authorization.*``)."""

    fhir_base_url: str = ""  # where a patient named by URL must live (Epic ``sub``)
    disable_authz_checks: bool = False  # ``disableAuthzChecks``: scope and patient rules skipped
    cache_ttl: float = 0.0  # ``cacheTtl``: longest life of a grant (never past the token's exp)
    negative_ttl: float = 0.0  # ``negativeCacheTtl``: life of a 401/403
    check_audience: bool = True  # ``checkAudience``: a reported ``aud`` must name this server

    def audiences(self, request: AuthRequest) -> tuple[str, ...]:
        """The ``aud`` values accepted when none is configured: the EHR's FHIR base (apps ask for
        tokens with ``aud`` = the EHR, which names us in ``associated_endpoints``) and this
        imaging FHIR base. Empty (nothing checked) with ``checkAudience: false``."""
        if not self.check_audience:
            return ()
        found = (self.fhir_base_url, request.resource or "")
        return normalize_audience([a for a in found if a])


class ComposedAuthorizer:
    """``authorize`` / ``patient`` / ``ehr_configuration`` (the ``base.Authorizer`` protocol) from
    a token verifier, a patient resolver, vendor quirks and an optional request binder.

    ``discovery`` (SMART types) answers ``ehr_configuration``; ``backend`` is the server's own
    backend-services client shared by the parts, or None (mock, Meditech); ``authority`` is the
    tenant's own authorization server (``smart-on-fhir-independent``), or None. ``shared``: where
    decisions are shared with other replicas (``smart_imaging.state``, in this tenant's
    namespace), or None for this process only.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        patients: PatientResolver,
        quirks: Quirks,
        rules: DecisionRules,
        *,
        binder: RequestBinder | None = None,
        discovery: Discovery | None = None,
        backend: BackendTokens | None = None,
        refuse_all: Refusal | None = None,
        authority: Authority | None = None,
        clock: Callable[[], float] = time.time,
        shared: SharedState | None = None,
    ) -> None:
        self.verifier = verifier
        self.patients = patients
        self.quirks = quirks
        self.rules = rules
        self.binder = binder
        self.discovery = discovery
        self.backend = backend
        self._refuse_all = refuse_all
        self.authority = authority
        self._clock = clock
        outcomes = SharedOutcomes(shared, grant_to_json, grant_from_json) if shared is not None else None
        self._decisions: DecisionCache[AccessGrant] = DecisionCache(MAX_DECISIONS, shared=outcomes)

    async def authorize(self, request: AuthRequest) -> AccessGrant:
        if self._refuse_all is not None:
            raise self._refuse_all.error()
        if not request.token and self.verifier.needs_token:
            raise Unauthorized("missing access token", error=None)
        key = token_key(request.token or "")
        grant = await self._decisions.get_or_compute(key, lambda: self._decide(request, key))
        return await self.binder.bind(grant, request, key) if self.binder else grant

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        return await self.patients.patient(grant)

    async def ehr_configuration(self) -> dict[str, Any] | None:
        return await self.discovery.document() if self.discovery else None

    async def aclose(self) -> None:
        self._decisions.clear()
        self.patients.clear()
        if self.binder:
            self.binder.clear()
        if self.authority is not None:
            await self.authority.aclose()

    async def _decide(self, request: AuthRequest, key: str) -> Outcome[AccessGrant]:
        try:
            verified = await self.verifier.verify(request.token)
            if verified.tenant is not None and verified.tenant != request.tenant:
                raise Unauthorized("access token was issued for another tenant")
            now = self._clock()
            grant = self._grant(verified, now, request)
        except (Unauthorized, Forbidden) as exc:
            cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ else ""
            log.info("token %s refused: %s%s", key[:8], exc.message, cause)
            return Outcome.refused(exc, self.rules.negative_ttl)
        log.debug("token %s granted patient %s", key[:8], grant.patient_id)
        return Outcome.granted(grant, self._grant_ttl(verified.claims.get("exp"), now))

    def _grant(self, verified: VerifiedToken, now: float, request: AuthRequest) -> AccessGrant:
        """The grant for verified claims, or raise 401/403 (pure apart from ``now``).

        A registered backend client's token granted by ``system/`` scopes alone is a Backend
        Services grant: no patient context (each request names its patient, checked against the
        client's pre-authorized access by ``access.backend``). Any other token needs ``patient/``
        scopes and, unless the tenant says otherwise, a patient context."""
        claims, disable_authz_checks = verified.claims, self.rules.disable_authz_checks
        client_id = _str(claims.get("client_id"))
        policy = verified.policy(
            self.quirks.resources,
            not disable_authz_checks,
            defaults=self.rules.audiences(request),
            system_scopes=client_id is not None and client_id in request.system_clients,
        )
        scopes = check_token(claims, policy, now)
        backend = not disable_authz_checks and bool(scopes) and all(s.startswith("system/") for s in scopes)
        patient_id = None if backend else self.quirks.patient_of(claims, self.rules.fhir_base_url)
        optional = backend or disable_authz_checks or not self.quirks.token_names_patient
        require_patient(patient_id, optional)
        exp = claims.get("exp")
        return AccessGrant(
            patient_id=patient_id,
            disable_authz_checks=disable_authz_checks,
            scopes=scopes,
            client_id=client_id,
            subject=_str(claims.get("sub")),
            extra={**verified.extra, **({"exp": exp} if isinstance(exp, (int, float)) else {})},
            expires_at=float(exp) if isinstance(exp, (int, float)) else None,
            user=_str(claims.get("fhirUser")) or _str(claims.get("sub")),
            issuer=_str(claims.get("iss")) or verified.issuer,
            token_scopes=parse_scopes(claims.get("scope")),
            backend=backend,
        )

    def _grant_ttl(self, exp: object, now: float) -> float:
        """``cacheTtl``, but never past the token's ``exp`` (already checked to be finite)."""
        if not isinstance(exp, (int, float)):
            return self.rules.cache_ttl
        return min(exp - now, self.rules.cache_ttl)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
