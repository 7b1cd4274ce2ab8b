"""WADO-RS answers from stored Part-10 files (PS3.18 10.4): metadata, frames, bulk data, rendered.

Shared by every file-backed source (folder, DIMSE), so all negotiate and encode the same way
(``wado.negotiate``). Every disk read and every decode runs in a worker thread. Frames leave as
stored, decoded to uncompressed pixels, or re-encoded in another syntax (``dicom.frame_transcode``)
as the client's Accept asks (PS3.18 8.7.3.5.2).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

import anyio
import numpy as np
from pydicom import Dataset, dcmread
from pydicom.encaps import get_frame
from pydicom.pixels.decoders.base import get_decoder

from ...dicom import multipart
from ...dicom.frame_transcode import PixelDescription, transcode_frame
from ...dicom.media import FRAME_MEDIA_TYPES, NATIVE_TRANSFER_SYNTAXES
from ...errors import BadRequest, NotFound
from ...render import THUMBNAIL_VIEWPORT, choose_media_type, parse_options, render_frame
from ...wado.negotiate import (
    DICOM_JSON,
    OCTET_STREAM,
    FrameTarget,
    check_bulkdata,
    check_metadata,
    frame_target,
)
from ..base import WadoRequest, WadoResponse
from . import checks
from .instance import StoredInstance

T = TypeVar("T")
_LITTLE_ENDIAN_NATIVE = NATIVE_TRANSFER_SYNTAXES - {"1.2.840.10008.1.2.2"}


# ---------------------------------------------------------------- metadata


def metadata_response(found: list[StoredInstance], request: WadoRequest) -> WadoResponse:
    """A DICOM JSON array, one instance at a time; pixel data as a BulkDataURI to frames."""
    check_metadata(request.accept)
    return WadoResponse(DICOM_JSON, metadata_array(_each(found), request.public_base))


async def metadata_array(items: AsyncIterator[StoredInstance], base: str) -> AsyncIterator[bytes]:
    separator = b"["
    async for item in items:
        blob = await _read(item, instance_metadata, item, base)
        yield separator + blob
        separator = b","
    yield b"[]" if separator == b"[" else b"]"


def instance_metadata(item: StoredInstance, base: str) -> bytes:
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


async def frames_response(item: StoredInstance, request: WadoRequest) -> WadoResponse:
    """Frames as multipart, in the syntax and media type ``frame_target`` picks."""
    if not request.frames:
        raise BadRequest("frames resource needs frame numbers")
    target = frame_target(request.accept, item.transfer_syntax)
    check_frames(item, request.frames)
    ds = await _read(item, read_pixels, item)
    count = item.number_of_frames
    frames = await _decode(
        item, "decoded", frames_in, ds, item.transfer_syntax, count, request.frames, target
    )
    return frames_body(target, frames)


def frames_in(
    ds: Dataset, stored: str, count: int, numbers: tuple[int, ...], target: FrameTarget
) -> list[bytes]:
    """The frames ``numbers`` (1-based) of ``ds`` (``count`` frames stored in ``stored``) as
    ``target`` wants them (blocking)."""
    if target.syntax == stored and stored in FRAME_MEDIA_TYPES:
        return [_stored_frame(ds, count, n) for n in numbers]
    if target.media_type == OCTET_STREAM:
        return _native_frames(ds, stored, numbers)
    pixels = PixelDescription.from_dataset(ds)
    if stored in FRAME_MEDIA_TYPES:
        return [
            transcode_frame(_stored_frame(ds, count, n), pixels, stored, target.syntax).data for n in numbers
        ]
    native = _native_frames(ds, stored, numbers)
    pixels = replace(pixels, planar_configuration=0) if stored not in _LITTLE_ENDIAN_NATIVE else pixels
    return [transcode_frame(frame, pixels, _native_source(stored), target.syntax).data for frame in native]


def _stored_frame(ds: Dataset, count: int, number: int) -> bytes:
    return get_frame(ds.PixelData, number - 1, number_of_frames=count)


def frames_body(target: FrameTarget, frames: list[bytes]) -> WadoResponse:
    """Frames as one multipart answer, each part labelled with ``target``'s type and syntax."""
    boundary = multipart.new_boundary()
    head = multipart.part_head(boundary, target.part_type)
    body = b"".join(head + f + multipart.part_tail() for f in frames)
    return WadoResponse(
        multipart.content_type(boundary, target.media_type), _once(body + multipart.closing(boundary))
    )


