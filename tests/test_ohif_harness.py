"""The OHIF harness (tests/ohif.py) proven against Orthanc directly: the real OHIF v3 in headless
Chromium displays a sample study, with lazy study loading on and off, and no request it makes fails.

OHIF runs on its own origin and cannot do HTTP basic auth, so a small proxy stands between it and
the session's Orthanc: it answers CORS preflights, demands OHIF's ``Authorization: Bearer`` (which
OHIF takes from its ``?token=``), and forwards to Orthanc with basic auth, streaming the bodies.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .ohif import OhifServer, app_config, image_drawn, open_study
from .orthanc import Orthanc
from .sample_dicom import SampleData

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright>=1.40")

TOKEN = "Ohif-Test-Token.MixedCase_123"
CT_PATIENT = "77654033"  # pydicom's dicomdirtests: a CT study of 4 instances
FORWARDED = ("accept", "range", "if-none-match")
RETURNED = ("content-type", "content-length", "etag", "cache-control")


def cors_proxy(
    upstream: str, auth: tuple[str, str], token: str, seen: list[dict[str, str]], refuse: str | None = None
) -> Starlette:
    """``/dicom-web/...`` -> ``upstream/...`` with CORS for any origin and basic auth to Orthanc;
    requests without ``Authorization: Bearer {token}`` get 401, paths containing ``refuse`` 404.
    ``seen`` records each request's method, path and headers."""
    client = httpx.AsyncClient(auth=auth, timeout=60)
    cors = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "Authorization, Accept, Content-Type",
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Expose-Headers": "Content-Type, Content-Length",
        "Access-Control-Max-Age": "600",
    }

    async def forward(request: Request) -> Response:
        seen.append({"method": request.method, "path": request.url.path, **request.headers})
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=cors)
        if request.headers.get("authorization") != f"Bearer {token}":
            return Response('{"error":"invalid_token"}', status_code=401, headers=cors)
        if refuse and refuse in request.url.path:
            return Response('{"error":"not_found"}', status_code=404, headers=cors)
        url = f"{upstream}/{request.path_params['path']}?{request.url.query}"
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED} | {
            "accept-encoding": "identity"
        }
        sent = client.build_request("GET", url, headers=headers)
        answer = await client.send(sent, stream=True)
        kept = {k: v for k, v in answer.headers.items() if k in RETURNED}
        return StreamingResponse(
            answer.aiter_raw(), answer.status_code, {**kept, **cors}, background=BackgroundTask(answer.aclose)
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    routes = [Route("/dicom-web/{path:path}", forward, methods=["GET", "OPTIONS"])]
    return Starlette(routes=routes, lifespan=lifespan)


def ct_study(data: SampleData) -> str:
    for study in data.patients[CT_PATIENT]:
        blob = next(iter(data.instances_of(study).values()))
        if pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True).Modality == "CT":
            return study
    raise AssertionError("the sample data has no CT study")


Proxy = Callable[..., tuple[str, list[dict[str, str]]]]


@pytest.fixture
def proxy(serve: Callable[[Any], str], orthanc: Orthanc, sample_data: SampleData) -> Proxy:
    """``proxy(refuse=None) -> (DICOMweb root, requests seen)`` in front of the session's Orthanc."""

    def start(refuse: str | None = None) -> tuple[str, list[dict[str, str]]]:
        seen: list[dict[str, str]] = []
        base = serve(cors_proxy(orthanc.dicomweb_url, orthanc.auth, TOKEN, seen, refuse))
        return f"{base}/dicom-web", seen

    return start


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "eager"])
def test_ohif_displays_a_study_from_orthanc(
    lazy: bool, ohif_dist: Any, ohif_browser: Any, proxy: Proxy, sample_data: SampleData
) -> None:
    root, seen = proxy()
    study = ct_study(sample_data)
    server = OhifServer(ohif_dist, app_config(root, lazy=lazy)).start()
    try:
        result = open_study(ohif_browser, server.url, study, token=TOKEN)
    finally:
        server.stop()

    failed = [(r.method, r.url, r.status, r.failure) for r in result.failed()]
    assert failed == [], failed
    assert result.drawn, f"no image in the viewport {result.viewport} after {result.elapsed:.0f} s"
    dicomweb = [r.url.removeprefix(root) for r in result.to(root) if r.method == "GET"]
    assert any("/frames/" in url for url in dicomweb), dicomweb
    if lazy:  # NOTES.md: a QIDO for the study, then its series, before any metadata
        first = urlsplit(dicomweb[0])
        assert (first.path, parse_qs(first.query)["StudyInstanceUID"]) == ("/studies", [study]), dicomweb[0]
        assert any(url.startswith(f"/studies/{study}/series?") for url in dicomweb), dicomweb
    else:
        assert any(url.startswith(f"/studies/{study}/metadata") for url in dicomweb), dicomweb
    gets = [s for s in seen if s["method"] == "GET"]
    assert gets and all(s.get("authorization") == f"Bearer {TOKEN}" for s in gets)


def test_harness_sees_refused_frames(
    ohif_dist: Any, ohif_browser: Any, proxy: Proxy, sample_data: SampleData
) -> None:
    """The harness can fail: when every frame request gets 404, it reports those requests and an
    empty viewport."""
    root, _ = proxy(refuse="/frames/")
    server = OhifServer(ohif_dist, app_config(root, lazy=True)).start()
    try:
        result = open_study(ohif_browser, server.url, ct_study(sample_data), token=TOKEN, timeout=15)
    finally:
        server.stop()
    assert not result.drawn
    refused = [r for r in result.failed() if "/frames/" in r.url]
    assert refused and all(r.status == 404 for r in refused), result.failed()
    assert all(r.ok for r in result.to(root) if "/frames/" not in r.url)


def test_image_drawn_judges_pixels() -> None:
    """The pixel judgement itself: a black viewport, a flat grey one and a lone text-like speck are
    not images; a textured patch is."""
    box = (10, 10, 200, 100)

    def png(pixels: np.ndarray[Any, Any]) -> bytes:
        out = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(out, format="PNG")
        return out.getvalue()

    black = np.zeros((150, 250), dtype=np.uint8)
    flat = black.copy()
    flat[30:90, 60:160] = 128
    speck = black.copy()
    speck[55:60, 100:110] = np.arange(50).reshape(5, 10) * 5
    image = black.copy()
    image[20:100, 70:150] = np.random.default_rng(1).integers(20, 255, size=(80, 80))
    assert not image_drawn(png(black), box)
    assert not image_drawn(png(flat), box)
    assert not image_drawn(png(speck), box)
    assert image_drawn(png(image), box)
    assert not image_drawn(png(image), (0, 0, 0, 0))
