"""The demo as one ASGI app: the EHR sandbox at ``/ehr`` and the imaging server with the tenants
of ``tenants.py`` (``demo``, ``dual``, ``open``), whose images come from a local folder.

Everything secret is generated into ``data_dir`` at first run (never committed): the imaging
server's key pairs at the sandbox (ES384, backend services for ``demo`` and the EHR-leg client
of ``dual``; the sandbox gets the public halves), the binding token secret, and the ``dual``
authorization server's state (``oauth/``). Sample images are expected under
``{data_dir}/samples`` (``smart-imaging samples``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.routing import Mount

from smart_imaging.app import create_app, web_routes
from smart_imaging.settings import Settings

from .ehr import BackendClient, EhrConfig, create_ehr_app
from .tenants import DUAL_TENANT, TENANT, demo_tenant, dual_tenant, open_tenant, sandbox_clients

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def create_demo_app(
    base_url: str,
    data_dir: Path,
    *,
    samples_dir: Path | None = None,
    dynamic_upstream_allow: tuple[str, ...] = ("localhost", "127.0.0.1"),
    derive_from_request: bool = False,
) -> Starlette:
    """``base_url`` is the URL of the whole demo, e.g. ``http://localhost:8000``: the imaging
    server calls the sandbox there. With ``derive_from_request`` (no ``--base-url``) the URLs
    the demo emits follow the name each request used (``localhost``, ``127.0.0.1``, ...) and
    every check accepts each loopback name; otherwise ``base_url`` is the only public URL.

    Tenants (``tenants.py``): ``demo``, ``dual`` and ``open``; dynamic tenants are on, limited to
    ``dynamic_upstream_allow``.
    """
    base_url = base_url.rstrip("/")
    data_dir.mkdir(parents=True, exist_ok=True)
    backend_jwk = _secret_json(data_dir / "imaging-server-key.json", _new_backend_key)
    dual_jwk = _secret_json(data_dir / "dual-ehr-client-key.json", _new_backend_key)
    aliases = loopback_aliases(base_url) if derive_from_request else ()
    origins = (_origin(base_url), *aliases)
    clients = sandbox_clients(backend_jwk, dual_jwk, origins)
    ehr = create_ehr_app(_sandbox_config(base_url, data_dir, clients, aliases, derive_from_request))
    samples, index = samples_dir or data_dir / "samples", data_dir / "folder-index.sqlite"
    ehr_fhir = f"{base_url}/ehr/fhir"
    tenants = {
        TENANT: demo_tenant(ehr_fhir, backend_jwk, samples, index),
        DUAL_TENANT: dual_tenant(ehr_fhir, dual_jwk, samples, index, origins),
        "open": open_tenant(samples, index),
    }
    settings = Settings(
        base_url=None if derive_from_request else base_url,  # None: each request's own origin
        key=_secret_text(data_dir / "binding-key", lambda: secrets.token_urlsafe(32)),
        dynamic_tenants=True,
        dynamic_upstream_allow=dynamic_upstream_allow,
        state_dir=data_dir / "oauth",
        ohif_url=os.environ.get("SMART_IMAGING_OHIF_URL", "").strip() or None,  # "Open in OHIF"
    )
    return _compose(ehr, create_app(settings, tenants=tenants, extra_routes=web_routes()))


def _sandbox_config(
    base_url: str, data_dir: Path, clients: tuple[BackendClient, ...], aliases: tuple[str, ...], derive: bool
) -> EhrConfig:
    return EhrConfig(
        base_url=f"{base_url}/ehr",
        data_dir=data_dir / "ehr",
        imaging_fhir_base_url=f"{base_url}/{TENANT}/fhir",
        dual_imaging_fhir_base_url=f"{base_url}/{DUAL_TENANT}/fhir",
        backend_clients=clients,
        derive_from_request=derive,
        alias_origins=aliases,
    )


def _compose(ehr: Starlette, imaging: Starlette) -> Starlette:
    """The sandbox at ``/ehr``, the imaging server (and viewer) at ``/``, one lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:  # mounted apps get no lifespan of their own: run the imaging server's here
            async with imaging.router.lifespan_context(imaging):
                await imaging.state.smart_imaging.registry.get(TENANT).source.start()  # index now
                yield
        finally:
            ehr.state.ehr_store.close()

    app = Starlette(routes=[Mount("/ehr", app=ehr), Mount("/", app=imaging)], lifespan=lifespan)
    app.state.ehr = ehr
    app.state.imaging = imaging
    return app


def loopback_aliases(base_url: str) -> tuple[str, ...]:
    """The other names of a loopback ``base_url``'s origin (``localhost`` is ``127.0.0.1`` is
    ``[::1]`` at the same port); none for another host."""
    parts = urlsplit(base_url)
    if parts.hostname not in LOOPBACK:
        return ()
    port = f":{parts.port}" if parts.port else ""
    names = (f"{parts.scheme}://{host}{port}" for host in ("localhost", "127.0.0.1", "[::1]"))
    return tuple(n for n in names if n != _origin(base_url))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _new_backend_key() -> dict[str, Any]:
    key = ECKey.generate_key("P-384", parameters={"alg": "ES384", "use": "sig"}, auto_kid=True)
    return dict(key.as_dict(private=True))


def _secret_json(path: Path, make: Any) -> dict[str, Any]:
    return dict(json.loads(_secret_text(path, lambda: json.dumps(make()))))


def _secret_text(path: Path, make: Any) -> str:
    """Read a secret file, or create it (mode 0600) with ``make()`` at first run."""
    if path.exists():
        return path.read_text("utf-8").strip()
    value = str(make())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    return value
