"""The ASGI application: routes, one error handler, middleware, lifespan (one httpx client),
health probes and the gate that drains it on shutdown (``drain``)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping

from joserfc.jwk import OctKey
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .binding import key_from_secret
from .config.tenant import TenantConfig
from .drain import Drain
from .errors import ConfigError, SmartImagingError
from .fhir.outcome import operation_outcome
from .http_client import BACKENDS, create_client
from .observability import AccessLogMiddleware, Metrics, install_log_filters, redact_path
from .routes import fhir, oauth, qido, wado
from .routes.context import AppState
from .routes.study_guard import shared_guard
from .settings import Settings
from .state import open_state
from .tenants.registry import TenantRegistry, load_dir

log = logging.getLogger("smart_imaging")


def qido_routes(prefix: str) -> list[BaseRoute]:
    """QIDO-RS under an Endpoint address (PS3.18 10.6): the collections :func:`wado_route` leaves."""
    base = prefix + "/wado/{binding}/studies"
    return [
        Route(base, qido.studies, methods=["GET"]),
        Route(base + "/{study}/series", qido.series, methods=["GET"]),
        Route(base + "/{study}/series/{series}/instances", qido.instances, methods=["GET"]),
        Route(base + "/{study}/instances", qido.instances, methods=["GET"]),
    ]


class WadoResourceConvertor(Convertor[str]):
    """A WADO-RS resource below ``studies/``: any path but the QIDO-RS collections (``.../series``,
    ``.../instances``). With it the WADO-RS route is matched first, so a viewer's many frame
    requests are not tried against the QIDO-RS patterns first (each a backtracking regex over the
    long binding segment: about 6 us apiece, measured)."""

    regex = r".*(?<!/series)(?<!/instances)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("wado_resource", WadoResourceConvertor())


def wado_route(prefix: str) -> Route:
    return Route(prefix + "/wado/{binding}/studies/{rest:wado_resource}", wado.retrieve, methods=["GET"])


def tenant_routes(prefix: str) -> list[BaseRoute]:
    """A tenant's routes but WADO-RS (:func:`wado_route`, matched first: a viewer's many requests)."""
    return [
        Route(f"{prefix}/fhir/metadata", fhir.metadata, methods=["GET"]),
        Route(f"{prefix}/fhir/.well-known/smart-configuration", fhir.smart_config, methods=["GET"]),
        Route(f"{prefix}/fhir/ImagingStudy", fhir.imaging_study_search, methods=["GET"]),
        Route(prefix + "/fhir/ImagingStudy/{id}", fhir.imaging_study_read, methods=["GET"]),
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
    drain: Drain | None = None,
) -> Starlette:
    """Build the server. ``tenants`` (name -> config) is used instead of ``settings.config_dir``;
    ``drain`` is the process's shutdown state (``server.py``), else the app's own."""
    configs = (
        dict(tenants)
        if tenants is not None
        else (load_dir(settings.config_dir) if settings.config_dir else {})
    )
    if settings.http_backend not in BACKENDS:
        raise ConfigError(
            "invalid settings", [("SMART_IMAGING_HTTP_BACKEND", f"one of {', '.join(BACKENDS)}")]
        )
    metrics, drain = Metrics(), drain or Drain()
    install_log_filters()
    routes: list[BaseRoute] = [
        wado_route("/{tenant}"),
        *qido_routes("/{tenant}"),
        wado_route("/dyn/{config}"),
        *qido_routes("/dyn/{config}"),
        *probe_routes(metrics, drain),
        *tenant_routes("/dyn/{config}"),
        *tenant_routes("/{tenant}"),
        *(extra_routes or []),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware(metrics, drain, settings.expose_pid),
        lifespan=_lifespan(settings, configs, binding_key(settings.key)),
        exception_handlers={
            SmartImagingError: error_response,
            HTTPException: http_error_response,
            Exception: unexpected_error_response,
        },
    )


def binding_key(secret: str | None) -> OctKey:
    """The binding-token key from ``SMART_IMAGING_KEY``; random (with a warning) when unset."""
    key, random_key = key_from_secret(secret)
    if random_key:
        log.warning(
            "SMART_IMAGING_KEY is not set: binding tokens use a random key and stop "
            "working when this process restarts; set it for restarts and replicas"
        )
    return key


def _lifespan(
    settings: Settings, configs: Mapping[str, TenantConfig], key: OctKey
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: one outbound client, the shared state (in-process, or Redis with
    ``settings.redis_url``) and the tenant registry built on them."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = create_client(settings.http_timeout, settings.http_backend, settings.upstream_connections)
        async with client as http:
            shared = await open_state(settings.redis_url, key.raw_value)
            try:
                registry = TenantRegistry(
                    configs,
                    http,
                    dynamic=settings.dynamic_tenants,
                    allow=settings.dynamic_upstream_allow,
                    max_dynamic=settings.max_dynamic_tenants,
                    state=shared,
                )
                guard = shared_guard(shared, configs)
                app.state.smart_imaging = state = AppState(
                    settings=settings, registry=registry, key=key, http=http, study_guard=guard
                )
                try:
                    yield
                finally:
                    await state.aclose()  # audit windows emitted, decision points closed
                    await registry.aclose()
            finally:
                await shared.aclose()

    return lifespan


def middleware(metrics: Metrics, drain: Drain, expose_pid: bool) -> list[Middleware]:
    """Outermost first: access log and metrics, CORS (so refusals carry it too), the drain gate."""
    return [
        Middleware(AccessLogMiddleware, metrics=metrics),
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type", "Prefer"],
            expose_headers=["Retry-After", "Content-Type", "Content-Length", "WWW-Authenticate", "Location"],
            max_age=600,
        ),
        Middleware(DrainGate, drain=drain, expose_pid=expose_pid),
    ]


def probe_routes(metrics: Metrics, drain: Drain) -> list[BaseRoute]:
    """``/livez`` (the process answers: Kubernetes liveness), ``/readyz`` (it takes requests:
    readiness; 503 while draining), ``/healthz`` (readiness with the tenants, for container health
    checks and people), ``/metrics`` (Prometheus)."""

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"status": "draining"} if drain.draining else {"status": "ready"}, _ready(drain))

    async def health(request: Request) -> JSONResponse:
        if drain.draining:
            return JSONResponse({"status": "draining", "version": __version__}, 503)
        state: AppState = request.app.state.smart_imaging
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "tenants": state.registry.names,
                "dynamicTenants": state.registry.dynamic_enabled,
            }
        )

    return [
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/livez", live, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]


def _ready(drain: Drain) -> int:
    return 503 if drain.draining else 200


PROBES = frozenset({"/healthz", "/readyz", "/livez", "/metrics"})
PID_HEADER = b"x-smart-imaging-pid"


class DrainGate:
    """Counts the requests in flight; while draining (``drain``), answers new ones 503 with
    ``Connection: close`` and ``Retry-After`` (probes still answer). A path with a control
    character (``%0A``...) is a 404 here: no route of ours has one, and Starlette's route patterns
    end in ``$``, which also matches before a final newline (``/studies%0A`` was ``/studies``). ``expose_pid``: every answer
    names the process that served it (``X-Smart-Imaging-Pid``), to see workers share the load."""

    def __init__(self, app: ASGIApp, drain: Drain, expose_pid: bool = False) -> None:
        self.app = app
        self.drain = drain
        self.pid = str(os.getpid()).encode() if expose_pid else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.draining and scope["path"] not in PROBES:
            await _refuse(scope, receive, send)
            return
        if not scope["path"].isprintable():
            await _not_found(scope, receive, send)
            return
        if self.pid is not None:
            send = self._naming_pid(send)
        self.drain.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.leave()

    def _naming_pid(self, send: Send) -> Send:
        pid = self.pid
        assert pid is not None

        async def naming(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (PID_HEADER, pid)]
            await send(message)

        return naming


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    headers = {"Retry-After": "1", "Connection": "close"}
    message = "the server is shutting down; retry the request"
    response = render_error(Request(scope), 503, "transient", "unavailable", message, headers)
    await response(scope, receive, send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    response = render_error(Request(scope), 404, "not-found", "not_found", "no such resource")
    await response(scope, receive, send)


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
