"""Outbound HTTP calls to the EHR and its authorization server, with errors mapped once.

Every call has its own timeout. Failures become errors from ``smart_imaging.errors`` that say
which upstream failed and never include tokens or upstream bodies (the httpx or JSON error is
chained as the cause, for tracebacks; its text names no token or body either):

- unreachable, timed out, or answering 502/503/504: ``Unavailable`` (503, EHR unavailable)
- any other 5xx, a body that is not the JSON object we expect: ``UpstreamError`` (502)

4xx answers are returned to the caller, which knows what they mean for its endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import Unavailable, UpstreamError

log = logging.getLogger("smart_imaging.auth")

RETRY_AFTER = 5
MAX_BODY = 1024 * 1024


async def request_json(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """Send one request; return ``(status, JSON object or None for non-2xx)``."""
    all_headers = {"Accept": "application/json", **(headers or {})}
    try:
        response = await http.request(method, url, headers=all_headers, data=data, timeout=timeout)
    except httpx.TimeoutException as exc:
        log.warning("%s timed out after %.1f s", what, timeout)
        raise Unavailable(f"EHR unavailable: {what} timed out", retry_after=RETRY_AFTER) from exc
    except httpx.HTTPError as exc:
        log.warning("%s unreachable: %s", what, type(exc).__name__)
        raise Unavailable(f"EHR unavailable: {what} unreachable", retry_after=RETRY_AFTER) from exc
    status = response.status_code
    if status in (502, 503, 504):
        raise Unavailable(f"EHR unavailable: {what} answered {status}", retry_after=RETRY_AFTER)
    if status >= 500:
        raise UpstreamError(f"{what} failed with status {status}")
    if not 200 <= status < 300:
        return status, None
    return status, _json_object(response, what)


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    if len(response.content) > MAX_BODY:
        raise UpstreamError(f"{what} answered more than {MAX_BODY} bytes")
    try:
        body = response.json()
    except ValueError as exc:
        raise UpstreamError(f"{what} did not answer JSON") from exc
    if not isinstance(body, dict):
        raise UpstreamError(f"{what} did not answer a JSON object")
    return body
