"""Local validation of JWT access tokens against the issuer's JWKS (RFC 7519, RFC 7517).

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
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..errors import Unauthorized, UpstreamError
from .discovery import Discovery
from .outbound import request_json

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
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("access token is not a JWT") from None
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
        raise Unauthorized("access token is not signed with an accepted algorithm")
    return header


def verify_signature(token: str, keys: KeySet) -> dict[str, Any]:
    """Verify and return the claims; 401 on any failure."""
    try:
        claims = dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
    except (JoseError, ValueError, TypeError):
        raise Unauthorized("access token signature is invalid") from None
    claims["active"] = True
    return claims


class JwksCache:
    """The issuer's key set, fetched lazily from ``jwks_uri``."""

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
        self._ttl = ttl
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = -1e18
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def keys_for(self, kid: str | None) -> KeySet:
        async with self._lock:
            age = self._clock() - self._fetched_at
            unknown_kid = kid is not None and self._keys is not None and not _has_kid(self._keys, kid)
            if self._keys is None or age > self._ttl or (unknown_kid and age >= MIN_REFRESH_INTERVAL):
                self._keys = await self._fetch()
                self._fetched_at = self._clock()
            return self._keys

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
        except (JoseError, ValueError, TypeError):
            raise UpstreamError("EHR JWKS holds an invalid key") from None


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)
