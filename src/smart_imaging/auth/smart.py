"""The ``smart-on-fhir`` authorizer family: trust exactly what the EHR says about each token.

``SmartAuthorizer`` introspects the app's token (RFC 7662) at the EHR, decides by
``claims.check_token`` and caches the decision by a hash of the token (``decision_cache``).
The patient's FHIR resource is read from the EHR with the server's own backend-services token.
Vendor quirks live in ``vendors``; local JWT validation in ``JwtAuthorizer`` below.
``build_smart_authorizer`` picks the class from ``authorization.type`` and does no I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from ..errors import ConfigError, Forbidden, SmartImagingError, Unauthorized, UpstreamError
from ..tenants.config import SmartAuthorization
from .backend import DEFAULT_SCOPE, BackendTokens, ClientAuth, basic_credentials, signing_key
from .base import AccessGrant, Authorizer, AuthRequest
from .claims import TokenPolicy, check_token, normalize_audience, patient_claim, require_patient
from .decision_cache import DecisionCache, Outcome, token_key
from .discovery import Discovery, SmartEndpoints
from .introspection import introspect
from .jwt_tokens import JwksCache, jwt_header, verify_signature
from .patients import CredentialsRejected, fetch_patient
from .scopes import IMAGING_RESOURCES

log = logging.getLogger("smart_imaging.auth")

MAX_DECISIONS = 10_000


class SmartAuthorizer:
    """``smart-on-fhir`` (and ``smart-on-fhir-independent``): introspection at the EHR."""

    resources: ClassVar[tuple[str, ...]] = IMAGING_RESOURCES
    needs_backend: ClassVar[bool] = True

    def __init__(
        self,
        config: SmartAuthorization,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        url_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._timeout = config.timeout
        self.discovery = Discovery(
            config.fhirBaseUrl,
            http,
            timeout=config.timeout,
            overrides=SmartEndpoints(
                token_endpoint=config.tokenEndpoint,
                introspection_endpoint=config.introspectionEndpoint,
                jwks_uri=config.jwksUri,
                issuer=config.issuer,
            ),
            url_allowed=url_allowed,
        )
        self.backend = self._make_backend()
        self._validate_introspection_auth()
        self._decisions: DecisionCache[AccessGrant] = DecisionCache(MAX_DECISIONS)
        self._patients: DecisionCache[dict[str, Any]] = DecisionCache(MAX_DECISIONS)
        self.introspections = 0

    # ------------------------------------------------------------ construction checks

    def _make_backend(self) -> BackendTokens | None:
        client = self.config.client
        if client is None or not client.jwkPrivate:
            if self.needs_backend:
                raise ConfigError(
                    "invalid tenant config",
                    [
                        (
                            "authorization.client.jwkPrivate",
                            f"{self.config.type} needs a backend-services client with a private JWK",
                        )
                    ],
                )
            return None
        return BackendTokens(
            client.client_id,
            signing_key(client),
            self.config.scope or DEFAULT_SCOPE,
            self.discovery,
            self._http,
            timeout=self._timeout,
        )

    def _validate_introspection_auth(self) -> None:
        client = self.config.client
        if self.introspection_auth_kind() == "client_secret_basic" and (
            client is None or client.client_secret is None
        ):
            raise ConfigError(
                "invalid tenant config",
                [("authorization.client.client_secret", "client_secret_basic introspection needs a secret")],
            )

    def introspection_auth_kind(self) -> str:
        return self.config.introspectionAuth

    # ------------------------------------------------------------ the Authorizer protocol

    async def authorize(self, request: AuthRequest) -> AccessGrant:
        if not request.token:
            raise Unauthorized("missing access token", error=None)
        key = token_key(request.token)
        grant = await self._decisions.get_or_compute(key, lambda: self._decide(request.token or ""))
        return await self.bind_request(grant, request, key)

    async def patient(self, grant: AccessGrant) -> dict[str, Any] | None:
        known = grant.extra.get("patient")
        if isinstance(known, dict):
            return known
        if grant.patient_id is None:
            return None
        patient_id = grant.patient_id
        return await self._patients.get_or_compute(patient_id, lambda: self._read_patient(patient_id))

    async def ehr_configuration(self) -> dict[str, Any] | None:
        return await self.discovery.document()

    async def aclose(self) -> None:
        self._decisions.clear()
        self._patients.clear()

    # ------------------------------------------------------------ the decision

    def policy(self, endpoints_issuer: str | None) -> TokenPolicy:
        return TokenPolicy(
            issuer=self.config.issuer or endpoints_issuer,
            audience=normalize_audience(self.config.audience),
            resources=self.resources,
            check_scopes=not self.config.disableAuthzChecks,
        )

    async def _decide(self, token: str) -> Outcome[AccessGrant]:
        try:
            claims, issuer = await self.token_claims(token)
            now = self._clock()
            scopes = check_token(claims, self.policy(issuer), now)
            patient_id = self.patient_from_claims(claims)
            require_patient(patient_id, self.config.disableAuthzChecks or not self.requires_token_patient())
        except (Unauthorized, Forbidden) as exc:
            log.info("token %s refused: %s", token_key(token)[:8], exc.message)
            return Outcome(None, exc, self.config.negativeCacheTtl)
        exp = claims.get("exp")
        grant = AccessGrant(
            patient_id=patient_id,
            checks_disabled=self.config.disableAuthzChecks,
            scopes=scopes,
            client_id=_str(claims.get("client_id")),
            subject=_str(claims.get("sub")),
            extra={"exp": exp} if isinstance(exp, (int, float)) else {},
        )
        ttl = (
            self.config.cacheTtl
            if not isinstance(exp, (int, float))
            else min(exp - now, self.config.cacheTtl)
        )
        log.debug("token %s granted patient %s", token_key(token)[:8], patient_id)
        return Outcome(grant, None, ttl)

    async def token_claims(self, token: str) -> tuple[dict[str, Any], str | None]:
        """The token's claims (introspection response) and the issuer discovery names."""
        endpoints = await self.discovery.endpoints("introspection_endpoint")
        endpoint = await self.introspection_endpoint(endpoints)
        auth = await self.introspection_client_auth()
        self.introspections += 1
        return await introspect(self._http, endpoint, token, auth, timeout=self._timeout), endpoints.issuer

    async def introspection_endpoint(self, endpoints: SmartEndpoints) -> str:
        return endpoints.require("introspection_endpoint")

    async def introspection_client_auth(self) -> ClientAuth:
        kind = self.introspection_auth_kind()
        if kind == "client_secret_basic":
            client = self.config.client
            assert client is not None and client.client_secret is not None
            secret = client.client_secret.get_secret_value()
            return ClientAuth(headers={"Authorization": basic_credentials(client.client_id, secret)})
        backend = self._require_backend()
        if kind == "private_key_jwt":
            return await backend.assertion_auth()
        return ClientAuth(headers={"Authorization": f"Bearer {await backend.token()}"})

    def patient_from_claims(self, claims: dict[str, Any]) -> str | None:
        return patient_claim(claims)

    def requires_token_patient(self) -> bool:
        return True

    async def bind_request(self, grant: AccessGrant, request: AuthRequest, key: str) -> AccessGrant:
        """Per-request checks on a (cached) token decision; vendors that trust the request override."""
        return grant

    # ------------------------------------------------------------ Patient resource

    async def _read_patient(self, patient_id: str) -> Outcome[dict[str, Any]]:
        backend = self._require_backend()
        try:
            resource = await fetch_patient(
                self._http, self.config.fhirBaseUrl, patient_id, await backend.token(), timeout=self._timeout
            )
        except CredentialsRejected:
            backend.forget()  # the EHR may have revoked it early: renew once
            resource = await fetch_patient(
                self._http, self.config.fhirBaseUrl, patient_id, await backend.token(), timeout=self._timeout
            )
        return Outcome(resource, None, self.config.cacheTtl)

    def _require_backend(self) -> BackendTokens:
        if self.backend is None:
            raise UpstreamError("no backend-services client configured for this EHR")
        return self.backend


