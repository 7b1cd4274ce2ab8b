"""The routes of a tenant's own authorization server (``smart-on-fhir-independent``), under
``/{tenant}/oauth/``: ``authorize``, ``ehr-callback``, ``imaging-decision`` (GET the consent
page, POST the decision), ``token``, ``introspect`` (RFC 7662), ``revoke`` (RFC 7009).

Thin: parse the request, hand it to ``oauth.server``, render. Browser endpoints answer with
redirects or HTML pages (no-store, no framing, a CSP that allows no script); the token,
introspection and revocation endpoints with RFC 6749 JSON (errors ``{"error",
"error_description"}``). Form bodies are ``application/x-www-form-urlencoded``, bounded, each
parameter at most once (RFC 6749 section 3.2).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..errors import NotFound, SmartImagingError
from ..oauth.consent import error_page
from ..oauth.errors import OAuthError, PageError
from ..oauth.flow import Outcome
from ..oauth.server import AuthorizationServer, server_of
from ..oauth.session import COOKIE, set_cookie_header
from ..oauth.site import Site
from .context import app_state, tenant_base, tenant_of

MAX_FORM = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PAGE_HEADERS = {
    **NO_STORE,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _server(request: Request) -> tuple[AuthorizationServer, Site]:
    tenant = tenant_of(request)
    server = server_of(tenant.authorizer)
    if server is None:
        raise NotFound("this tenant has no authorization server of its own")
    server.check_state_dir(app_state(request).settings.state_dir)
    return server, Site(tenant.key, tenant_base(request, tenant))


def _csp(form_origin: str | None) -> str:
    targets = "'self'" + (f" {form_origin}" if form_origin else "")
    return (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action {targets}"
    )


def _page(status: int, html: str, form_origin: str | None = None) -> HTMLResponse:
    return HTMLResponse(
        html, status_code=status, headers={**PAGE_HEADERS, "Content-Security-Policy": _csp(form_origin)}
    )


def _respond(outcome: Outcome, site: Site) -> Response:
    if outcome.location is not None:
        response: Response = Response(
            status_code=outcome.status, headers={**PAGE_HEADERS, "Location": outcome.location}
        )
    else:
        response = _page(outcome.status, outcome.html or "", outcome.form_origin)
    if outcome.session_cookie:
        response.headers.append("Set-Cookie", set_cookie_header(site, outcome.session_cookie))
    return response


def _error_page(exc: SmartImagingError) -> HTMLResponse:
    if isinstance(exc, PageError):
        return _page(exc.status, error_page(exc.title, exc.message))
    return _page(exc.status, error_page("Something went wrong", exc.message))


async def _form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise OAuthError("invalid_request", "the body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None
    repeated = [k for k, n in Counter(k for k, _ in pairs).items() if n > 1]
    if repeated:
        raise OAuthError("invalid_request", f"parameter given more than once: {repeated[0]}")
    return dict(pairs)


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=NO_STORE)


# ---------------------------------------------------------------- browser endpoints


async def authorize(request: Request) -> Response:
    try:
        server, site = _server(request)
        cookie = request.cookies.get(COOKIE)
        return _respond(await server.flow.authorize(request.query_params.multi_items(), cookie, site), site)
    except SmartImagingError as exc:
        return _error_page(exc)


async def ehr_callback(request: Request) -> Response:
    try:
        server, site = _server(request)
        query = dict(request.query_params)
        return _respond(await server.flow.ehr_callback(query, request.cookies.get(COOKIE), site), site)
    except SmartImagingError as exc:
        return _error_page(exc)


async def imaging_decision(request: Request) -> Response:
    """GET: the consent page; POST: the user's decision (CSRF-checked by the flow)."""
    try:
        server, site = _server(request)
        cookie = request.cookies.get(COOKIE)
        if request.method == "GET":
            outcome = await server.flow.consent(request.query_params.get("request", ""), cookie, site)
        else:
            outcome = await server.flow.decide(await _form(request), cookie, site)
        return _respond(outcome, site)
    except SmartImagingError as exc:
        return _error_page(exc)


# ---------------------------------------------------------------- JSON endpoints


async def token(request: Request) -> Response:
    server, site = _server(request)
    try:
        form = await _form(request)
        return _json(await server.tokens.token(form, request.headers.get("authorization"), site))
    except OAuthError as exc:
        return _json(exc.body(), exc.status)


async def introspect(request: Request) -> Response:
    server, site = _server(request)
    try:
        form = await _form(request)
        return _json(await server.tokens.introspect(form, request.headers.get("authorization"), site))
    except OAuthError as exc:
        return _json(exc.body(), exc.status)


async def revoke(request: Request) -> Response:
    server, site = _server(request)
    try:
        await server.tokens.revoke(await _form(request), request.headers.get("authorization"), site)
    except OAuthError as exc:
        return _json(exc.body(), exc.status)
    return Response(status_code=200, headers=NO_STORE)
