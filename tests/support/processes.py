"""Child processes of the tests (Orthanc, oidc-provider, ``smart-imaging demo``): wait until
they answer, stop them."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import httpx

Process = subprocess.Popen[bytes] | subprocess.Popen[str]


def stop_process(process: Process, timeout: float = 10, sig: int = signal.SIGTERM) -> None:
    """``sig`` (SIGTERM unless told), then SIGKILL if it has not exited within ``timeout`` s."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_url(
    url: str,
    *,
    process: Process | None = None,
    timeout: float = 30,
    what: str = "server",
    auth: tuple[str, str] | None = None,
    interval: float = 0.1,
    request_timeout: float = 1,
    exited: Callable[[int], str] | None = None,
) -> None:
    """Poll ``GET url`` until it answers 200. Raises RuntimeError when ``process`` exits first
    (message from ``exited(returncode)`` when given) or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            code = int(process.returncode)
            raise RuntimeError(exited(code) if exited else f"{what} exited with {code}")
        try:
            if httpx.get(url, auth=auth, timeout=request_timeout).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{what} did not start within {timeout:g} s")
