"""Reading the bearer token of a request (RFC 6750 section 2.1). Pure."""

from __future__ import annotations

import re

from ..errors import Unauthorized

_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
MAX_TOKEN = 16 * 1024


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None when the header is absent.

    A header that is present but malformed, or another scheme, is refused with 401.
    """
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise Unauthorized("the Authorization header must use the Bearer scheme", error="invalid_request")
    if not token or len(token) > MAX_TOKEN or not _B64TOKEN.match(token):
        raise Unauthorized("malformed bearer token", error="invalid_token")
    return token
