"""The one outbound HTTP client of the server: the httpx API on an aiohttp connection pool.

Every module speaks httpx (requests, responses, exceptions, ``MockTransport`` in tests); only the
transport below differs. httpcore, httpx's own transport, costs about 0.7 ms of CPU per small
request here; aiohttp's C parser and pool about half of that (``bench/bench_hotpath.py``), and a
viewer sends one request per frame. ``backend="httpx"`` (``SMART_IMAGING_HTTP_BACKEND=httpx``)
keeps httpcore.

The transport maps aiohttp's failures onto httpx's exception tree (connect/read timeouts,
connect errors, a connection lost mid-body as ``ReadError``), so callers' ``except
httpx.TimeoutException`` / ``httpx.TransportError`` keep their meaning; the URL goes out as
httpx built it (no requoting); bodies are not decompressed here (httpx does that) and stream in
the sizes the socket delivers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
from yarl import URL

from .versions import written_for

log = logging.getLogger("smart_imaging.http_client")
BACKENDS = ("aiohttp", "httpx")
LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)
# Connections to one archive per process. Past its HTTP thread pool (Orthanc: 50 threads, one per
# open connection) an archive queues new connections behind idle keep-alive ones: requests wait
# here instead, within their pool timeout (bench/bench_load.py).
PER_HOST = 24
READ_BUFFER = 1 << 20  # bytes aiohttp buffers per response before it pauses the socket


def create_client(timeout: float, backend: str = "aiohttp", per_host: int = PER_HOST) -> httpx.AsyncClient:
    """The server's client: no redirects followed, keep-alive pool of :data:`LIMITS`, at most
    ``per_host`` connections to one host (aiohttp backend)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown HTTP client backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == "httpx":
        tune_httpcore()
    transport = AiohttpTransport(LIMITS, per_host) if backend == "aiohttp" else None
    return OutboundClient(timeout=timeout, limits=LIMITS, follow_redirects=False, transport=transport)


class OutboundClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` whose ``send`` hands a request straight to the transport when it
    needs nothing of what ``AsyncClient.send`` adds: no auth flow (credentials travel as headers
    the caller set), no redirect to follow, no event hooks. The server keeps no cookies of the
    hosts it calls (archives, EHRs, decision points: none needs them, and a jar shared by every
    tenant would be a leak). Those steps cost about 0.1 to 0.2 ms per cached WADO-RS frame
    (py-spy on bench/bench_hotpath.py). Written for httpx 0.28 (``versions.written_for``; other versions
    take ``AsyncClient.send`` whole)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._direct = written_for("httpx", "0.28", "the direct send of plain requests")

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        plain = auth is httpx.USE_CLIENT_DEFAULT or auth is None
        hooks = self.event_hooks
        if not (self._direct and plain and self.auth is None and follow_redirects is not True) or any(
            hooks.values()
        ):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        response = await self._transport_for_url(request.url).handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response


def tune_httpcore() -> bool:
    """Have httpcore read response bodies 1 MiB at a time instead of 64 KiB: that cuts its CPU use
    on large WADO-RS bodies by about a quarter (bench/bench_wado.py). ``READ_NUM_BYTES`` is not
    public API, so this runs only on httpcore 1.0 (:func:`versions.written_for`); called when the
    ``httpx`` backend's client is created, never at import. Returns whether it applied."""
    if not written_for("httpcore", "1.0", "the 1 MiB body read size"):
        return False
    from httpcore._async.http11 import AsyncHTTP11Connection  # only once the version is known

    AsyncHTTP11Connection.READ_NUM_BYTES = max(AsyncHTTP11Connection.READ_NUM_BYTES, 1 << 20)
    return True


@contextlib.contextmanager
def _mapped(request: httpx.Request, reading: bool) -> Iterator[None]:
    """aiohttp's exceptions as httpx's (``reading``: the status line is already in); the original
    is logged at debug level with the host only (paths and queries may carry patient data)."""
    try:
        yield
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
        log.debug("upstream %s %s failed: %r", request.method, request.url.host, exc)
        raise _httpx_error(request, reading, exc) from exc


def _httpx_error(request: httpx.Request, reading: bool, exc: BaseException) -> httpx.TransportError:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, (aiohttp.ServerTimeoutError, TimeoutError)):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed answer
        return httpx.RemoteProtocolError(message, request=request)
    # disconnected, reset, payload cut short
    return (httpx.ReadError if reading else httpx.RemoteProtocolError)(message, request=request)


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body; closing it before its end closes the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request, reading=True):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # back to the pool
        else:
            self._response.close()  # a half-read connection is never reused


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests sent over one ``aiohttp.ClientSession`` (created on first use, in the loop)."""

    def __init__(self, limits: httpx.Limits = LIMITS, per_host: int = PER_HOST) -> None:
        self._limits = limits
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=self._per_host,
            keepalive_timeout=self._limits.keepalive_expiry,
            ttl_dns_cache=60,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            read_bufsize=READ_BUFFER,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        with _mapped(request, reading=False):
            response = await self._session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=[(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"],
                data=await _content(request),
                allow_redirects=False,
                compress=None,
                timeout=_timeout(timeout.get("pool"), timeout.get("connect"), timeout.get("read")),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@functools.lru_cache(maxsize=64)  # a few distinct timeouts; an attrs object per request costs
def _timeout(pool: float | None, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
    """httpx's timeouts as aiohttp's: pool -> connect (waiting for a connection included),
    connect -> sock_connect, read -> sock_read (between two reads); no total limit."""
    return aiohttp.ClientTimeout(connect=pool, sock_connect=connect, sock_read=read)


async def _content(request: httpx.Request) -> bytes | None:
    """The request body; the server's outbound bodies are small forms and JSON."""
    body = await request.aread()
    return body or None
