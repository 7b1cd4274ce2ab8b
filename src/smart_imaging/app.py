"""The ASGI application: routes, one error handler, middleware, lifespan (one httpx client)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import __version__
from .binding import key_from_secret
from .errors import ConfigError, SmartImagingError
from .fhir.outcome import operation_outcome
from .http_client import create_client
from .observability import AccessLogMiddleware, Metrics, install_log_filters, redact_path
from .routes import fhir, oauth, wado
from .routes.context import AppState
from .settings import Settings
from .tenants.config import TenantConfig
from .tenants.registry import TenantRegistry, load_dir

log = logging.getLogger("smart_imaging")


def tenant_routes(prefix: str) -> list[BaseRoute]:
    return [
        Route(f"{prefix}/fhir/metadata", fhir.metadata, methods=["GET"]),
        Route(f"{prefix}/fhir/.well-known/smart-configuration", fhir.smart_config, methods=["GET"]),
        Route(f"{prefix}/fhir/ImagingStudy", fhir.imaging_study_search, methods=["GET"]),
        Route(prefix + "/wado/{binding}/studies/{rest:path}", wado.retrieve, methods=["GET"]),
        Route(f"{prefix}/oauth/authorize", oauth.authorize, methods=["GET"]),
        Route(f"{prefix}/oauth/ehr-callback", oauth.ehr_callback, methods=["GET"]),
        Route(f"{prefix}/oauth/imaging-decision", oauth.imaging_decision, methods=["GET", "POST"]),
        Route(f"{prefix}/oauth/token", oauth.token, methods=["POST"]),
        Route(f"{prefix}/oauth/introspect", oauth.introspect, methods=["POST"]),
        Route(f"{prefix}/oauth/revoke", oauth.revoke, methods=["POST"]),
    ]


def create_app(
    settings: Settings,
    tenants: Mapping[str, TenantConfig] | None = None,
    extra_routes: list[BaseRoute] | None = None,
) -> Starlette:
    """Build the server. ``tenants`` (name -> config) is used instead of ``settings.config_dir``."""
    configs = (
        dict(tenants)
        if tenants is not None
        else (load_dir(settings.config_dir) if settings.config_dir else {})
    )
    key, random_key = key_from_secret(settings.key)
    if random_key:
        log.warning(
            "SMART_IMAGING_KEY is not set: binding tokens use a random key and stop "
            "working when this process restarts; set it for restarts and replicas"
        )
    metrics = Metrics()
    install_log_filters()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with create_client(settings.http_timeout) as http:
            registry = TenantRegistry(
                configs,
                http,
                dynamic=settings.dynamic_tenants,
                allow=settings.dynamic_upstream_allow,
                max_dynamic=settings.max_dynamic_tenants,
            )
            app.state.smart_imaging = AppState(settings=settings, registry=registry, key=key)
            try:
                yield
            finally:
                await registry.aclose()

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(request: Request) -> JSONResponse:
        state: AppState = request.app.state.smart_imaging
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "tenants": state.registry.names,
                "dynamicTenants": state.registry.dynamic_enabled,
            }
        )

    routes: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *tenant_routes("/dyn/{config}"),
        *tenant_routes("/{tenant}"),
        *(extra_routes or []),
    ]
    middleware = [
        Middleware(AccessLogMiddleware, metrics=metrics),
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type", "Prefer"],
            expose_headers=["Retry-After", "Content-Type", "Content-Length", "WWW-Authenticate", "Location"],
            max_age=600,
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            SmartImagingError: error_response,
            HTTPException: http_error_response,
            Exception: unexpected_error_response,
        },
    )


def web_routes() -> list[BaseRoute]:
    """The viewer app and config editor, when the package carries them (``smart_imaging.web``)."""
    try:
        from .web import routes
    except ImportError:
        return []
    found: list[BaseRoute] = routes()
    return found


def render_error(
    request: Request,
    status: int,
    code: str,
    error: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """FHIR routes answer with an OperationOutcome; everything else with a short JSON body."""
    if "/fhir/" in request.url.path or request.url.path.endswith("/fhir"):
        return JSONResponse(
            operation_outcome(code, message),
            status_code=status,
            headers=dict(headers or {}),
            media_type="application/fhir+json",
        )
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=dict(headers or {}))


async def error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SmartImagingError)
    if exc.status >= 500:
        log.warning("%s %s: %s", exc.status, type(exc).__name__, exc.message)
    message = exc.message
    if isinstance(exc, ConfigError) and exc.problems:
        message += ": " + "; ".join(f"{where}: {what}" for where, what in exc.problems)
    return render_error(request, exc.status, exc.code, exc.error, message, exc.headers)


async def http_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    message = {404: "no such resource", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    return render_error(request, exc.status_code, code, code.replace("-", "_"), message, exc.headers)


async def unexpected_error_response(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s", redact_path(request.url.path), exc_info=exc)
    return render_error(request, 500, "exception", "server_error", "internal error")
