"""A plain nginx reverse proxy as a child process (Debian ``nginx``), for benchmarks.

``nginx -c CONF -p DIR`` with ``daemon off;``: pid, error log and every temp path live in DIR,
no access log. Upstream keep-alive (``proxy_http_version 1.1`` + an empty ``Connection``
header) and no buffering, so a streamed body passes through as it comes (NOTES.md, nginx).
Several upstream ports make a round-robin pool (replicas); nginx retries an idempotent request
on the next one when a connection fails.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
READY_PATH = "/__nginx_ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(directory: Path, port: int, upstreams: Sequence[int], workers: str = "auto") -> str:
    """The whole configuration: one server on 127.0.0.1:``port`` proxying to ``upstreams``."""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstreams)
    temps = "\n".join(f"    {name}_temp_path {directory / name};" for name in TEMP_PATHS)
    return f"""daemon off;
worker_processes {workers};
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temps}
    upstream backend {{
{servers}
        keepalive 128;
        keepalive_requests 100000;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 100000;
        location = {READY_PATH} {{ return 200 "ok"; }}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 300s;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


class Nginx:
    """``Nginx([upstream ports]).start()``; ``url`` is its base; ``stop()`` ends it."""

    def __init__(self, upstreams: Sequence[int], workers: str = "auto") -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-bench-"))
        self.config = nginx_config(self.dir, self.port, upstreams, workers)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15) -> Nginx:
        for name in TEMP_PATHS:
            (self.dir / name).mkdir(mode=0o777, exist_ok=True)
        self.dir.chmod(0o755)  # workers may run as another user when nginx starts as root
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config)
        self.process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.dir), "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(f"GET {READY_PATH} HTTP/1.0\r\n\r\n".encode())
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {self.error_log()}")

    def pids(self) -> list[int]:
        """The master and its workers."""
        import psutil

        if self.process is None:
            return []
        master = psutil.Process(self.process.pid)
        return [master.pid, *(child.pid for child in master.children())]

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
