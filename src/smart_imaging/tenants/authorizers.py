"""Building a tenant's authorizer from its ``authorization`` section: the composition root.

It lives with the registry, above ``auth`` and ``oauth`` (whose authorization server is built
from auth's parts), so neither package imports the other's builder.

``authorization.type`` picks the parts: the token verifier (mock | RFC 7662 introspection |
local JWT | our own tokens), the patient resolver (configured | EHR Patient read | stored with the
token), the vendor ``Quirks`` and, for EHRs whose tokens name no patient, the request binder
(``pins``). Building does no network I/O:
discovery, the backend token and the JWKS are fetched on the first request that needs them. A
config that cannot work fails here with ``ConfigError`` (startup, or 400 for ``/dyn/``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from ..auth.authorizer import ComposedAuthorizer, DecisionRules
from ..auth.backend import DEFAULT_SCOPE, BackendTokens, signing_key
from ..auth.claims import normalize_audience
from ..auth.discovery import Discovery, SmartEndpoints
from ..auth.introspection import IntrospectionVerifier, client_authenticator
from ..auth.jwt_tokens import JwksCache, JwtVerifier
from ..auth.local_tokens import LocalTokenVerifier, StoredPatients
from ..auth.mock import ConfiguredPatient, MockVerifier
from ..auth.parts import TokenVerifier
from ..auth.patients import EhrPatients
from ..auth.pins import PatientPins, gate
from ..auth.quirks import BY_TYPE, MOCK, Quirks
from ..config.tenant import MockAuthorization, SmartAuthorization
from ..errors import ConfigError
from ..oauth.redis_store import SharedStateStore
from ..oauth.server import AuthorizationServer
from ..state import SharedState, digest, scoped


def build_authorizer(
    config: MockAuthorization | SmartAuthorization,
    http: httpx.AsyncClient,
    url_allowed: Callable[[str], bool] | None = None,
    state_dir: Path | None = None,
    *,
    shared: SharedState | None = None,
    tenant: str = "",
) -> ComposedAuthorizer:
    """Make the authorizer a tenant's ``authorization`` section asks for. ``url_allowed``
    (dynamic tenants) must accept every endpoint discovery finds. ``state_dir``: where a
    ``smart-on-fhir-independent`` tenant keeps its state (None: ``SMART_IMAGING_STATE_DIR``, else
    the default of ``oauth.stores``). ``shared``: the app's shared state; when it is shared with
    other processes (Redis), decisions are cached there under this ``tenant`` and this config,
    and a ``smart-on-fhir-independent`` tenant keeps its state there instead of SQLite."""
    replicated = shared if shared is not None and shared.shared else None
    if isinstance(config, MockAuthorization):
        return build_mock_authorizer(config)
    if config.type == "smart-on-fhir-independent":
        store = SharedStateStore(replicated) if replicated is not None else None
        return build_independent_authorizer(config, http, url_allowed, state_dir, store)
    decisions = scoped(replicated, "authz", digest(tenant, config.model_dump_json())) if replicated else None
    return build_smart_authorizer(config, http, url_allowed, decisions)


def build_mock_authorizer(config: MockAuthorization) -> ComposedAuthorizer:
    return ComposedAuthorizer(
        MockVerifier(config.patient),
        ConfiguredPatient(config.patient),
        MOCK,
        DecisionRules(disable_authz_checks=config.disableAuthzChecks),
    )


def build_smart_authorizer(
    config: SmartAuthorization,
    http: httpx.AsyncClient,
    url_allowed: Callable[[str], bool] | None = None,
    decisions: SharedState | None = None,
) -> ComposedAuthorizer:
    """``decisions``: where grants and refusals are shared with other replicas (a namespace of
    the shared state, keyed by tenant and config), or None for this process only."""
    quirks = BY_TYPE[config.type]
    discovery = _discovery(config, http, url_allowed)
    backend = _backend(config, quirks, discovery, http)
    verifier = _verifier(config, quirks, discovery, backend, http)
    pinned = quirks.patient_from_request
    return ComposedAuthorizer(
        verifier,
        EhrPatients(http, config.fhirBaseUrl, backend, ttl=config.cacheTtl, timeout=config.timeout),
        quirks,
        DecisionRules(
            fhir_base_url=config.fhirBaseUrl,
            disable_authz_checks=config.disableAuthzChecks,
            cache_ttl=config.cacheTtl,
            negative_ttl=config.negativeCacheTtl,
            check_audience=config.checkAudience,
        ),
        binder=PatientPins(http, config.fhirBaseUrl, timeout=config.timeout) if pinned else None,
        discovery=discovery,
        backend=backend,
        refuse_all=gate(config.type, config.allowInsecurePatientFromRequest) if pinned else None,
        shared=decisions,
    )


def build_independent_authorizer(
    config: SmartAuthorization,
    http: httpx.AsyncClient,
    url_allowed: Callable[[str], bool] | None = None,
    state_dir: Path | None = None,
    store: SharedStateStore | None = None,
) -> ComposedAuthorizer:
    """``smart-on-fhir-independent``: the tenant is its own authorization server (dual launch,
    ``smart_imaging.oauth``); its tokens are checked in its store on every request (no decision
    cache, so revocation is immediate), and the Patient comes stored with the token. ``store``:
    the shared store with Redis, else SQLite in ``state_dir``."""
    discovery = _discovery(config, http, url_allowed)
    server = AuthorizationServer(
        config, discovery, http, url_allowed=url_allowed, state_dir=state_dir, store=store
    )
    return ComposedAuthorizer(
        LocalTokenVerifier(server),
        StoredPatients(),
        BY_TYPE[config.type],
        DecisionRules(
            fhir_base_url=config.fhirBaseUrl,
            disable_authz_checks=config.disableAuthzChecks,
            cache_ttl=0.0,
            negative_ttl=config.negativeCacheTtl,
        ),
        discovery=discovery,
        authority=server,
    )


def _discovery(
    config: SmartAuthorization, http: httpx.AsyncClient, url_allowed: Callable[[str], bool] | None
) -> Discovery:
    overrides = SmartEndpoints(
        token_endpoint=config.tokenEndpoint,
        introspection_endpoint=config.introspectionEndpoint,
        jwks_uri=config.jwksUri,
        issuer=config.issuer,
    )
    return Discovery(
        config.fhirBaseUrl, http, timeout=config.timeout, overrides=overrides, url_allowed=url_allowed
    )


def _backend(
    config: SmartAuthorization, quirks: Quirks, discovery: Discovery, http: httpx.AsyncClient
) -> BackendTokens | None:
    """The server's own SMART Backend Services client, when the config has a private key."""
    client = config.client
    if client is None or not client.jwkPrivate:
        if quirks.needs_backend:
            needs = f"{config.type} needs a backend-services client with a private JWK"
            raise ConfigError("invalid tenant config", [("authorization.client.jwkPrivate", needs)])
        return None
    return BackendTokens(
        client.client_id,
        signing_key(client),
        config.scope or DEFAULT_SCOPE,
        discovery,
        http,
        timeout=config.timeout,
    )


def _verifier(
    config: SmartAuthorization,
    quirks: Quirks,
    discovery: Discovery,
    backend: BackendTokens | None,
    http: httpx.AsyncClient,
) -> TokenVerifier:
    if config.type == "smart-on-fhir-jwt":
        audience = normalize_audience(config.audience)  # else the defaults (DecisionRules.audiences)
        return JwtVerifier(discovery, JwksCache(discovery, http, timeout=config.timeout), audience=audience)
    client = config.client
    auth = client_authenticator(
        quirks.introspection_auth or config.introspectionAuth,
        client.client_id if client else "",
        client.client_secret if client else None,
        backend,
    )
    return IntrospectionVerifier(
        discovery,
        http,
        auth,
        endpoint=quirks.introspection_endpoint,
        audience=config.audience,
        timeout=config.timeout,
    )
