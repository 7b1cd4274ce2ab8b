"""Small HTTP helpers shared by the sandbox's routes: form bodies and bearer tokens."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from smart_imaging_demo.ehr.authorize import single_values
from smart_imaging_demo.ehr.errors import InvalidRequest

MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


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
