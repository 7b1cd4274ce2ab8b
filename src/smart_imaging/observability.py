"""Access log (one JSON line per request, no tokens) and Prometheus metrics, as ASGI middleware."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("smart_imaging.access")
_BINDING = re.compile(r"/wado/[^/]+")
_DYN = re.compile(r"^/dyn/[^/]+")


def redact_path(path: str) -> str:
    """Binding tokens and dynamic configs are capabilities: never log them."""
    return _BINDING.sub("/wado/{binding}", _DYN.sub("/dyn/{config}", path))


def route_kind(path: str) -> str:
    if "/wado/" in path:
        return "wado"
    if "/fhir" in path:
        return "fhir"
    if path.startswith("/ehr"):
        return "ehr"
    return "other"


class Metrics:
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
        self.metrics.requests.labels(kind, str(seen["status"])).inc()
        self.metrics.duration.labels(kind).observe(elapsed)
        self.metrics.bytes.labels(kind).inc(seen["bytes"])
        if path in ("/metrics", "/healthz"):
            return
        access_log.info(
            json.dumps(
                {
                    "method": scope.get("method"),
                    "path": redact_path(path),
                    "route": kind,
                    "tenant": state.get("tenant"),
                    "status": seen["status"],
                    "ms": round(elapsed * 1000, 1),
                    "bytes": seen["bytes"],
                    "patient": state.get("patient"),
                },
                separators=(",", ":"),
            )
        )
