"""Helpers for browser tests and the viewer benchmark: the real ``smart-imaging demo`` process on
a free port, Debian Chromium through Playwright, and the SMART launch through the EHR's page."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..support.browser import CHROMIUM as CHROMIUM
from ..support.browser import CHROMIUM_ARGS as CHROMIUM_ARGS
from ..support.browser import VIEWPORT as VIEWPORT
from ..support.browser import chromium_available as chromium_available
from ..support.browser import launch_browser as launch_browser
from ..support.ports import free_port
from ..support.processes import stop_process, wait_for_url


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
        try:
            wait_for_url(
                f"http://127.0.0.1:{self.port}/healthz",
                process=self.proc,
                timeout=timeout,
                what="demo",
                interval=0.2,
                request_timeout=2,
                exited=lambda code: f"demo exited: {self.log_path.read_text()[-2000:]}",
            )
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, timeout=10, sig=signal.SIGINT)


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
