"""The real OHIF Viewer v3 (npm ``@ohif/app``, pinned) as a test fixture: install, serve, drive, judge.

- ``install_ohif()`` runs ``scripts/install-ohif.sh`` (cached outside the repository; no network
  once installed) and returns the ``dist/`` folder.
- ``OhifServer`` serves that folder on a loopback port with our own ``app-config.js`` (one DICOMweb
  data source) and a fallback to ``index.html`` for OHIF's client-side routes (``/viewer``).
- ``open_study()`` drives it in headless Debian Chromium through Playwright: it opens
  ``/viewer?StudyInstanceUIDs=...`` (plus ``&token=``), records every request and its status, waits
  until the viewport shows an image and the network is quiet, and returns a screenshot.
- ``image_drawn()`` judges from screenshot pixels whether an image is drawn: a canvas read-back of
  WebGL is blank, so the screenshot is taken with every element but the canvases hidden (CSS
  ``visibility``), which leaves out the text overlays OHIF lays over the image.
"""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np
from PIL import Image

from .support import browser as support_browser
from .support.browser import CHROMIUM as CHROMIUM
from .support.browser import VIEWPORT as VIEWPORT

OHIF_VERSION = "3.13.2"
ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "scripts" / "install-ohif.sh"
# NOTES.md: WebGL in headless Chromium needs SwiftShader through ANGLE.
CHROMIUM_ARGS = [*support_browser.CHROMIUM_ARGS, *support_browser.WEBGL_ARGS]
# Everything but the canvases hidden while the screenshot is taken (``visibility`` is inherited
# but a descendant may turn itself visible again).
ONLY_CANVASES = "* { visibility: hidden !important; } canvas { visibility: visible !important; }"


def install_ohif(timeout: float = 900) -> Path:
    """The installed ``dist/`` folder of ``@ohif/app@OHIF_VERSION`` (installs it on first use)."""
    env = {**os.environ, "OHIF_VERSION": OHIF_VERSION}
    done = subprocess.run(
        ["bash", str(INSTALLER)], check=True, capture_output=True, text=True, env=env, timeout=timeout
    )
    dist = Path(done.stdout.strip().splitlines()[-1])
    if not (dist / "index.html").is_file():
        raise RuntimeError(f"OHIF install at {dist} has no index.html")
    return dist


def app_config(dicomweb_root: str, *, lazy: bool = True) -> dict[str, Any]:
    """OHIF's ``window.config`` with one DICOMweb data source at ``dicomweb_root``."""
    return {
        "routerBasename": "/",
        "showStudyList": True,
        "extensions": [],
        "modes": [],
        # The banner and the first-visit tour would cover part of the viewport.
        "investigationalUseDialog": {"option": "never"},
        "customizationService": {"ohif.tours": {"$set": []}},
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": False,
        "showLoadingIndicator": True,
        "maxNumberOfWebWorkers": 2,
        "defaultDataSourceName": "dicomweb",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "dicomweb",
                "configuration": {
                    "friendlyName": "smart-imaging test",
                    "name": "dicomweb",
                    "wadoRoot": dicomweb_root,
                    "qidoRoot": dicomweb_root,
                    "wadoUriRoot": dicomweb_root,
                    "qidoSupportsIncludeField": True,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": lazy,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "staticWado": False,
                    "singlepart": "bulkdata,video",
                    "omitQuotationForMultipartRequest": True,
                },
            }
        ],
    }


