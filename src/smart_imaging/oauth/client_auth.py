"""Client authentication at the token, introspection and revocation endpoints.

Public clients (registered without keys, and every open-mode client) name themselves with
``client_id`` and prove nothing else: PKCE protects their codes. Confidential clients must send
an RFC 7523 client assertion (``private_key_jwt``, SMART App Launch 2.x "asymmetric client
authentication"): a JWT signed by one of their registered keys, ``iss`` = ``sub`` = client_id,
``aud`` this endpoint or the token endpoint or our issuer, ``exp`` within five minutes, and a
``jti`` never seen before (kept until ``exp``). Client secrets (``client_secret_basic``/``_post``)
are not supported: a secret in a tenant file is one more thing to leak.
"""

from __future__ import annotations

import json
import math
import time
from base64 import urlsafe_b64decode
from collections.abc import Collection, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..auth.backend import ASSERTION_TYPE
from .clients import Client, ClientPolicy
from .errors import OAuthError
from .store import StateStore

MAX_ASSERTION_LIFETIME = 300.0
LEEWAY = 30.0
ALGORITHMS = ["ES384", "RS384", "ES256", "RS256", "ES512", "RS512", "PS256", "PS384", "PS512"]
MAX_ASSERTION = 16_384


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


async def authenticate(
    form: Mapping[str, str],
    authorization: str | None,
    policy: ClientPolicy,
    store: StateStore,
    audiences: Collection[str],
) -> Client:
    """The client making this request, or ``invalid_client`` (RFC 6749 section 5.2)."""
    if authorization:
        raise _invalid("HTTP authentication of clients is not supported: use private_key_jwt or none")
    if "client_assertion" in form or "client_assertion_type" in form:
        return await _assertion_client(form, policy, store, audiences)
    client_id = form.get("client_id", "")
    client = policy.find(client_id) if client_id else None
    if client is None:
        raise _invalid("unknown client")
    if client.confidential:
        raise _invalid("this client must authenticate with a private_key_jwt client assertion")
    return client


async def _assertion_client(
    form: Mapping[str, str], policy: ClientPolicy, store: StateStore, audiences: Collection[str]
) -> Client:
    assertion = form.get("client_assertion", "")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion or len(assertion) > MAX_ASSERTION:
        raise _invalid("client_assertion_type must be jwt-bearer with a client_assertion")
    subject = _unverified_subject(assertion)
    client = policy.find(subject) if subject else None
    if client is None or client.jwks is None:
        raise _invalid("the assertion names no confidential client")
    if form.get("client_id", subject) != subject:
        raise _invalid("client_id is not the assertion's subject")
    claims = _verified(assertion, client.jwks)
    exp = _check_claims(claims, client.client_id, audiences, time.time())
    jti = claims["jti"]
    if not await store.add("jti", f"{client.client_id}\0{jti}"[:600], {}, exp + LEEWAY):
        raise _invalid("the client assertion was used before")
    return client


def _unverified_subject(assertion: str) -> str | None:
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def _verified(assertion: str, jwks: dict[str, Any]) -> dict[str, Any]:
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    for candidate in [keys, *(KeySet([k]) for k in keys.keys)]:
        try:
            return dict(jwt.decode(assertion, candidate, algorithms=ALGORITHMS).claims)
        except (JoseError, ValueError, TypeError):
            continue
    raise _invalid("the client assertion's signature does not verify with the client's keys")


def _check_claims(claims: dict[str, Any], client_id: str, audiences: Collection[str], now: float) -> float:
    """RFC 7523 section 3; the assertion's ``exp``."""
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise _invalid("the assertion's iss and sub must be the client_id")
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not {str(v).rstrip("/") for v in values} & {a.rstrip("/") for a in audiences}:
        raise _invalid("the assertion's aud is not this server")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or not math.isfinite(exp):
        raise _invalid("the assertion has no exp")
    if exp <= now - LEEWAY or exp > now + MAX_ASSERTION_LIFETIME + LEEWAY:
        raise _invalid("the assertion's exp is in the past or more than five minutes ahead")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise _invalid("the assertion has no jti")
    return float(exp)
