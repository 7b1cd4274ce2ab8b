"""Helpers for browser tests and the viewer benchmark: the real ``smart-imaging demo`` process on
a free port, Debian Chromium through Playwright, and the SMART launch through the EHR's page."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = os.environ.get("SMART_IMAGING_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_command(port: int, data: Path) -> list[str]:
    script = Path(sys.executable).with_name("smart-imaging")
    head = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "import sys; from smart_imaging.cli import main; sys.exit(main())"]
    )
    return [*head, "demo", "--port", str(port), "--data", str(data)]


class DemoProcess:
    """``smart-imaging demo`` as a child process; ``base`` is its public URL (localhost)."""

    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://localhost:{self.port}"
        self.data = data
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> DemoProcess:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            demo_command(self.port, self.data), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"demo exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("demo did not start in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def connect(
    page: Any,
    base: str,
    patient: str = "Marcus Okafor",
    server: str = "Demo EHR (this server)",
    approve: bool = True,
) -> None:
    """Open the viewer, connect to ``server`` and approve (or deny) for ``patient`` at the EHR."""
    if not page.url.startswith(base):
        page.goto(f"{base}/")
    page.get_by_role("button", name=f"Connect to {server}").click()
    page.wait_for_url("**/ehr/authorize?**")
    if approve:
        page.get_by_label(patient, exact=False).check()
        page.get_by_role("button", name="Approve").click()
    else:
        page.get_by_role("button", name="Deny").click()
    page.wait_for_url(f"{base}/")


CANVAS_STATS = """(id) => {
  const c = document.getElementById(id);
  const ctx = c.getContext('2d');
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set(); let lit = 0, n = 0;
  for (let i = 0; i < d.length; i += 4 * 7) { n++; if (d[i] > 8) lit++; seen.add(d[i]); }
  return {distinct: seen.size, litFraction: lit / n, width: c.width, height: c.height};
}"""
