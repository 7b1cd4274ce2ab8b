"""Fixtures for the viewer's browser tests: one ``smart-imaging demo`` process per session,
Debian Chromium through Playwright, a fresh browser context per test, and in-process imaging
servers for failure paths the demo has no tenant for (503 + Retry-After)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smart_imaging.app import create_app
from smart_imaging.config.tenant import TenantConfig
from smart_imaging.settings import Settings

from ..conftest import ServerThread
from ..support.browser import running_browser
from .harness import VIEWPORT, DemoProcess, chromium_available

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright>=1.40")


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    data = tmp_path_factory.mktemp("viewer-demo")
    server = DemoProcess(data / "data", data / "demo.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not chromium_available():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with running_browser() as instance:
        yield instance


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Screenshots go to docs/screenshots/ with UPDATE_SCREENSHOTS=1, else to a temp dir (so a
    plain test run leaves the committed PNGs alone)."""
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path

    def take(page: Any, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))
        assert path.stat().st_size > 1000
        return path

    return take


@pytest.fixture
def delayed_imaging(demo: DemoProcess, tmp_path: Path) -> Iterator[Callable[[float], str]]:
    """An imaging server whose tenant answers 503 + Retry-After until ``seconds`` from now, then
    serves the demo's sample studies (mock authorization, patient Marcus Okafor by MRN)."""
    servers: list[ServerThread] = []

    def start(seconds: float) -> str:
        config = TenantConfig.model_validate(
            {
                "authorization": {
                    "type": "mock",
                    "patient": {
                        "resourceType": "Patient",
                        "id": "marcus-okafor",
                        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "MRN-1002"}],
                    },
                },
                "images": {
                    "type": "folder",
                    "path": str(demo.data / "samples"),
                    "index": str(tmp_path / "index.sqlite"),
                    "delay": {"lookupUntil": time.time() + seconds},
                },
            }
        )
        app = create_app(Settings(key="viewer-test-key"), tenants={"slow": config})
        server = ServerThread(app).start()
        servers.append(server)
        return f"{server.url}/slow/fhir"

    yield start
    for server in servers:
        server.stop()
