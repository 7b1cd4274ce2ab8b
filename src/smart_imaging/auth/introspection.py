"""RFC 7662 token introspection of the app's access token.

The imaging server authenticates itself at the introspection endpoint in one of three ways
(``authorization.introspectionAuth``): ``bearer`` (its backend-services access token, the SMART
convention and the reference server's way), ``private_key_jwt`` or ``client_secret_basic``
(RFC 7662 section 2.1 client authentication, as generic OAuth servers such as Keycloak or
oidc-provider require).
"""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import UpstreamError
from .backend import ClientAuth
from .outbound import request_json


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
