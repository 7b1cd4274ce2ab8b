"""The EHR's OpenID Connect id_tokens, verified (pure, given the EHR's keys).

- The id_token of our own EHR leg: signature by a key of the EHR's ``jwks_uri``, then OpenID
  Connect Core 1.0 section 3.1.3.7: ``iss`` is the EHR's issuer, ``aud`` names our EHR client
  (and ``azp`` does when there are several audiences), ``exp`` is in the future, ``iat`` present,
  ``nonce`` is the one we sent.
- The app's ``login_hint`` (an id_token the EHR issued to the app): signature and ``iss`` only,
  because it was issued to another client and may have expired (section 3.1.2.1 allows that for
  ``id_token_hint``). A verified hint only decides whether to try a silent EHR sign-in; who the
  user and the patient are always comes from our own EHR leg.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..auth.jwt_tokens import ALGORITHMS
from ..errors import UpstreamError

LEEWAY = 60.0
MAX_TOKEN = 16_384


class InvalidIdToken(UpstreamError):
    """The EHR's id_token cannot be trusted (502: the EHR's answer, not the app's request)."""


def header_of(token: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, or None when ``token`` is not one."""
    if len(token) > MAX_TOKEN or token.count(".") != 2:
        return None
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
        return None
    return header


def signed_claims(token: str, keys: KeySet) -> dict[str, Any]:
    """The claims of a JWS signed by one of ``keys`` (asymmetric algorithms only)."""
    header = header_of(token)
    if header is None:
        raise InvalidIdToken("the id_token is not a signed JWT")
    candidates = [keys] if header.get("kid") else [KeySet([k]) for k in keys.keys]
    for candidate in candidates:
        try:
            return dict(jwt.decode(token, candidate, algorithms=ALGORITHMS).claims)
        except (JoseError, ValueError, TypeError):
            continue
    raise InvalidIdToken("the id_token's signature is not the EHR's")


def check_id_token(claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str, now: float) -> None:
    """OpenID Connect Core 1.0 section 3.1.3.7, steps 2-3 and 9-11."""
    if claims.get("iss") != issuer:
        raise InvalidIdToken("the id_token was issued by another issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client_id not in audiences:
        raise InvalidIdToken("the id_token is meant for another client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise InvalidIdToken("the id_token's azp is not our client")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or not _number(exp) or exp + LEEWAY <= now:
        raise InvalidIdToken("the id_token has expired")
    if not _number(claims.get("iat")):
        raise InvalidIdToken("the id_token has no iat")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise InvalidIdToken("the id_token's nonce is not the one sent")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidIdToken("the id_token names no subject")


def check_hint(claims: Mapping[str, Any], *, issuer: str) -> str:
    """The hint's ``sub`` once its issuer is the EHR's (signature checked by ``signed_claims``)."""
    sub = claims.get("sub")
    if claims.get("iss") != issuer or not isinstance(sub, str) or not sub:
        raise InvalidIdToken("the login_hint is not an id_token of this EHR")
    return sub


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