def _native_frames(ds: Dataset, stored: str, numbers: tuple[int, ...]) -> list[bytes]:
    """Uncompressed little endian frames: sliced when stored so, else decoded."""
    if stored in _LITTLE_ENDIAN_NATIVE and int(ds.BitsAllocated) % 8 == 0:
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.BitsAllocated) // 8
        data: bytes = ds.PixelData
        return [data[(n - 1) * size : n * size] for n in numbers]
    decoder = get_decoder(stored)
    out = []
    for n in numbers:
        array, _ = decoder.as_array(ds, index=n - 1)
        out.append(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    return out


def _native_source(stored: str) -> str:
    """The syntax native frames are in once read: little endian (decoded if stored otherwise)."""
    return stored if stored in _LITTLE_ENDIAN_NATIVE else "1.2.840.10008.1.2.1"


def check_frames(item: StoredInstance, frames: tuple[int, ...]) -> None:
    if not item.has_pixels:
        raise NotFound("this instance has no pixel data")
    bad = [n for n in frames if not 1 <= n <= item.number_of_frames]
    if bad:
        raise NotFound(f"frame {bad[0]} is not in this instance ({item.number_of_frames} frames)")


def read_pixels(item: StoredInstance) -> Dataset:
    ds = dcmread(item.path)
    if "PixelData" not in ds:
        raise NotFound("this instance has no pixel data")
    return ds


# ---------------------------------------------------------------- bulk data


async def bulkdata_response(item: StoredInstance, request: WadoRequest) -> WadoResponse:
    """``.../bulk/{tag}[/{index}/{tag}...]``: pixel data as frames, other values as bytes."""
    steps = request.bulkdata_path.upper().split("/")
    if steps == ["7FE00010"]:
        frames = tuple(range(1, item.number_of_frames + 1))
        return await frames_response(item, replace(request, frames=frames, resource="frames"))
    check_bulkdata(request.accept)
    value = await _read(item, _bulk_value, item, steps)
    boundary = multipart.new_boundary()
    return WadoResponse(
        multipart.content_type(boundary, OCTET_STREAM),
        _once(multipart.encode(boundary, OCTET_STREAM, [value])),
    )


def _bulk_value(item: StoredInstance, steps: list[str]) -> bytes:
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


async def rendered_response(item: StoredInstance, request: WadoRequest) -> WadoResponse:
    """One frame as JPEG or PNG (the first requested frame, else the first of the instance)."""
    media_type = choose_media_type(request.accept)
    viewport = THUMBNAIL_VIEWPORT if request.resource == "thumbnail" else None
    options = parse_options(request.params, media_type, viewport)
    if len(request.frames) > 1:
        raise BadRequest("rendered frames are available one at a time")
    frame = request.frames[0] if request.frames else 1
    check_frames(item, (frame,))
    ds = await _read(item, read_pixels, item)
    image = await _decode(item, "rendered", render_frame, ds, frame - 1, options)
    return WadoResponse(media_type, _once(image))


def single(found: list[StoredInstance], request: WadoRequest) -> StoredInstance:
    if request.instance_uid is None or len(found) != 1:
        raise BadRequest(f"{request.resource} are retrieved from one instance")
    return found[0]


def representative(found: list[StoredInstance], request: WadoRequest) -> StoredInstance:
    """The instance itself, else the middle image of the (first) series."""
    if request.instance_uid is not None:
        return found[0]
    images = [i for i in found if i.has_pixels and i.series_uid == found[0].series_uid]
    if not images:
        raise NotFound("no image to render")
    return images[len(images) // 2]


# ---------------------------------------------------------------- plumbing


async def _read(item: StoredInstance, work: Callable[..., T], *args: Any) -> T:
    """Read ``item``'s file in a thread; it must be the described one, whole (else 502)."""
    return await anyio.to_thread.run_sync(checks.read_checked, item, partial(work, *args))


async def _decode(item: StoredInstance, doing: str, work: Callable[..., T], *args: Any) -> T:
    """Decode or render data already read; data that cannot be decoded is 502."""
    return await anyio.to_thread.run_sync(checks.read_checked, item, partial(work, *args), doing)


async def _each(found: list[StoredInstance]) -> AsyncIterator[StoredInstance]:
    for item in found:
        yield item


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
