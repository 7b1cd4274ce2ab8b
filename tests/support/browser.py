"""Debian Chromium through Playwright (NOTES.md: ``playwright install`` does not work here)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("SMART_IMAGING_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# WebGL in headless Chromium needs SwiftShader through ANGLE (NOTES.md, OHIF).
WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
VIEWPORT = {"width": 1280, "height": 800}


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def launch_browser(playwright: Any, args: Sequence[str] = CHROMIUM_ARGS) -> Any:
    """A headless Chromium from ``playwright.chromium`` with ``args``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(args))


@contextlib.contextmanager
def running_browser(args: Sequence[str] = CHROMIUM_ARGS) -> Iterator[Any]:
    """``with running_browser() as browser:`` a headless Chromium for the block (Playwright)."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        instance = launch_browser(playwright, args)
        try:
            yield instance
        finally:
            instance.close()
