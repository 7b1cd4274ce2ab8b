"""The ``TokenVerifier`` for ``smart-on-fhir-jwt``: local validation of JWT access tokens against
the issuer's JWKS (RFC 7519, RFC 7517).

Checks the signature (asymmetric algorithms only), then the same claim rules as introspection
(``claims.check_token``) with ``iss`` and ``aud`` required. The JWKS is cached and fetched again
when a token names a ``kid`` we do not have (key rotation), at most once per
``MIN_REFRESH_INTERVAL`` so that tokens with random ``kid`` values cannot flood the EHR.
A locally validated token cannot be known to be revoked: revocation takes effect when it expires.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..cache import TtlCache
from ..errors import Unauthorized, UpstreamError
from .discovery import Discovery
from .outbound import request_json
from .parts import VerifiedToken

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
MIN_REFRESH_INTERVAL = 10.0
MAX_TOKEN = 16_384


def jwt_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, or 401 when the token is not one."""
    if len(token) > MAX_TOKEN or token.count(".") != 2:
        raise Unauthorized("access token is not a JWT")
    try:
        segment = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("access token is not a JWT") from exc
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
        raise Unauthorized("access token is not signed with an accepted algorithm")
    return header


def verify_signature(token: str, keys: KeySet) -> dict[str, Any]:
    """Verify and return the claims; 401 on any failure."""
    try:
        claims = dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise Unauthorized("access token signature is invalid") from exc
    claims["active"] = True
    return claims


@dataclass(frozen=True)
class _Fetched:
    keys: KeySet
    at: float


class JwksCache:
    """The issuer's key set, fetched lazily from ``jwks_uri`` and kept ``ttl`` seconds."""

    def __init__(
        self,
        discovery: Discovery,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._discovery = discovery
        self._http = http
        self._timeout = timeout
        self._clock = clock
        self._cache: TtlCache[str, _Fetched] = TtlCache(1, ttl=ttl, clock=clock)
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def keys_for(self, kid: str | None) -> KeySet:
        """The key set; fetched again for a ``kid`` it lacks (key rotation), within limits."""
        async with self._lock:
            fetched = self._cache.get("jwks")
            if fetched is None or (
                kid is not None
                and not _has_kid(fetched.keys, kid)
                and self._clock() - fetched.at >= MIN_REFRESH_INTERVAL
            ):
                fetched = _Fetched(await self._fetch(), self._clock())
                self._cache.put("jwks", fetched)
            return fetched.keys

    async def _fetch(self) -> KeySet:
        uri = (await self._discovery.endpoints("jwks_uri")).require("jwks_uri")
        self.fetches += 1
        status, body = await request_json(self._http, "GET", uri, what="EHR JWKS", timeout=self._timeout)
        if body is None:
            raise UpstreamError(f"EHR JWKS answered status {status}")
        keys = body.get("keys")
        if not isinstance(keys, list):
            raise UpstreamError("EHR JWKS has no key list")
        public = [
            k
            for k in keys
            if isinstance(k, dict) and k.get("kty") in ("RSA", "EC") and k.get("use", "sig") == "sig"
        ]
        try:
            return KeySet.import_key_set({"keys": public})
        except (JoseError, ValueError, TypeError) as exc:
            raise UpstreamError("EHR JWKS holds an invalid key") from exc


class JwtVerifier:
    """``smart-on-fhir-jwt``: a JWT access token verified against the issuer's JWKS; ``iss`` must
    be the configured or discovered issuer, ``aud`` include ``audience`` (default: ``fhirBaseUrl`` or
    this imaging FHIR base, ``authorizer.DecisionRules.audiences``)."""

    needs_token = True

    def __init__(self, discovery: Discovery, jwks: JwksCache, *, audience: tuple[str, ...]) -> None:
        self._discovery = discovery
        self._jwks = jwks
        self._audience = audience

    async def verify(self, token: str | None) -> VerifiedToken:
        if not token:
            raise Unauthorized("missing access token", error=None)
        header = jwt_header(token)
        endpoints = await self._discovery.endpoints("jwks_uri", "issuer")
        kid = header.get("kid")
        claims = verify_signature(token, await self._jwks.keys_for(kid if isinstance(kid, str) else None))
        if not endpoints.issuer:
            raise UpstreamError("no issuer configured or discovered for JWT validation")
        return VerifiedToken(
            claims,
            issuer=endpoints.issuer,
            audience=self._audience,
            require_iss_aud=True,
            default_audience=True,
        )


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)
