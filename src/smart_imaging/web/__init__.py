"""The viewer app: a static SMART on FHIR imaging viewer (plain ES modules, no build step) and the
config editor for dynamic tenants.

``routes()`` gives ``GET /`` (the viewer), ``/viewer/...`` (its assets), ``GET /config`` (the
editor) and ``POST /api/validate-config``. Tenant names ``viewer``, ``app``, ``config`` and ``api``
are reserved for these.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .validate import validate_config

STATIC = Path(__file__).parent / "static"
RESERVED_TENANTS = frozenset({"viewer", "app", "config", "api"})
_NO_CACHE = {"Cache-Control": "no-cache"}


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=_NO_CACHE)


async def config_page(request: Request) -> Response:
    return FileResponse(STATIC / "config.html", headers=_NO_CACHE)


def routes() -> list[BaseRoute]:
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/config", config_page, methods=["GET", "HEAD"]),
        Route("/api/validate-config", validate_config, methods=["POST"]),
        Mount("/viewer", app=StaticFiles(directory=STATIC), name="viewer"),
    ]
