"""The viewer app: a static SMART on FHIR imaging viewer (plain ES modules, no build step) and the
config editor for dynamic tenants.

``routes()`` gives ``GET /`` (the viewer), ``/viewer/...`` (its assets), ``GET /config`` (the
editor), ``POST /api/validate-config`` and ``GET /api/viewer-config`` (what the server tells the
viewer: the OHIF deployment of ``SMART_IMAGING_OHIF_URL``, for "Open in OHIF"). The viewer is also at ``/app/viewer/``, where the
reference server's deployments put it (its smoke test looks there), with its assets under
``/app/viewer/assets/``. Tenant names ``viewer``, ``app``, ``config`` and ``api`` are reserved for
these.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .validate import validate_config

STATIC = Path(__file__).parent / "static"
RESERVED_TENANTS = frozenset({"viewer", "app", "config", "api"})
_NO_CACHE = {"Cache-Control": "no-cache"}


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=_NO_CACHE)


async def app_viewer(request: Request) -> Response:
    """The viewer page at ``/app/viewer/``, loading its assets from ``assets/`` next to it."""
    page = (STATIC / "index.html").read_text("utf-8")
    page = page.replace('href="/viewer/', 'href="/app/viewer/assets/')
    page = page.replace('src="/viewer/', 'src="/app/viewer/assets/')
    return Response(page, media_type="text/html; charset=utf-8", headers=_NO_CACHE)


async def app_viewer_slash(request: Request) -> Response:
    return RedirectResponse("/app/viewer/" + (f"?{request.url.query}" if request.url.query else ""))


async def viewer_config(request: Request) -> Response:
    state = getattr(request.app.state, "smart_imaging", None)
    ohif = state.settings.ohif_url if state is not None else None
    return JSONResponse({"ohifUrl": ohif or None}, headers=_NO_CACHE)


async def config_page(request: Request) -> Response:
    return FileResponse(STATIC / "config.html", headers=_NO_CACHE)


def routes() -> list[BaseRoute]:
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/config", config_page, methods=["GET", "HEAD"]),
        Route("/api/validate-config", validate_config, methods=["POST"]),
        Route("/api/viewer-config", viewer_config, methods=["GET"]),
        Mount("/viewer", app=StaticFiles(directory=STATIC), name="viewer"),
        Route("/app/viewer/", app_viewer, methods=["GET", "HEAD"]),
        Route("/app/viewer", app_viewer_slash, methods=["GET", "HEAD"]),
        Mount("/app/viewer/assets", app=StaticFiles(directory=STATIC), name="app-viewer-assets"),
    ]
