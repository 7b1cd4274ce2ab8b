"""Graceful shutdown: which requests are in flight, and whether the process is draining.

On SIGTERM (``server.DrainingServer``) the process starts draining: readiness answers 503
(``/readyz``, ``/healthz``), a new request gets 503 with ``Connection: close`` and
``Retry-After`` (a proxy such as nginx retries it on another replica), and the requests in flight,
long WADO-RS streams included, run to their end. The server stops once none is left, or after the
shutdown timeout. Liveness (``/livez``) stays 200 throughout: a draining process is not a broken
one (Kubernetes probes: liveness restarts, readiness only stops traffic).

One :class:`Drain` per process: the server and the app it serves share it (:func:`process_drain`).
"""

from __future__ import annotations

import asyncio
import time


class Drain:
    """In-flight request count and the draining flag of one process (single event loop)."""

    def __init__(self) -> None:
        self.draining = False
        self.inflight = 0
        self.since: float | None = None  # time.monotonic() when draining began
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1
        if self.draining and self.inflight <= 0 and self._idle is not None:
            self._idle.set()

    def begin(self) -> None:
        """Start draining (idempotent)."""
        if not self.draining:
            self.draining = True
            self.since = time.monotonic()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight; False when ``timeout`` seconds passed first."""
        if self.inflight <= 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


_PROCESS = Drain()


def process_drain() -> Drain:
    """The drain state of this process, shared by its server and its app."""
    return _PROCESS
