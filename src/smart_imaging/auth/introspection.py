"""RFC 7662 token introspection of the app's access token: the ``TokenVerifier`` of the
``smart-on-fhir`` family (all types but ``smart-on-fhir-jwt``).

The imaging server authenticates itself at the introspection endpoint in one of three ways
(``authorization.introspectionAuth``): ``bearer`` (its backend-services access token, the SMART
convention and the reference server's way), ``private_key_jwt`` or ``client_secret_basic``
(RFC 7662 section 2.1 client authentication, as generic OAuth servers such as Keycloak or
oidc-provider require).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import SecretStr

from ..errors import ConfigError, Unauthorized, UpstreamError
from .backend import BackendTokens, ClientAuth, basic_credentials
from .claims import normalize_audience
from .discovery import Discovery
from .outbound import request_json
from .parts import VerifiedToken
from .quirks import IntrospectionEndpoint

ClientAuthenticator = Callable[[], Awaitable[ClientAuth]]


async def introspect(
    http: httpx.AsyncClient, endpoint: str, token: str, auth: ClientAuth, *, timeout: float
) -> dict[str, Any]:
    """POST the token; return the introspection response (``active`` is a real boolean)."""
    form = {"token": token, "token_type_hint": "access_token", **auth.form}
    headers = {"Content-Type": "application/x-www-form-urlencoded", **auth.headers}
    status, body = await request_json(
        http, "POST", endpoint, what="EHR introspection endpoint", timeout=timeout, headers=headers, data=form
    )
    if body is None:
        if status in (401, 403):
            raise UpstreamError("EHR introspection endpoint refused the server's credentials")
        raise UpstreamError(f"EHR introspection endpoint answered status {status}")
    if not isinstance(body.get("active"), bool):
        raise UpstreamError("EHR introspection response has no boolean 'active'")
    return body


def client_authenticator(
    kind: str, client_id: str, secret: SecretStr | None, backend: BackendTokens | None
) -> ClientAuthenticator:
    """How the server authenticates at introspection; a config that cannot work fails here."""
    if kind == "client_secret_basic":
        if secret is None:
            raise ConfigError(
                "invalid tenant config",
                [("authorization.client.client_secret", "client_secret_basic introspection needs a secret")],
            )

        async def basic() -> ClientAuth:
            return ClientAuth(
                headers={"Authorization": basic_credentials(client_id, secret.get_secret_value())}
            )

        return basic
    if backend is None:
        raise ConfigError(
            "invalid tenant config",
            [("authorization.client.jwkPrivate", f"{kind} introspection needs a backend-services client")],
        )
    if kind == "private_key_jwt":
        return backend.assertion_auth

    async def bearer() -> ClientAuth:
        return ClientAuth(headers={"Authorization": f"Bearer {await backend.token()}"})

    return bearer


class IntrospectionVerifier:
    """Asks the EHR about each token (RFC 7662); expects the configured or discovered issuer and,
    when the answer names an ``aud``, the configured audience or the tenant's defaults (the EHR's
    FHIR base, this imaging FHIR base: "issued ... for use at this resource server")."""

    needs_token = True

    def __init__(
        self,
        discovery: Discovery,
        http: httpx.AsyncClient,
        client_auth: ClientAuthenticator,
        *,
        endpoint: IntrospectionEndpoint,
        audience: str | list[str] | None,
        timeout: float,
    ) -> None:
        self._discovery = discovery
        self._http = http
        self._client_auth = client_auth
        self._endpoint = endpoint
        self._audience = normalize_audience(audience)
        self._timeout = timeout
        self.introspections = 0

    async def verify(self, token: str | None) -> VerifiedToken:
        if not token:
            raise Unauthorized("missing access token", error=None)
        endpoints = await self._discovery.endpoints("introspection_endpoint")
        endpoint = self._endpoint(endpoints, self._discovery.overrides.introspection_endpoint)
        auth = await self._client_auth()
        self.introspections += 1
        claims = await introspect(self._http, endpoint, token, auth, timeout=self._timeout)
        return VerifiedToken(claims, issuer=endpoints.issuer, audience=self._audience, default_audience=True)
