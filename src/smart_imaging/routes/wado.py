"""WADO-RS routes: ``/{tenant}/wado/{binding}/studies/...``.

Each request is authorized on its own by :func:`.retrieval_gate.authorize_retrieval` (the token,
the binding bound to that token, the access decision, the study check and the study-level policy:
SMART Imaging Access IG) and audited; the route only renders the decision. The archive's answer
streams through chunk by chunk.

This route is the one place a WADO-RS stream ends (:class:`WadoStream`). A source whose body
fails before its first chunk gets a normal error answer (502/504 JSON). Once the status line is
out, a body that raises (any exception: an archive killed, a multipart without its closing
delimiter, a DIMSE transfer with failures) leaves the response incomplete: no final chunk, and the
server closes the connection, so the client sees a broken transfer, never a clean partial study
(the IG: no partial study reported as success). That is one warning line; a client that goes
away mid-stream is one info line; neither is a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from enum import Enum

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..dicom.media import normalize
from ..errors import SmartImagingError
from ..observability import mark_response_incomplete, redact_path
from ..sources import WadoResponse
from ..wado.negotiate import DEFAULT_ACCEPT
from ..wado.request import WadoRequest
from .context import tenant_base, tenant_of
from .retrieval_gate import authorize_retrieval

__all__ = ["WadoStream", "authorize_retrieval", "retrieve"]

log = logging.getLogger("smart_imaging.wado")


async def retrieve(request: Request) -> StreamingResponse:
    tenant = tenant_of(request)
    binding_token = request.path_params["binding"]
    base = f"{tenant_base(request, tenant)}/wado/{binding_token}"
    params = tuple(request.query_params.multi_items())
    wado = WadoRequest.parse(request.path_params["rest"], params, base)
    kind = wado.resource or ("instance" if wado.instance_uid else "series" if wado.series_uid else "study")
    scope = await authorize_retrieval(request, tenant, binding_token, wado.study_uid, wado.series_uid, kind)
    accept = normalize(request.headers.get("accept"), DEFAULT_ACCEPT[wado.resource])
    wado = dataclasses.replace(wado, accept=accept, mrn=scope.mrn)
    upstream = await tenant.source.retrieve(wado)
    first = await _first_chunk(upstream)
    return WadoStream(upstream, first, redact_path(request.url.path))


async def _first_chunk(upstream: WadoResponse) -> bytes | None:
    """Wait for the body's first chunk before the status line: a source that fails this early
    still gets a proper error answer. ``None``: the body is empty."""
    try:
        return await anext(upstream.body)
    except StopAsyncIteration:
        return None
    except BaseException:
        await _close(upstream)
        raise


class Outcome(Enum):
    COMPLETE = "complete"
    DISCONNECTED = "disconnected"
    ABORTED = "aborted"


class WadoStream(StreamingResponse):
    """A source's body, streamed; see the module docstring for how it ends."""

    def __init__(self, upstream: WadoResponse, first: bytes | None, path: str) -> None:
        headers = {k: v for k, v in upstream.headers.items() if k.lower() != "content-type"}
        super().__init__(upstream.body, media_type=upstream.media_type, headers=headers)
        self._upstream = upstream
        self._first = first
        self._path = path
        self._sent = 0
        self._failure: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcomes: list[Outcome] = []
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            outcome, chunk = await self._step(send, self._first)
            if outcome is not None:  # a body of one chunk (a frame, metadata): nothing to watch
                outcomes.append(outcome)
            else:  # more follows: watch for a client that goes away while the archive sends
                async with anyio.create_task_group() as group:
                    group.start_soon(_watch_disconnect, receive, group.cancel_scope, outcomes)
                    outcomes.append(await self._pump(send, chunk))
                    group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await _close(self._upstream)
        self._report(scope, outcomes[0] if outcomes else Outcome.DISCONNECTED)

    async def _pump(self, send: Send, chunk: bytes | None) -> Outcome:
        """Send everything the body yields; never raises for a failing body or a gone client."""
        while True:
            outcome, chunk = await self._step(send, chunk)
            if outcome is not None:
                return outcome

    async def _step(self, send: Send, chunk: bytes | None) -> tuple[Outcome | None, bytes | None]:
        """Send ``chunk`` (None: the end) and read the next; an outcome once the response ends."""
        if chunk is None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return Outcome.COMPLETE, None
        try:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:  # ASGI spec 2.4 servers report a gone client this way
            return Outcome.DISCONNECTED, None
        self._sent += len(chunk)
        try:
            return None, await anext(self._upstream.body)
        except StopAsyncIteration:
            return await self._step(send, None)
        except Exception as exc:  # noqa: BLE001 - any failure of the body aborts the response
            self._failure = exc
            return Outcome.ABORTED, None

    def _report(self, scope: Scope, outcome: Outcome) -> None:
        if outcome is Outcome.COMPLETE:
            return
        scope.setdefault("state", {})["stream"] = outcome.value
        if outcome is Outcome.DISCONNECTED:
            log.info("WADO-RS client went away after %d bytes: %s", self._sent, self._path)
            return
        mark_response_incomplete()
        exc = self._failure
        if isinstance(exc, (SmartImagingError, OSError, TimeoutError)):
            reason = exc.message if isinstance(exc, SmartImagingError) else type(exc).__name__
            log.warning("WADO-RS stream aborted after %d bytes: %s: %s", self._sent, self._path, reason)
        else:  # a bug in a source, not an archive failing: worth its traceback
            log.error("WADO-RS stream aborted after %d bytes: %s", self._sent, self._path, exc_info=exc)


async def _watch_disconnect(receive: Receive, scope: anyio.CancelScope, outcomes: list[Outcome]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    outcomes.append(Outcome.DISCONNECTED)
    scope.cancel()


async def _close(upstream: WadoResponse) -> None:
    body: AsyncIterator[bytes] = upstream.body
    try:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
        await upstream.aclose()
    except Exception:  # closing a failed upstream may fail again; nothing to tell
        log.debug("closing the upstream body failed", exc_info=True)
