"""Pieces the benchmarks share: a server process, and sampling its memory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.orthanc import free_port


def start_server(config_dir: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`smart-imaging serve` on a free loopback port; returns the process and its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smart_imaging.cli",
            "serve",
            "--config-dir",
            str(config_dir),
            "--port",
            str(port),
            "--workers",
            "1",  # one process: its CPU and memory are what the benchmarks sample
            "--log-level",
            "warning",
        ],
        env={**os.environ, "SMART_IMAGING_KEY": "bench", **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return server, base
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("server did not start")


class RssSampler(threading.Thread):
    """Peak resident memory of a process, sampled every 20 ms until ``stop`` is set."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.process.memory_info().rss
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)
