"""Access log (one JSON line per request, no tokens) and Prometheus metrics, as ASGI middleware."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from contextvars import ContextVar
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("smart_imaging.access")
_BINDING = re.compile(r"/wado/[^/]+")
_DYN = re.compile(r"^/dyn/[^/]+")
QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz", "/livez"})  # probes: no access log line


def redact_path(path: str) -> str:
    """Binding tokens and dynamic configs are capabilities: never log them."""
    return _BINDING.sub("/wado/{binding}", _DYN.sub("/dyn/{config}", path))


_incomplete: ContextVar[bool] = ContextVar("smart_imaging_response_incomplete", default=False)
UVICORN_INCOMPLETE = "ASGI callable returned without completing response."


def mark_response_incomplete() -> None:
    """The current request's response is left incomplete on purpose, and that is logged already.

    The server then closes the connection (a broken transfer for the client) and would log its
    own error line about it; :class:`IncompleteResponseFilter` drops that line.
    """
    _incomplete.set(True)


class IncompleteResponseFilter(logging.Filter):
    """Drops uvicorn's "returned without completing response" line for responses the app left
    incomplete on purpose (uvicorn logs it from the task that ran the app, so the context
    variable set during the request is visible). Every other such line still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_incomplete.get() and record.getMessage() == UVICORN_INCOMPLETE)


def install_log_filters() -> None:
    """Idempotent: add :class:`IncompleteResponseFilter` to uvicorn's error logger."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, IncompleteResponseFilter) for f in logger.filters):
        logger.addFilter(IncompleteResponseFilter())


def route_kind(path: str) -> str:
    if "/wado/" in path:
        return "wado"
    if "/fhir" in path:
        return "fhir"
    if path.startswith("/ehr"):
        return "ehr"
    return "other"


class Metrics:
    """The server's Prometheus metrics. :meth:`record` caches the labelled children: a label
    lookup takes a lock and builds a tuple, per metric, per request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "smart_imaging_requests_total", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "smart_imaging_request_seconds",
            "Time to the end of the response",
            ["route"],
            registry=self.registry,
        )
        self.bytes = Counter(
            "smart_imaging_response_bytes_total", "Response body bytes", ["route"], registry=self.registry
        )
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}  # few routes x statuses
        self._scraped: CollectorRegistry | None = None

    def exposition(self) -> bytes:
        """The text format of every metric; summed over the workers of ``serve --workers N``
        (``prometheus_client`` multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``)."""
        if self._scraped is None:
            self._scraped = self.registry
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                from prometheus_client import multiprocess

                self._scraped = CollectorRegistry()
                multiprocess.MultiProcessCollector(self._scraped)  # type: ignore[no-untyped-call]
        return generate_latest(self._scraped)

    def record(self, kind: str, status: int, elapsed: float, size: int) -> None:
        children = self._children.get((kind, status))
        if children is None:
            children = (
                self.requests.labels(kind, str(status)),
                self.duration.labels(kind),
                self.bytes.labels(kind),
            )
            self._children[(kind, status)] = children
        requests, duration, sent = children
        requests.inc()
        duration.observe(elapsed)
        if size:
            sent.inc(size)


def _compact(line: dict[str, Any]) -> str:
    """One JSON line: orjson (about 0.7 us against json's 9), json for what orjson refuses (a
    path with a lone surrogate from undecodable percent-escapes)."""
    try:
        return orjson.dumps(line).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(line, separators=(",", ":"))


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})
        seen: dict[str, Any] = {"status": 500, "bytes": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self._record(scope, seen, time.perf_counter() - started)

    def _record(self, scope: Scope, seen: dict[str, Any], elapsed: float) -> None:
        path = scope.get("path", "")
        kind = route_kind(path)
        state = scope.get("state", {})
        self.metrics.record(kind, seen["status"], elapsed, seen["bytes"])
        if path in QUIET_PATHS or not access_log.isEnabledFor(logging.INFO):
            return  # the line is built only when it is written
        line = {
            "method": scope.get("method"),
            "path": redact_path(path),
            "route": kind,
            "tenant": state.get("tenant"),
            "status": seen["status"],
            "ms": round(elapsed * 1000, 1),
            "bytes": seen["bytes"],
            "patient": state.get("patient_id"),  # the FHIR Patient id of the grant
        }
        if state.get("stream"):  # "aborted" or "disconnected": the body did not end cleanly
            line["stream"] = state["stream"]
        access_log.info(_compact(line))
