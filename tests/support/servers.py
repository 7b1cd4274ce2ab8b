"""An ASGI app under a real uvicorn in a background thread, on a loopback port."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

import uvicorn

from .ports import free_port


class ServerThread:
    """uvicorn in a daemon thread; ``start()`` returns once it accepts connections."""

    def __init__(
        self,
        app: Any,
        port: int | None = None,
        *,
        lifespan: Literal["on", "off", "auto"] = "on",
        start_timeout: float = 20,
        graceful_timeout: int = 2,
    ) -> None:
        self.port = port or free_port()
        self.start_timeout = start_timeout
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
            timeout_graceful_shutdown=graceful_timeout,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
