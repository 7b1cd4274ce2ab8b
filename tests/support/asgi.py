"""An ASGI app in-process over httpx, as a server would run it: lifespan, streaming bodies.

- :func:`lifespan` runs the app's ASGI lifespan (ASGI spec, "Lifespan Protocol"):
  startup before the block, shutdown after; a failed startup raises.
- ``httpx.ASGITransport`` (httpx's own) is the plain in-process transport. It collects the
  whole body before answering, and an app that leaves its response incomplete trips an
  ``AssertionError`` inside it.
- :class:`StreamingASGITransport` answers at ``http.response.start`` and hands out the body as
  the app sends it, so a test can read the first chunk while the source still holds the next.
  An app that ends without its final body message (or raises mid-body) gives the client
  ``httpx.RemoteProtocolError``, as a real server closing the connection mid-body does. An
  exception the app raises after a complete response (Starlette re-raises unexpected errors
  once their 500 is sent, for the server's log) is kept in ``app_errors``, not raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.types import ASGIApp, Message


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp, timeout: float = 30) -> AsyncIterator[None]:
    """Run ``app``'s lifespan around the block (startup, then shutdown)."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def run() -> None:
        await app(scope, to_app.get, from_app.put)

    task = asyncio.create_task(run())
    try:
        await to_app.put({"type": "lifespan.startup"})
        started = await _answer(from_app, task, timeout)
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"app startup failed: {started.get('message', started)}")
        yield
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await _answer(from_app, task, timeout)
        if stopped["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"app shutdown failed: {stopped.get('message', stopped)}")
        await asyncio.wait_for(task, timeout)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _answer(queue: asyncio.Queue[Message], task: asyncio.Task[None], timeout: float) -> Message:
    getter = asyncio.ensure_future(queue.get())
    done, _ = await asyncio.wait({getter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    if task in done:
        task.result()  # raises the app's startup/shutdown exception
        raise RuntimeError("app ended its lifespan without answering")
    raise TimeoutError("app did not answer its lifespan message in time")


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """In-process transport whose response bodies stream (module docstring)."""

    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client
        self.app_errors: list[BaseException] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        messages: asyncio.Queue[Message | BaseException | None] = asyncio.Queue()
        disconnected = asyncio.Event()
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def run() -> None:
            try:
                await self.app(self._scope(request), receive, messages.put)
            except Exception as exc:  # noqa: BLE001 - handed to the reader (or kept in app_errors)
                await messages.put(exc)
            else:
                await messages.put(None)

        task = asyncio.create_task(run())
        start = await messages.get()
        if isinstance(start, BaseException):
            raise start  # failed before answering: like httpx.ASGITransport, the client sees it
        if start is None or start["type"] != "http.response.start":
            raise httpx.RemoteProtocolError("the app ended without starting a response", request=request)
        stream = _BodyStream(messages, task, disconnected, self.app_errors, request)
        return httpx.Response(start["status"], headers=start.get("headers", []), stream=stream)

    def _scope(self, request: httpx.Request) -> dict[str, Any]:
        url = request.url
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port or {"http": 80, "https": 443}[url.scheme]),
            "client": self.client,
            "state": {},
        }


class _BodyStream(httpx.AsyncByteStream):
    def __init__(
        self,
        messages: asyncio.Queue[Message | BaseException | None],
        task: asyncio.Task[None],
        disconnected: asyncio.Event,
        app_errors: list[BaseException],
        request: httpx.Request,
    ) -> None:
        self._messages = messages
        self._task = task
        self._disconnected = disconnected
        self._app_errors = app_errors
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._messages.get()
            if message is None or isinstance(message, BaseException):
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body", request=self._request
                ) from message
            if message["type"] != "http.response.body":
                continue
            if message.get("body"):
                yield bytes(message["body"])
            if not message.get("more_body", False):
                return

    async def aclose(self) -> None:
        """The client is done: the app sees ``http.disconnect``; wait for it to finish."""
        self._disconnected.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except TimeoutError:
            self._task.cancel()
        while not self._messages.empty():
            item = self._messages.get_nowait()
            if isinstance(item, BaseException):
                self._app_errors.append(item)
