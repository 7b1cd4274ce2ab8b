"""The EHR as the imaging server's authorization server sees it (I/O): discovery, keys, the code
exchange and the reads made with the EHR's token.

Discovery is the tenant's shared ``auth.discovery.Discovery`` (``fhirBaseUrl`` +
``/.well-known/smart-configuration``, config overrides first); keys come from its ``jwks_uri``
(``auth.jwt_tokens.JwksCache``: cached, fetched again for an unknown ``kid``). The code is
exchanged with ``private_key_jwt`` (RFC 7523, the config's ``client.jwkPrivate``) when a private
key is configured, else as a public client; PKCE always. Our EHR client's tokens are used for the
Patient and fhirUser reads of this one flow and then dropped, never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from joserfc.jwk import KeySet

from ..auth.backend import ASSERTION_TYPE, SigningKey, client_assertion, parse_token_response, signing_key
from ..auth.discovery import Discovery
from ..auth.jwt_tokens import JwksCache
from ..auth.outbound import request_json
from ..auth.patients import fetch_patient
from ..config.tenant import SmartAuthorization
from ..errors import ConfigError, SmartImagingError, UpstreamError
from .ehr_leg import RESOURCE_TYPES
from .id_token import header_of, signed_claims


class EhrClient:
    def __init__(
        self,
        config: SmartAuthorization,
        discovery: Discovery,
        http: httpx.AsyncClient,
        url_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        client = config.client
        if client is None:
            needs = "smart-on-fhir-independent needs the imaging server's own client at the EHR"
            raise ConfigError("invalid tenant config", [("authorization.client", needs)])
        self.client_id = client.client_id
        self.key: SigningKey | None = signing_key(client) if client.jwkPrivate else None
        self.fhir_base = config.fhirBaseUrl.rstrip("/")
        self.scope = config.oauth_settings.ehrScope
        self.discovery = discovery
        self._http = http
        self._timeout = config.timeout
        self._url_allowed = url_allowed
        self._jwks = JwksCache(discovery, http, timeout=config.timeout)

    async def authorization_endpoint(self) -> str:
        url = (await self.discovery.document()).get("authorization_endpoint")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 2048:
            raise UpstreamError("EHR smart-configuration has no valid authorization_endpoint")
        if self._url_allowed is not None and not self._url_allowed(url):
            raise UpstreamError("EHR authorization_endpoint names a host that is not allowed")
        return url

    async def issuer(self) -> str:
        return (await self.discovery.endpoints("issuer")).require("issuer")

    async def verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a JWS the EHR signed (``id_token.signed_claims``), keys fetched as needed."""
        kid = (header_of(token) or {}).get("kid")
        keys: KeySet = await self._jwks.keys_for(kid if isinstance(kid, str) else None)
        return signed_claims(token, keys)

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """RFC 6749 section 4.1.3 at the EHR's token endpoint; the parsed token response."""
        endpoint = (await self.discovery.endpoints("token_endpoint")).require("token_endpoint")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": self.client_id,
        }
        if self.key is not None:
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = client_assertion(self.client_id, self.key, endpoint)
        status, body = await request_json(
            self._http, "POST", endpoint, what="EHR token endpoint", timeout=self._timeout, data=form
        )
        if body is None:
            raise UpstreamError(f"EHR token endpoint refused the code ({status})")
        parse_token_response(body)  # a usable bearer token, or UpstreamError
        return body

    async def read_patient(self, patient_id: str, token: str) -> dict[str, Any]:
        return await fetch_patient(self._http, self.fhir_base, patient_id, token, timeout=self._timeout)

    async def read_user(self, url: str, token: str) -> dict[str, Any] | None:
        """The fhirUser resource, or None when the EHR does not let us read it (best effort)."""
        headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}
        try:
            _, body = await request_json(
                self._http, "GET", url, what="EHR fhirUser read", timeout=self._timeout, headers=headers
            )
        except SmartImagingError:
            return None
        return body if body is not None and body.get("resourceType") in RESOURCE_TYPES else None
