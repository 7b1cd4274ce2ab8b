"""The EHR sandbox as its own Starlette app, meant to be mounted (the demo mounts it at
``/ehr``). Every URL it emits comes from ``EhrConfig.base_url``; with
``EhrConfig.derive_from_request`` its origin is the request's (scheme and ``Host``)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from smart_imaging.errors import SmartImagingError
from smart_imaging_demo.ehr import pages
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.fhir import FhirEndpoints, fhir_error
from smart_imaging_demo.ehr.http import request_config
from smart_imaging_demo.ehr.keys import Signer
from smart_imaging_demo.ehr.oauth import OAuthEndpoints
from smart_imaging_demo.ehr.store import Store
from smart_imaging_demo.ehr.tokens import TokenService

DB_FILE = "ehr.sqlite"


def create_ehr_app(config: EhrConfig) -> Starlette:
    """Build the sandbox. State lives in ``{data_dir}/ehr.sqlite`` and the id_token signing key
    in ``{data_dir}/ehr-signing-key.json`` (created at first run). ``app.state.ehr_store`` is
    the open store; call its ``close()`` when done (mounted apps get no lifespan of their own).
    """
    store = Store(config.data_dir / DB_FILE)
    store.purge(config.now())
    signer = Signer.load_or_create(config.data_dir)
    tokens = TokenService(config, store, signer)

    async def home(request: Request) -> Response:
        return HTMLResponse(pages.home_page(request_config(config, request)))

    routes = [
        Route("/", home),
        *OAuthEndpoints(config, store, tokens, signer).routes(),
        *FhirEndpoints(config, tokens).routes(),
    ]
    # Browser apps on other origins call the token endpoint and FHIR API directly; bearer
    # tokens, no cookies, so any origin is fine (SMART App Launch 2, "CORS").
    cors = Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Accept"],
        expose_headers=["WWW-Authenticate", "Location"],
    )
    app = Starlette(routes=routes, middleware=[cors], exception_handlers={SmartImagingError: fhir_error})
    app.state.ehr_store = store
    app.state.ehr_config = config
    return app
