"""Small HTTP helpers shared by the sandbox's routes: form bodies, bearer tokens, and the
config as a request sees it (its own origin, when the sandbox derives URLs from requests)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.requests import Request

from smart_imaging_demo.ehr.authorize import single_values
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.errors import InvalidRequest

MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
# RFC 9110 7.2 Host = uri-host [ ":" port ]: a reg-name or IPv4 address, or an IPv6 literal.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)


def request_config(config: EhrConfig, request: Request) -> EhrConfig:
    """With ``derive_from_request``, ``config`` moved to the request's origin (its scheme and
    ``Host`` header), so discovery, tokens and checks name the sandbox as the client reached
    it; a missing or malformed ``Host`` keeps the configured origin."""
    if not config.derive_from_request:
        return config
    host = request.headers.get("host", "")
    scheme = request.url.scheme
    if scheme not in ("http", "https") or not _HOST.fullmatch(host) or _port(host) > 65535:
        return config
    return config.at_origin(f"{scheme}://{host.lower()}")


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (RFC 6749 3.2), each name at most once."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise InvalidRequest(f"the body must be {FORM_TYPE}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequest("the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the form is not UTF-8") from exc
    values, repeated = single_values(pairs)
    if repeated:
        raise InvalidRequest(f"parameters repeated: {', '.join(repeated)}")
    return values


def bearer_token(request: Request) -> str | None:
    """The RFC 6750 2.1 ``Authorization: Bearer`` credential, if any."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def _port(host: str) -> int:
    tail = host.rsplit("]", 1)[-1]
    return int(tail.rsplit(":", 1)[1]) if ":" in tail else 0
