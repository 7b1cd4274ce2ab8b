"""Instances from stored Part-10 files as ``multipart/related; type="application/dicom"`` parts
(PS3.18 10.4), streamed, in the transfer syntax each client asked for (PS3.18 8.7.3.5).

An instance sent as stored is read in chunks, never whole. One that must be transcoded
(``dicom.transcode``) is read once, checked, and then re-encoded one frame at a time in a worker
thread, each piece passed on as it is made: memory holds that instance and about one frame,
whatever the size of the study. A part starts only once its file opened as the one described and
(when transcoding) the first frame was encoded, so a refusal before the first part is a clean
406 or 502; later it breaks the stream (see ``routes.wado``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from functools import partial

import anyio
from anyio import AsyncFile

from ...dicom import multipart
from ...dicom.transcode import transcode_part10
from ...wado.negotiate import DICOM, InstanceSyntaxes
from ..base import WadoResponse
from . import checks
from .instance import StoredInstance

CHUNK_SIZE = 256 * 1024


def instances_response(items: AsyncIterator[StoredInstance], syntaxes: InstanceSyntaxes) -> WadoResponse:
    """Every instance of ``items`` as one part, in the syntax ``syntaxes`` chooses for it."""
    boundary = multipart.new_boundary()
    return WadoResponse(multipart.content_type(boundary, DICOM), instance_parts(items, boundary, syntaxes))


async def instance_parts(
    items: AsyncIterator[StoredInstance], boundary: str, syntaxes: InstanceSyntaxes
) -> AsyncIterator[bytes]:
    async for item in items:
        syntax = syntaxes.choose(item.transfer_syntax)
        source = file_chunks(item) if syntax == item.transfer_syntax else transcoded_chunks(item, syntax)
        async with contextlib.aclosing(source) as chunks:
            first = await anext(chunks, b"")
            yield multipart.part_head(boundary, f"{DICOM}; transfer-syntax={syntax}")
            yield first
            async for chunk in chunks:
                yield chunk
        yield multipart.part_tail()
    yield multipart.closing(boundary)


async def file_chunks(item: StoredInstance) -> AsyncGenerator[bytes, None]:
    """The file's bytes in chunks, exactly as many as described. ``UpstreamError`` when it cannot
    be opened, is not the described file, ends early, or changed by the time it was read."""
    try:
        handle = await anyio.open_file(item.path, "rb")
    except OSError as exc:
        raise checks.unreadable(item, exc) from exc
    async with handle:
        await _check_open(handle, item)
        remaining = item.size
        while remaining is None or remaining > 0:
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            try:
                chunk = await handle.read(want)
            except OSError as exc:
                raise checks.unreadable(item, exc) from exc
            if not chunk:
                if remaining is None:
                    return
                raise checks.cut_short(item)
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
        await _check_open(handle, item)


async def transcoded_chunks(item: StoredInstance, syntax: str) -> AsyncGenerator[bytes, None]:
    """The instance re-encoded in ``syntax``, one frame at a time, each step in a worker thread.
    NotAcceptable (406) or UpstreamError (502) come before the first chunk."""
    pieces = await anyio.to_thread.run_sync(
        checks.read_checked, item, partial(transcode_part10, item.path, syntax)
    )
    while (piece := await anyio.to_thread.run_sync(_next_piece, pieces, item)) is not None:
        for at in range(0, len(piece), CHUNK_SIZE):
            yield piece[at : at + CHUNK_SIZE]


def _next_piece(pieces: Iterator[bytes], item: StoredInstance) -> bytes | None:
    """The next piece of a transcoding (blocking); a frame that fails to decode is the archive's."""
    piece: bytes | None = checks.read_checked(item, partial(next, pieces, None), "transcoded")
    return piece


async def _check_open(handle: AsyncFile[bytes], item: StoredInstance) -> None:
    stat = await anyio.to_thread.run_sync(os.fstat, handle.wrapped.fileno())
    checks.check_unchanged(item, stat)
