"""The one outbound HTTP client of the server (httpx), tuned for streaming large bodies."""

from __future__ import annotations

import httpx

try:  # httpcore reads bodies 64 KiB at a time; each read is a trip through several layers of
    # Python. WADO-RS bodies are hundreds of MB: 1 MiB reads cut the proxy's CPU use by about
    # a quarter (bench/bench_wado.py). Only the upper bound of one socket read changes.
    from httpcore._async.http11 import AsyncHTTP11Connection

    AsyncHTTP11Connection.READ_NUM_BYTES = max(AsyncHTTP11Connection.READ_NUM_BYTES, 1 << 20)
except (ImportError, AttributeError):  # pragma: no cover - a future httpcore may differ
    pass


def create_client(timeout: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
