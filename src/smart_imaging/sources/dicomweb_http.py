"""HTTP plumbing of the ``dicom-web`` source: archive statuses as our errors, bodies read within a
limit or streamed as they arrive, multipart answers relayed with their framing checked and archive
URLs moved under our base (see ``dicomweb``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Protocol, TypeVar

import httpx

from ..dicom import multipart
from ..dicom.multipart_stream import HeaderRewrite, MultipartError, MultipartRelay, valid_boundary
from ..errors import (
    BadRequest,
    IncompleteTransfer,
    NotAcceptable,
    NotFound,
    SmartImagingError,
    UpstreamError,
    UpstreamTimeout,
)
from ..wado.request import rebase
from .base import WadoResponse

T_co = TypeVar("T_co", covariant=True)


def status_error(status: int) -> SmartImagingError:
    if status == 404:
        return NotFound("not found in the image archive")
    if status == 406:
        return NotAcceptable("the image archive cannot produce the requested media type")
    if status in (400, 415):
        return BadRequest(f"the image archive rejected the request (HTTP {status})")
    if status in (401, 403):
        return UpstreamError("the image archive refused the server's credentials")
    if status == 504:
        return UpstreamTimeout("the image archive timed out")
    return UpstreamError(f"the image archive failed (HTTP {status})")


def relayed(response: httpx.Response, public_base: str) -> WadoResponse:
    """The archive's answer as we pass it on: multipart bodies verified, archive URLs moved."""
    media_type = response.headers.get("content-type", "application/octet-stream")
    if not header_safe(media_type):
        raise UpstreamError("the image archive answered with an invalid Content-Type")
    headers = {}
    location = response.headers.get("content-location")
    moved = rebase(location, public_base) if location else None
    if moved:
        headers["content-location"] = moved
    warning = response.headers.get("warning")
    if warning and header_safe(warning):
        headers["warning"] = warning
    body = stream_body(response)
    if media_type.lower().startswith("multipart/"):
        boundary = multipart.boundary_of(media_type)
        if boundary is None or not valid_boundary(boundary):
            raise UpstreamError("the image archive answered with a multipart without a valid boundary")
        body = relay(body, MultipartRelay(boundary, part_rewrite(public_base)))
    elif "content-length" in response.headers and identity(response):
        headers["content-length"] = response.headers["content-length"]
    return WadoResponse(media_type=media_type, body=body, headers=headers, close=response.aclose)


def part_rewrite(public_base: str) -> HeaderRewrite:
    def rewrite(name: str, value: str) -> str | None:
        return rebase(value, public_base) if name == "content-location" else value

    return rewrite


class Framing(Protocol[T_co]):
    """A multipart parser fed chunk by chunk (``MultipartRelay``, ``PartSplitter``)."""

    complete: bool

    def feed(self, chunk: bytes) -> Iterable[T_co]: ...

    def close(self) -> None: ...


async def verified(chunks: AsyncGenerator[bytes, None], framing: Framing[T_co]) -> AsyncGenerator[T_co, None]:
    """What ``framing`` makes of the archive's multipart as it arrives; raises
    ``IncompleteTransfer`` unless the body ends with its closing delimiter. Closes ``chunks``."""
    try:
        async for chunk in chunks:
            for item in framing.feed(chunk):
                yield item
            if framing.complete:  # the epilogue, if any, is not worth waiting for
                break
        framing.close()
    except MultipartError as exc:
        raise IncompleteTransfer(f"the image archive's multipart answer is incomplete: {exc}") from None
    finally:
        await chunks.aclose()


def relay(chunks: AsyncGenerator[bytes, None], relay: MultipartRelay) -> AsyncGenerator[bytes, None]:
    """Pass the multipart on as it arrives; raise unless it ends with its closing delimiter."""
    return verified(chunks, relay)


def identity(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").strip().lower() in ("", "identity")


def header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


async def read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    """A whole (small) answer, refused once it exceeds ``limit`` bytes."""
    raw = bytearray()
    chunks = stream_body(response)
    try:
        async for chunk in chunks:
            raw += chunk
            if len(raw) > limit:
                raise UpstreamError(f"the image archive's {what} exceeds the size limit")
    finally:
        await chunks.aclose()
    return bytes(raw)


async def stream_body(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body as it arrives, one socket read (up to 1 MiB, see http_client) at a time.

    Raw bytes unless the archive compressed its answer despite ``Accept-Encoding: identity``.
    """
    try:
        async for chunk in response.aiter_raw() if identity(response) else response.aiter_bytes():
            yield chunk
    except httpx.TimeoutException:
        raise UpstreamTimeout("image archive timed out mid-stream") from None
    except httpx.TransportError:
        raise UpstreamError("image archive connection failed mid-stream") from None
    except httpx.DecodingError:
        raise UpstreamError("image archive sent a body that cannot be decoded") from None
    finally:
        await response.aclose()


async def once(body: bytes) -> AsyncIterator[bytes]:
    yield body