class JwtAuthorizer(SmartAuthorizer):
    """``smart-on-fhir-jwt``: validate JWT access tokens locally against the issuer's JWKS.

    The reference server planned this but never built it. ``iss`` must equal the configured or
    discovered issuer, ``aud`` must include the configured audience (default: ``fhirBaseUrl``).
    """

    def __init__(
        self,
        config: SmartAuthorization,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        url_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(config, http, clock=clock, url_allowed=url_allowed)
        self.jwks = JwksCache(self.discovery, http, timeout=config.timeout)

    def policy(self, endpoints_issuer: str | None) -> TokenPolicy:
        if not (self.config.issuer or endpoints_issuer):
            raise UpstreamError("no issuer configured or discovered for JWT validation")
        audience = normalize_audience(self.config.audience) or normalize_audience(self.config.fhirBaseUrl)
        return TokenPolicy(
            issuer=self.config.issuer or endpoints_issuer,
            audience=audience,
            resources=self.resources,
            check_scopes=not self.config.disableAuthzChecks,
            require_iss_aud=True,
        )

    async def token_claims(self, token: str) -> tuple[dict[str, Any], str | None]:
        header = jwt_header(token)
        endpoints = await self.discovery.endpoints("jwks_uri", "issuer")
        keys = await self.jwks.keys_for(_str(header.get("kid")))
        return verify_signature(token, keys), endpoints.issuer


def build_smart_authorizer(
    config: SmartAuthorization, http: httpx.AsyncClient, url_allowed: Callable[[str], bool] | None = None
) -> Authorizer:
    """The authorizer for a SMART ``authorization`` section. No network I/O. ``url_allowed``
    (dynamic tenants) must accept every endpoint discovery finds."""
    from .vendors import EpicAuthorizer, MeditechAuthorizer

    classes: dict[str, type[SmartAuthorizer]] = {
        "smart-on-fhir": SmartAuthorizer,
        "smart-on-fhir-independent": SmartAuthorizer,
        "smart-on-fhir-jwt": JwtAuthorizer,
        "smart-on-fhir-with-epic-bugfixes": EpicAuthorizer,
        "smart-on-fhir-with-meditech-bugfixes": MeditechAuthorizer,
    }
    return classes[config.type](config, http, url_allowed=url_allowed)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["JwtAuthorizer", "SmartAuthorizer", "SmartImagingError", "build_smart_authorizer"]
