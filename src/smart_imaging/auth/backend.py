"""The server's own access at the EHR: SMART Backend Services (SMART App Launch 2.x, "Backend
Services"; RFC 7523 client assertions) and client authentication for introspection.

``client_credentials`` with a ``private_key_jwt`` client assertion signed ES384 or RS384 with the
config's private JWK: ``iss`` = ``sub`` = client_id, ``aud`` = token endpoint, a unique ``jti``,
``exp`` at most five minutes ahead. The token is cached until shortly before it expires. The
assertion is only ever sent as ``client_assertion``, never as a bearer token.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from ..cache import TtlCache
from ..config.tenant import ClientConfig
from ..errors import ConfigError, UpstreamError
from .discovery import Discovery
from .outbound import request_json

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # SMART Backend Services: exp no more than five minutes in the future
REFRESH_MARGIN = 30.0  # renew the backend token this many seconds before it expires
DEFAULT_SCOPE = "system/Patient.read"
_CURVE_ALG = {"P-384": "ES384"}


@dataclass(frozen=True)
class SigningKey:
    key: ECKey | RSAKey
    alg: str
    kid: str | None


def signing_key(client: ClientConfig, where: str = "authorization.client") -> SigningKey:
    """The private key for client assertions, checked at build time (ES384 or RS384 only)."""
    jwk = client.jwkPrivate
    if not jwk:
        raise ConfigError("invalid tenant config", [(f"{where}.jwkPrivate", "a private JWK is required")])
    public = client.jwk or {}
    alg = jwk.get("alg") or public.get("alg") or _infer_alg(jwk)
    if alg not in ("ES384", "RS384"):
        raise ConfigError("invalid tenant config", [(f"{where}.jwkPrivate", "alg must be ES384 or RS384")])
    try:
        key: ECKey | RSAKey = (ECKey if alg == "ES384" else RSAKey).import_key(
            {k: v for k, v in jwk.items() if k not in ("key_ops", "ext", "use")}
        )
    except (JoseError, ValueError, TypeError) as exc:  # their messages name key parameters, not values
        raise ConfigError(
            "invalid tenant config", [(f"{where}.jwkPrivate", f"not a valid private {alg} key")]
        ) from exc
    if not key.is_private:
        raise ConfigError("invalid tenant config", [(f"{where}.jwkPrivate", "key has no private part")])
    return SigningKey(key, alg, jwk.get("kid") or public.get("kid"))


def _infer_alg(jwk: dict[str, Any]) -> str | None:
    if jwk.get("kty") == "EC":
        return _CURVE_ALG.get(str(jwk.get("crv")))
    return "RS384" if jwk.get("kty") == "RSA" else None


def client_assertion(client_id: str, key: SigningKey, audience: str, now: float | None = None) -> str:
    """An RFC 7523 client assertion JWT (pure apart from the clock and a random jti)."""
    issued = int(time.time() if now is None else now)
    header: dict[str, Any] = {"alg": key.alg, "typ": "JWT"}
    if key.kid:
        header["kid"] = key.kid
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    return jwt.encode(header, claims, key.key, algorithms=[key.alg])


def basic_credentials(client_id: str, secret: str) -> str:
    """RFC 6749 section 2.3.1: form-urlencode id and secret, then base64 ``id:secret``."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass
class ClientAuth:
    """How one request authenticates the imaging server: extra headers and form fields."""

    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)


class BackendTokens:
    """Gets and caches the imaging server's own backend-services access token."""

    def __init__(
        self,
        client_id: str,
        key: SigningKey,
        scope: str,
        discovery: Discovery,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self._key = key
        self._scope = scope
        self._discovery = discovery
        self._http = http
        self._timeout = timeout
        self._tokens: TtlCache[str, str] = TtlCache(1, clock=clock)  # by scope
        self._lock = asyncio.Lock()
        self.requests = 0

    async def token(self) -> str:
        """A valid access token, from cache when it has more than ``REFRESH_MARGIN`` s left."""
        async with self._lock:
            token = self._tokens.get(self._scope)
            if token is None:
                token, lifetime = await self._request()
                self._tokens.put(self._scope, token, max(lifetime - REFRESH_MARGIN, lifetime / 2))
            return token

    def forget(self) -> None:
        """Drop the cached token (e.g. after the EHR rejected it)."""
        self._tokens.clear()

    async def assertion_auth(self) -> ClientAuth:
        """``private_key_jwt`` client authentication (audience: the token endpoint)."""
        endpoint = (await self._discovery.endpoints("token_endpoint")).require("token_endpoint")
        return ClientAuth(
            form={
                "client_id": self.client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(self.client_id, self._key, endpoint),
            }
        )

    async def _request(self) -> tuple[str, float]:
        endpoint = (await self._discovery.endpoints("token_endpoint")).require("token_endpoint")
        auth = await self.assertion_auth()
        form = {"grant_type": "client_credentials", "scope": self._scope, **auth.form}
        self.requests += 1
        status, body = await request_json(
            self._http, "POST", endpoint, what="EHR token endpoint", timeout=self._timeout, data=form
        )
        if body is None:
            raise UpstreamError(f"EHR token endpoint refused the server's backend credentials ({status})")
        return parse_token_response(body)


def parse_token_response(body: dict[str, Any]) -> tuple[str, float]:
    """``(access_token, expires_in)`` from an RFC 6749 section 5.1 response; lenient on type case."""
    token = body.get("access_token")
    token_type = body.get("token_type", "Bearer")
    expires_in = body.get("expires_in", 300)
    if (
        not isinstance(token, str)
        or not token
        or not isinstance(token_type, str)
        or token_type.lower() != "bearer"
    ):
        raise UpstreamError("EHR token endpoint answered no usable bearer access token")
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, (int, float))
        or math.isnan(expires_in)
        or expires_in <= 0
    ):
        raise UpstreamError("EHR token endpoint answered an invalid expires_in")
    return token, float(min(expires_in, 24 * 3600))