class _Handler(SimpleHTTPRequestHandler):
    """Static files from ``directory``; ``/app-config.js`` from memory; extension-less paths that
    are not files (OHIF's routes) get ``index.html``."""

    def __init__(self, *args: Any, config_js: bytes, **kwargs: Any) -> None:
        self.config_js = config_js
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/app-config.js":
            self._send_config()
            return
        local = Path(self.directory) / path.lstrip("/")
        if not local.exists() and "." not in path.rsplit("/", 1)[-1]:
            self.path = "/index.html"
        super().do_GET()

    def _send_config(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/javascript")
        self.send_header("Content-Length", str(len(self.config_js)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(self.config_js)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class OhifServer:
    """OHIF's static build on a loopback port with our ``app-config.js``: ``config`` as
    ``window.config``, or a whole script (``config_js``, e.g. the one docs/notes/ohif.md documents)."""

    def __init__(
        self, dist: Path, config: dict[str, Any] | None = None, *, config_js: str | None = None
    ) -> None:
        script = config_js if config_js is not None else f"window.config = {json.dumps(config, indent=2)};\n"
        handler = functools.partial(_Handler, directory=str(dist), config_js=script.encode())
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> OhifServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@dataclass
class RecordedRequest:
    method: str
    url: str
    resource_type: str
    status: int | None = None  # None: no response (failed, or still pending at the end)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.status is not None and self.status < 400


@dataclass
class OhifResult:
    requests: list[RecordedRequest]
    screenshot: bytes  # PNG, the whole page with only canvases visible
    viewport: tuple[int, int, int, int] | None  # x, y, width, height of the largest canvas
    drawn: bool
    page_errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def to(self, root: str) -> list[RecordedRequest]:
        """The requests sent to URLs under ``root`` (e.g. the DICOMweb data source)."""
        return [r for r in self.requests if r.url.startswith(root)]

    def failed(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.ok]


def launch_browser(playwright: Any) -> Any:
    return support_browser.launch_browser(playwright, CHROMIUM_ARGS)


def viewer_url(
    ohif_url: str, study_uid: str, token: str | None = None, params: dict[str, str] | None = None
) -> str:
    url = f"{ohif_url}/viewer?StudyInstanceUIDs={quote(study_uid)}"
    url += "".join(f"&{quote(k)}={quote(v, safe='')}" for k, v in (params or {}).items())
    return url + (f"&token={quote(token)}" if token else "")


class _Recorder:
    """Every request a page makes, with its final status; ``pending`` counts open ones."""

    def __init__(self, page: Any) -> None:
        self.requests: dict[Any, RecordedRequest] = {}
        self.last_activity = time.monotonic()
        page.on("request", self._started)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._failed)

    def _started(self, request: Any) -> None:
        self.requests[request] = RecordedRequest(request.method, request.url, request.resource_type)
        self.last_activity = time.monotonic()

    def _finished(self, request: Any) -> None:
        response = request.response()
        self.requests[request].status = response.status if response else None
        self.last_activity = time.monotonic()

    def _failed(self, request: Any) -> None:
        self.requests[request].failure = request.failure or "failed"
        self.last_activity = time.monotonic()

    @property
    def pending(self) -> int:
        return sum(1 for r in self.requests.values() if r.status is None and r.failure is None)


def _largest_canvas(page: Any) -> tuple[int, int, int, int] | None:
    box = page.evaluate(
        """() => {
            let best = null;
            for (const c of document.querySelectorAll('canvas')) {
                const r = c.getBoundingClientRect();
                if (r.width * r.height > (best ? best.width * best.height : 0)) best = r;
            }
            return best && {x: best.x, y: best.y, width: best.width, height: best.height};
        }"""
    )
    if not box or box["width"] < 32 or box["height"] < 32:
        return None
    return (int(box["x"]), int(box["y"]), int(box["width"]), int(box["height"]))


def open_study(
    browser: Any,
    ohif_url: str,
    study_uid: str,
    *,
    token: str | None = None,
    timeout: float = 90,
    params: dict[str, str] | None = None,
) -> OhifResult:
    """Open one study in OHIF (``params``: more query parameters of its URL) and wait (up to
    ``timeout`` s) until an image is drawn in the viewport and no request has been open or started
    for a second."""
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        recorder = _Recorder(page)
        started = time.monotonic()
        page.goto(viewer_url(ohif_url, study_uid, token, params), wait_until="load")
        shot, box, drawn = b"", None, False
        while time.monotonic() - started < timeout:
            box = _largest_canvas(page)
            shot = page.screenshot(style=ONLY_CANVASES)
            drawn = box is not None and image_drawn(shot, box)
            if drawn and recorder.pending == 0 and time.monotonic() - recorder.last_activity > 1.0:
                break
            page.wait_for_timeout(500)
        elapsed = time.monotonic() - started
        return OhifResult(list(recorder.requests.values()), shot, box, drawn, errors, elapsed)
    finally:
        context.close()


def image_drawn(png: bytes, box: tuple[int, int, int, int], *, share: float = 0.02, levels: int = 8) -> bool:
    """Whether the screenshot shows an image inside ``box``: at least ``share`` of its pixels differ
    from the background (the most common grey level on the box's border) by more than 16 levels,
    with at least ``levels`` distinct grey levels among them (a flat patch or a speck is no image).
    Meant for screenshots taken with ``ONLY_CANVASES``, where no text overlay is visible."""
    x, y, width, height = box
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)
    region = gray[y : y + height, x : x + width]
    if region.size == 0:
        return False
    border = np.concatenate([region[0], region[-1], region[:, 0], region[:, -1]])
    background = int(np.bincount(border.astype(np.int64)).argmax())
    differs = np.abs(region - background) > 16
    return bool(differs.mean() >= share and np.unique(region[differs]).size >= levels)
