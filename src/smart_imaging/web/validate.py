"""``POST /api/validate-config``: check a tenant config as the server would for ``/dyn/`` URLs.

Answers ``{"valid": bool, "problems": [{"field", "message"}], "fhirBase": str | null}``; the
FHIR base is ``{base}/dyn/{base64url(config)}/fhir`` on this server.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..config.loader import encode_dynamic, parse_config
from ..config.tenant import TenantConfig
from ..errors import ConfigError, SmartImagingError
from ..tenants.authorizers import build_authorizer

MAX_BODY = 32_768


async def validate_config(request: Request) -> JSONResponse:
    body = b""
    async for chunk in request.stream():  # stop reading at the limit
        body += chunk
        if len(body) > MAX_BODY:
            return _answer(request, None, [("(body)", f"more than {MAX_BODY} bytes")])
    try:
        data = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: also int() digit limit
        where = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "(body)"
        return _answer(request, None, [(where, f"not valid JSON: {getattr(exc, 'msg', exc)}")])
    return _answer(request, data, await check(request, data))


async def check(request: Request, data: Any) -> list[tuple[str, str]]:
    """Problems with ``data`` as a dynamic tenant config (empty when it is fine)."""
    state = getattr(request.app.state, "smart_imaging", None)
    registry = getattr(state, "registry", None)
    try:
        if registry is not None and registry.dynamic_enabled:
            config = registry.validate_dynamic(data)
        else:
            config = parse_config(data, env={})
        await _construct(config)
    except ConfigError as exc:
        return list(exc.problems) or [("(config)", exc.message)]
    except SmartImagingError as exc:
        return [("(config)", exc.message)]
    return []


async def _construct(config: TenantConfig) -> None:
    """Build the tenant's authorizer as the server will (its own checks, e.g. a SMART tenant
    needing a private JWK) without contacting anyone."""
    async with httpx.AsyncClient() as http:
        authorizer = build_authorizer(config.authorization, http)
        await authorizer.aclose()


def _answer(request: Request, data: Any, problems: list[tuple[str, str]]) -> JSONResponse:
    base = str(request.base_url).rstrip("/")
    fhir_base = f"{base}/dyn/{encode_dynamic(data)}/fhir" if not problems else None
    state = getattr(request.app.state, "smart_imaging", None)
    dynamic = bool(getattr(getattr(state, "registry", None), "dynamic_enabled", False))
    return JSONResponse(
        {
            "valid": not problems,
            "problems": [{"field": field, "message": message} for field, message in problems],
            "fhirBase": fhir_base,
            "dynamicTenantsEnabled": dynamic,
        }
    )
