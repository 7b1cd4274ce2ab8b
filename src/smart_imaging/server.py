"""``smart-imaging serve``: uvicorn (httptools, uvloop) in one process or in N worker processes,
with a graceful shutdown on SIGTERM (``drain``).

Workers share one listening socket bound by the parent and build their app from the environment
(:func:`app_factory`: ``settings_env`` carries every setting, the binding key included, so a
binding minted by one worker opens in another). The parent restarts a worker that dies, forwards
SIGTERM/SIGINT to all of them and waits for their drains. Prometheus metrics are summed across the
workers (``prometheus_client`` multiprocess mode, a private folder unless
``PROMETHEUS_MULTIPROC_DIR`` is set).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .drain import Drain, process_drain
from .settings import Settings

log = logging.getLogger("smart_imaging.server")
APP_FACTORY = "smart_imaging.server:app_factory"
STARTUP_FAILURE = 3  # uvicorn's exit code for a worker that could not start
GRACE = 2.0  # seconds uvicorn still gives connections once the drain is over
KEEP_ALIVE = 75  # longer than a proxy's idle upstream keep-alive (nginx: 60 s), so it closes first


def app_factory() -> Starlette:
    """The app of one worker process, from ``SMART_IMAGING_*`` (uvicorn ``factory=True``)."""
    from .app import create_app, web_routes

    return create_app(Settings.from_env(), extra_routes=web_routes(), drain=process_drain())


def uvicorn_config(app: Any, settings: Settings, log_level: str) -> uvicorn.Config:
    """uvicorn's settings for this server: httptools and uvloop (the C parsers), no access log of
    its own (``observability``), no ``Server`` header, forwarded headers from a local proxy."""
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="uvloop" if _has_uvloop() else "asyncio",
        log_level=log_level.lower(),
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=int(GRACE),
        lifespan="on",
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        return False
    return True


class DrainingServer(uvicorn.Server):
    """uvicorn's server, but the first SIGTERM/SIGINT drains (``drain``) before it stops: new
    requests are refused with 503 while those in flight finish, for up to ``shutdown_timeout``
    seconds. A second signal stops at once. It exits 0 after a signal (uvicorn re-raises the
    signal, which makes the process end "killed by SIGTERM")."""

    def __init__(
        self, config: uvicorn.Config, drain: Drain, shutdown_timeout: float, worker: bool = False
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.shutdown_timeout = shutdown_timeout
        self.worker = worker  # a worker ignores SIGINT: Ctrl+C reaches the parent, which sends SIGTERM
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drainer: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.worker and sig == signal.SIGINT:
            return
        if self.drain.draining or self._loop is None or not self.started:
            self.force_exit = self.drain.draining  # a second signal: stop now
            self.should_exit = True
            return
        self.drain.begin()
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drainer = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        log.info(
            "draining: %d requests in flight, up to %g s; new requests get 503",
            self.drain.inflight,
            self.shutdown_timeout,
        )
        if not await self.drain.wait_idle(self.shutdown_timeout):
            log.warning("shutdown timeout: %d requests still in flight are cut", self.drain.inflight)
        self.should_exit = True


def serve_one(app: Starlette, settings: Settings, log_level: str, drain: Drain) -> int:
    """This process serves ``app`` (built with ``drain``); exit code."""
    server = DrainingServer(uvicorn_config(app, settings, log_level), drain, settings.shutdown_timeout)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


def _worker(
    config: uvicorn.Config, sockets: list[socket.socket], shutdown_timeout: float, level: str
) -> None:
    """A worker process (spawned): its logging, then its server on the parent's socket."""
    from .logging_setup import configure

    configure(level)
    server = DrainingServer(config, process_drain(), shutdown_timeout, worker=True)
    server.run(sockets=sockets)
    sys.exit(0 if server.started else STARTUP_FAILURE)


class Workers:
    """``count`` worker processes on one socket, supervised until SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, count: int, log_level: str) -> None:
        self.config = uvicorn_config(APP_FACTORY, settings, log_level)
        self.count = count
        self.level = log_level
        self.shutdown_timeout = settings.shutdown_timeout
        self.stop = threading.Event()
        self._context = multiprocessing.get_context("spawn")
        self._socket: socket.socket | None = None
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        self._socket = self.config.bind_socket()
        log.info("serving on http://%s:%d with %d workers", self.config.host, self.config.port, self.count)
        self.processes = [self._spawn() for _ in range(self.count)]
        code = 0
        try:
            while not self.stop.wait(0.5):
                code = self._supervise()
        finally:
            self._stop_all()
            self._socket.close()
        return code

    def _spawn(self) -> multiprocessing.process.BaseProcess:
        args = (self.config, [self._socket], self.shutdown_timeout, self.level)
        process = self._context.Process(target=_worker, args=args, name="smart-imaging-worker")
        process.start()
        return process

    def _supervise(self) -> int:
        """Replace dead workers; a worker that could not start stops everything (code 3)."""
        for index, process in enumerate(self.processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s could not start; stopping", process.pid)
                self.stop.set()
                return STARTUP_FAILURE
            log.warning("worker %s exited with %s; starting another", process.pid, process.exitcode)
            self.processes[index] = self._spawn()
        return 0

    def _stop_all(self) -> None:
        """SIGTERM to every worker (each drains), then wait; SIGKILL past the bound."""
        for process in self.processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.join(self.shutdown_timeout + GRACE + 5)
            if process.is_alive():
                log.error("worker %s did not stop in time; killed", process.pid)
                process.kill()
                process.join()


def serve_workers(settings: Settings, count: int, log_level: str) -> int:
    """``count`` workers with their metrics summed in one multiprocess folder."""
    own_folder = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="smart-imaging-metrics-")
    try:
        return Workers(settings, count, log_level).run()
    finally:
        if own_folder:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
