"""``private_key_jwt`` client authentication (RFC 7523 2.2 and 3, SMART Backend Services).

Pure: verifies signature and claims of a client assertion against the registered client's
JWK Set. Replay of ``jti`` is refused by the caller, which owns the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.errors import InvalidClient

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("ES384", "RS384")
CLOCK_LEEWAY = 30  # seconds of skew tolerated for iat/nbf


@dataclass(frozen=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    exp: int


def verify_client_assertion(
    assertion: str, assertion_type: str | None, client_id: str | None, config: EhrConfig
) -> VerifiedAssertion:
    """Check a client assertion; raise :class:`InvalidClient` naming the first problem."""
    if assertion_type != CLIENT_ASSERTION_TYPE:
        raise InvalidClient(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
    issuer = _unverified_issuer(assertion)
    client = config.backend_client(issuer)
    if client is None:
        raise InvalidClient("client is not registered")
    if client_id is not None and client_id != issuer:
        raise InvalidClient("client_id does not match the assertion's iss")
    try:
        token = jwt.decode(
            assertion,
            KeySet.import_key_set(client.jwks),  # type: ignore[arg-type]
            algorithms=list(ALGORITHMS),
        )
    except JoseError as exc:
        raise InvalidClient(f"client assertion signature not verified ({exc.error})") from exc
    return _check_claims(dict(token.claims), issuer, config)


def _unverified_issuer(assertion: str) -> str:
    try:
        compact = jws.extract_compact(assertion.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise InvalidClient("client_assertion is not a compact JWS") from exc
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise InvalidClient("client assertion has no iss")
    return issuer


def _check_claims(claims: dict[str, Any], issuer: str, config: EhrConfig) -> VerifiedAssertion:
    now = config.now()
    if claims.get("sub") != issuer:
        raise InvalidClient("client assertion sub must equal iss (the client_id)")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(a, str) and config.is_own_url(a, config.token_endpoint) for a in audiences):
        raise InvalidClient("client assertion aud must be the token endpoint URL")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise InvalidClient("client assertion needs a numeric exp")
    if exp <= now:
        raise InvalidClient("client assertion has expired")
    if exp > now + config.assertion_max_lifetime:
        raise InvalidClient("client assertion exp is too far in the future (max 5 minutes)")
    for name in ("iat", "nbf"):
        value = claims.get(name)
        if isinstance(value, (int, float)) and value > now + CLOCK_LEEWAY:
            raise InvalidClient(f"client assertion {name} is in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidClient("client assertion needs a jti")
    return VerifiedAssertion(issuer, jti, exp)
