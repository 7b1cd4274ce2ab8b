"""WADO-RS answers from files on disk (PS3.18 10.4): instances, metadata, frames, rendered.

Instances stream each file in chunks (never a whole study in memory); every disk read and
every decode runs in a worker thread. Negotiation follows PS3.18 8.7.3: files are served in
their stored transfer syntax; a request that names only other transfer syntaxes gets 406,
except frames, which are decoded to uncompressed pixels when the client asks for
``application/octet-stream`` without ``transfer-syntax=*``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

import anyio
import numpy as np
from anyio import AsyncFile
from pydicom import Dataset, dcmread
from pydicom.encaps import get_frame
from pydicom.pixels.decoders.base import get_decoder

from ...dicom import multipart
from ...dicom.media import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    FRAME_MEDIA_TYPES,
    IMPLICIT_VR_LITTLE_ENDIAN,
    MediaRange,
    parse_accept,
)
from ...errors import BadRequest, NotAcceptable, NotFound
from ...render import THUMBNAIL_VIEWPORT, choose_media_type, parse_options, render_frame
from ..base import WadoRequest, WadoResponse
from . import checks
from .query import IndexedInstance

CHUNK_SIZE = 256 * 1024
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
_RAW_SYNTAXES = (None, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
T = TypeVar("T")
_LITTLE_ENDIAN_NATIVE = {EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.1.99"}


async def retrieve(found: list[IndexedInstance], request: WadoRequest) -> WadoResponse:
    """Answer one WADO-RS request for the (non-empty) ``found`` instances."""
    if request.resource == "":
        return instances_response(found, request.accept)
    if request.resource == "metadata":
        return metadata_response(found, request)
    if request.resource == "frames":
        return await frames_response(_single(found, request), request)
    if request.resource == "bulkdata":
        return await bulkdata_response(_single(found, request), request)
    return await rendered_response(_representative(found, request), request)


# ---------------------------------------------------------------- instances


def instances_response(found: list[IndexedInstance], accept: str | None) -> WadoResponse:
    """``multipart/related; type="application/dicom"``, one file per part, streamed."""
    allowed = _dicom_transfer_syntaxes(parse_accept(accept))
    if allowed is not None:
        refused = sorted({i.transfer_syntax for i in found} - allowed)
        if refused:
            raise NotAcceptable(
                "stored in transfer syntax " + ", ".join(refused) + "; ask with transfer-syntax=*"
            )
    boundary = multipart.new_boundary()
    return WadoResponse(multipart.content_type(boundary, "application/dicom"), _stream_files(found, boundary))


def _dicom_transfer_syntaxes(ranges: list[MediaRange]) -> set[str] | None:
    """Transfer syntaxes the client takes as application/dicom; None: any."""
    if not ranges:
        return None
    wanted = [r for r in ranges if r.matches("application/dicom")]
    if not wanted:
        raise NotAcceptable('instances are available as multipart/related; type="application/dicom"')
    if any(r.transfer_syntax in (None, "*") for r in wanted):
        return None
    return {str(r.transfer_syntax) for r in wanted}


async def _stream_files(found: list[IndexedInstance], boundary: str) -> AsyncIterator[bytes]:
    """Each file as one part; a part starts only once its file opened as the one indexed."""
    for item in found:
        async with contextlib.aclosing(file_chunks(item)) as chunks:
            first = await anext(chunks, b"")
            yield multipart.part_head(boundary, f"application/dicom; transfer-syntax={item.transfer_syntax}")
            yield first
            async for chunk in chunks:
                yield chunk
        yield multipart.part_tail()
    yield multipart.closing(boundary)


async def file_chunks(item: IndexedInstance) -> AsyncGenerator[bytes, None]:
    """The file's bytes in chunks, exactly as many as the index saw. ``UpstreamError`` when it
    cannot be opened, is not the indexed file, ends early, or changed by the time it was read."""
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


async def _check_open(handle: AsyncFile[bytes], item: IndexedInstance) -> None:
    stat = await anyio.to_thread.run_sync(os.fstat, handle.wrapped.fileno())
    checks.check_unchanged(item, stat)


# ---------------------------------------------------------------- metadata


def metadata_response(found: list[IndexedInstance], request: WadoRequest) -> WadoResponse:
    """A DICOM JSON array, one instance at a time; pixel data as a BulkDataURI to frames."""
    ranges = parse_accept(request.accept)
    if ranges and not any(
        r.matches(DICOM_JSON) or r.matches("application/json") for r in ranges if not r.multipart
    ):
        raise NotAcceptable("metadata is available as application/dicom+json")
    return WadoResponse(DICOM_JSON, _stream_metadata(found, request.public_base))


async def _stream_metadata(found: list[IndexedInstance], base: str) -> AsyncIterator[bytes]:
    yield b"["
    for number, item in enumerate(found):
        blob = await anyio.to_thread.run_sync(
            checks.read_checked, item, partial(instance_metadata, item, base)
        )
        yield (b"," if number else b"") + blob
    yield b"]"


def instance_metadata(item: IndexedInstance, base: str) -> bytes:
    """One instance's header as DICOM JSON bytes (blocking)."""
    ds = dcmread(item.path, stop_before_pixels=True)
    found: dict[str, Any] = ds.to_json_dict(bulk_data_threshold=1 << 30, suppress_invalid_tags=True)
    if item.has_pixels:
        encapsulated = item.transfer_syntax in FRAME_MEDIA_TYPES
        frames = ",".join(str(n) for n in range(1, item.number_of_frames + 1))
        found["7FE00010"] = {
            "vr": "OB" if encapsulated or item.bits_allocated <= 8 else "OW",
            "BulkDataURI": f"{base.rstrip('/')}/studies/{item.study_uid}/series/"
            f"{item.series_uid}/instances/{item.sop_instance_uid}/frames/{frames}",
        }
    return json.dumps(found, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------- frames


async def frames_response(item: IndexedInstance, request: WadoRequest) -> WadoResponse:
    """Frames as multipart: uncompressed bytes, or the stored compressed frame."""
    if not request.frames:
        raise BadRequest("frames resource needs frame numbers")
    native = FRAME_MEDIA_TYPES.get(item.transfer_syntax)
    decode = _frame_choice(parse_accept(request.accept), native, item.transfer_syntax)
    _check_frames(item, request.frames)
    ds = await _read(item, _read_pixels, item)
    frames = await _decode(item, "decoded", _frames, ds, item, request.frames, decode)
    if decode or native is None:
        part_type, syntax = OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN
    else:
        part_type, syntax = native, item.transfer_syntax
    boundary = multipart.new_boundary()
    head = multipart.part_head(boundary, f"{part_type}; transfer-syntax={syntax}")
    body = b"".join(head + f + multipart.part_tail() for f in frames)
    return WadoResponse(
        multipart.content_type(boundary, part_type), _once(body + multipart.closing(boundary))
    )


def _frame_choice(ranges: list[MediaRange], native: str | None, stored: str) -> bool:
    """True: decode to uncompressed bytes; False: send as stored. NotAcceptable otherwise."""
    for r in ranges:  # best first
        if r.type == "*/*":
            return False
        if native is None:  # stored uncompressed
            if r.matches(OCTET_STREAM) and r.transfer_syntax in (*_RAW_SYNTAXES, "*"):
                return False
            continue
        if r.matches(native) and r.transfer_syntax in (None, "*", stored):
            return False
        if r.matches(OCTET_STREAM) and r.transfer_syntax == "*":
            return False
        if r.matches(OCTET_STREAM) and r.transfer_syntax in _RAW_SYNTAXES:
            return True
    if not ranges:
        return False
    raise NotAcceptable(
        f"frames are available as {native or OCTET_STREAM}" + (f" or {OCTET_STREAM}" if native else "")
    )


def _check_frames(item: IndexedInstance, frames: tuple[int, ...]) -> None:
    if not item.has_pixels:
        raise NotFound("this instance has no pixel data")
    bad = [n for n in frames if not 1 <= n <= item.number_of_frames]
    if bad:
        raise NotFound(f"frame {bad[0]} is not in this instance ({item.number_of_frames} frames)")


def _read_pixels(item: IndexedInstance) -> Dataset:
    ds = dcmread(item.path)
    if "PixelData" not in ds:
        raise NotFound("this instance has no pixel data")
    return ds


def _frames(ds: Dataset, item: IndexedInstance, numbers: tuple[int, ...], decode: bool) -> list[bytes]:
    syntax = item.transfer_syntax
    if syntax in FRAME_MEDIA_TYPES and not decode:
        return [get_frame(ds.PixelData, n - 1, number_of_frames=item.number_of_frames) for n in numbers]
    if syntax in _LITTLE_ENDIAN_NATIVE and int(ds.BitsAllocated) % 8 == 0:
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.BitsAllocated) // 8
        data: bytes = ds.PixelData
        return [data[(n - 1) * size : n * size] for n in numbers]
    decoder = get_decoder(syntax)
    out = []
    for n in numbers:
        array, _ = decoder.as_array(ds, index=n - 1)
        out.append(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    return out


# ---------------------------------------------------------------- bulk data


async def bulkdata_response(item: IndexedInstance, request: WadoRequest) -> WadoResponse:
    """``.../bulk/{tag}[/{index}/{tag}...]``: pixel data as frames, other values as bytes."""
    steps = request.bulkdata_path.upper().split("/")
    if steps == ["7FE00010"]:
        frames = tuple(range(1, item.number_of_frames + 1))
        return await frames_response(item, replace(request, frames=frames, resource="frames"))
    ranges = parse_accept(request.accept)
    if ranges and not any(r.matches(OCTET_STREAM) for r in ranges):
        raise NotAcceptable(f"bulk data is available as {OCTET_STREAM}")
    value = await _read(item, _bulk_value, item, steps)
    boundary = multipart.new_boundary()
    return WadoResponse(
        multipart.content_type(boundary, OCTET_STREAM),
        _once(multipart.encode(boundary, OCTET_STREAM, [value])),
    )


def _bulk_value(item: IndexedInstance, steps: list[str]) -> bytes:
    node: Any = dcmread(item.path)
    try:
        for number, step in enumerate(steps):
            node = node[int(step)] if number % 2 else node[int(step, 16)].value
    except (KeyError, IndexError, ValueError, TypeError):
        raise NotFound("no such bulk data in this instance") from None
    if isinstance(node, (bytes, bytearray)):
        return bytes(node)
    raise NotFound("no such bulk data in this instance")


# ---------------------------------------------------------------- rendered


async def rendered_response(item: IndexedInstance, request: WadoRequest) -> WadoResponse:
    """One frame as JPEG or PNG (the first requested frame, else the first of the instance)."""
    media_type = choose_media_type(request.accept)
    viewport = THUMBNAIL_VIEWPORT if request.resource == "thumbnail" else None
    options = parse_options(request.params, media_type, viewport)
    if len(request.frames) > 1:
        raise BadRequest("rendered frames are available one at a time")
    frame = request.frames[0] if request.frames else 1
    _check_frames(item, (frame,))
    ds = await _read(item, _read_pixels, item)
    image = await _decode(item, "rendered", render_frame, ds, frame - 1, options)
    return WadoResponse(media_type, _once(image))


def _single(found: list[IndexedInstance], request: WadoRequest) -> IndexedInstance:
    if request.instance_uid is None or len(found) != 1:
        raise BadRequest(f"{request.resource} are retrieved from one instance")
    return found[0]


def _representative(found: list[IndexedInstance], request: WadoRequest) -> IndexedInstance:
    """The instance itself, else the middle image of the (first) series."""
    if request.instance_uid is not None:
        return found[0]
    images = [i for i in found if i.has_pixels and i.series_uid == found[0].series_uid]
    if not images:
        raise NotFound("no image to render")
    return images[len(images) // 2]


async def _read(item: IndexedInstance, work: Callable[..., T], *args: Any) -> T:
    """Read ``item``'s file in a thread; it must be the indexed one, whole (else 502)."""
    return await anyio.to_thread.run_sync(checks.read_checked, item, partial(work, *args))


async def _decode(item: IndexedInstance, doing: str, work: Callable[..., T], *args: Any) -> T:
    """Decode or render data already read; data that cannot be decoded is 502."""
    return await anyio.to_thread.run_sync(checks.read_checked, item, partial(work, *args), doing)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
